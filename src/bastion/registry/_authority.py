"""Bastion's own certificate authority, as the identity service uses it.

The CA private key lives encrypted in the data directory (see :mod:`bastion.datadir`);
:meth:`CertificateAuthority.from_datadir` decrypts it with the installation's keystore
and keeps it in memory only. Nothing here writes key material anywhere, and ``repr``
never shows the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bastion.datadir import DataDir, load_ca
from bastion.pki import Keystore, PrivateKey, certificate_id


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA certificate and its private key, used to issue device certificates.

    :raises TypeError: ``certificate`` is not an :class:`x509.Certificate`, or
        ``private_key`` not an EC or RSA private key.
    :raises ValueError: ``private_key`` is not the key of ``certificate``.
    """

    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise TypeError("certificate must be an x509.Certificate")
        if not isinstance(self.private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError("private_key must be an EC or RSA private key")
        if self.private_key.public_key() != self.certificate.public_key():
            raise ValueError("private_key is not the key of certificate")

    @classmethod
    def from_datadir(cls, datadir: DataDir, keystore: Keystore | None = None) -> CertificateAuthority:
        """The data directory's root CA, its key decrypted with ``keystore`` (default: the
        installation's master key).

        :raises bastion.datadir.DataDirError: the directory has no CA.
        :raises bastion.pki.KeystoreError: the key cannot be decrypted.
        """
        cert, key = load_ca(datadir, keystore)
        return cls(cert, key)

    @property
    def certificate_id(self) -> str:
        """The CA's AWS-style certificate id (SHA-256 of its DER)."""
        return certificate_id(self.certificate)
