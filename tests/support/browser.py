"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver.

The browser trusts exactly one TLS key: the Bastion server certificate's, pinned by the
SHA-256 of its public key (``--ignore-certificate-errors-spki-list``), so the console
is reached over real HTTPS without adding our CA to a system store or accepting any
certificate.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (``None``: they can)."""
    for command, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(command) is None:
            return f"{command} is not installed (Debian package {package}; make system-packages)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def spki_pin(certificate_path: Path) -> str:
    """The base64 SHA-256 of a certificate's SubjectPublicKeyInfo (Chrome's SPKI pin)."""
    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def start_chromium(server_certificate: Path, *, width: int = 1280, height: int = 900
                   ) -> object:
    """A headless chromium that trusts only ``server_certificate``'s key; the caller
    ``quit()``s it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-sync",
                     f"--window-size={width},{height}",
                     f"--ignore-certificate-errors-spki-list={spki_pin(server_certificate)}"):
        options.add_argument(argument)
    service = Service(executable_path=shutil.which(CHROMEDRIVER) or CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)
