"""The dangerous corner: the master key, and every private key and secret at rest.

Theory of operation
-------------------
One 32-byte random *master key* protects everything Bastion stores secretly. It comes
from the environment variable ``BASTION_MASTER_KEY`` (base64) when that is set, which
takes precedence; otherwise from the file ``master.key`` in the data directory, which
holds the same base64 text (so ``export BASTION_MASTER_KEY=$(cat master.key)`` moves it)
and must be mode 0600: a file readable by group or others is refused, like ssh does.

The master key is never used directly. Independent keys are derived from it with
HKDF-SHA256 under distinct labels:

* the *private-key password*, a 64-character hex string, used with
  ``BestAvailableEncryption`` to encrypt PKCS#8 PEM private keys (the CA key, the server
  key). Because it is an ordinary PEM password, ``ssl.SSLContext.load_cert_chain(...,
  password=keystore.private_key_password)`` and ``openssl pkey -passin`` can read them;
* the *sealing key*, an AES-256-GCM key for :meth:`Keystore.seal` / :meth:`Keystore.unseal`
  (API secret keys and other small secrets stored in the database);
* keys for other components, under labels of their own (:meth:`Keystore.derive_key`,
  e.g. the trail's chain and head keys). Labels starting with ``bastion keystore`` are
  this module's.

Sealed blob format, version 1::

    0x01 | nonce (12 random bytes) | AES-GCM ciphertext and 16-byte tag

The version byte and the caller's ``associated_data`` (e.g. the row's key id) are both
authenticated, so a blob cannot be moved to another row or downgraded unnoticed. Random
96-bit nonces are safe for far more secrets than an installation will ever seal.

Key files are written atomically with mode 0600 (see :mod:`._files`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import KeystoreError, SecretTamperedError
from ._files import write_file_atomically
from ._keys import PrivateKey
from ._pem import load_pem_private_key, private_key_to_pem

MASTER_KEY_ENV = "BASTION_MASTER_KEY"
"""Environment variable holding the base64 master key; takes precedence over the file."""

MASTER_KEY_SIZE = 32

_SEAL_VERSION = b"\x01"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_SEAL_LABEL = b"bastion keystore v1: AES-256-GCM sealing key"
_PEM_LABEL = b"bastion keystore v1: private key PEM password"


class Keystore:
    """Encrypts private keys and secrets at rest under the installation's master key.

    Build it with :meth:`open` (environment or master key file), :meth:`generate` (a fresh
    in-memory key) or ``Keystore(master_key)``. The master key is kept only to derive
    other keys (:meth:`derive_key`); no key appears in ``repr``.

    :param master_key: exactly 32 bytes.
    :raises TypeError: ``master_key`` is not bytes.
    :raises ValueError: ``master_key`` is not 32 bytes long.
    """

    __slots__ = ("_aead", "_master_key", "_pem_password")

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, bytes):
            raise TypeError(f"master_key must be bytes, not {type(master_key).__name__}")
        if len(master_key) != MASTER_KEY_SIZE:
            raise ValueError(f"master_key must be {MASTER_KEY_SIZE} bytes, not {len(master_key)}")
        self._master_key = master_key
        self._aead = AESGCM(_derive(master_key, _SEAL_LABEL))
        self._pem_password = _derive(master_key, _PEM_LABEL).hex().encode("ascii")

    def __repr__(self) -> str:
        return "<Keystore>"

    # -- construction -----------------------------------------------------------------

    @classmethod
    def generate(cls) -> Keystore:
        """A keystore under a fresh random master key that is stored nowhere (tests)."""
        return cls(os.urandom(MASTER_KEY_SIZE))

    @classmethod
    def open(
        cls,
        master_key_path: str | os.PathLike[str],
        *,
        create: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> Keystore:
        """Open the installation's keystore.

        If ``BASTION_MASTER_KEY`` is set (and not empty) in ``environ``, its base64 value
        is the master key and the file is neither read nor created. Otherwise the key is
        read from ``master_key_path``; when that file is missing and ``create`` is true, a
        new random key is written there (mode 0600, never replacing a file that appears
        concurrently).

        :param environ: the environment to consult; ``None`` means :data:`os.environ`.
        :raises KeystoreError: the variable or the file does not hold base64 of exactly
            32 bytes, or the file is readable or writable by group or others.
        :raises FileNotFoundError: no variable, no file, and ``create`` is false.
        :raises OSError: the file cannot be read or written.
        """
        env = os.environ if environ is None else environ
        encoded = env.get(MASTER_KEY_ENV, "")
        if encoded:
            return cls(_decode_master_key(encoded.encode("ascii", "replace"), MASTER_KEY_ENV))
        path = Path(master_key_path)
        if create and not path.exists():
            master_key = os.urandom(MASTER_KEY_SIZE)
            try:
                write_file_atomically(
                    path, base64.b64encode(master_key) + b"\n", mode=0o600, overwrite=False
                )
            except FileExistsError:
                pass  # another process won the race: use its key
            else:
                return cls(master_key)
        return cls(_read_master_key_file(path))

    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte key for another component: HKDF-SHA256 of the master key with
        ``label`` as its ``info``. Distinct labels give independent keys; the same label
        always gives the same key under the same master key.

        :param label: names the key's purpose and version, e.g.
            ``b"bastion trail chain v1"``.
        :raises TypeError: ``label`` is not bytes.
        :raises ValueError: ``label`` is empty or is one of this module's own labels.
        """
        if not isinstance(label, bytes):
            raise TypeError(f"label must be bytes, not {type(label).__name__}")
        if not label or label.startswith(b"bastion keystore"):
            raise ValueError("label must be non-empty and not a keystore label")
        return _derive(self._master_key, label)

    # -- private keys -----------------------------------------------------------------

    @property
    def private_key_password(self) -> bytes:
        """The PEM password of private keys written by this keystore.

        Pass it to :meth:`ssl.SSLContext.load_cert_chain` (``password=``) or to
        :func:`bastion.pki.server_ssl_context` (``key_password=``). Treat it as secret.
        """
        return self._pem_password

    def encrypt_private_key(self, key: PrivateKey) -> bytes:
        """Encode ``key`` as encrypted PKCS#8 PEM.

        :raises TypeError: ``key`` is not an EC or RSA private key.
        """
        return private_key_to_pem(key, self._pem_password)

    def decrypt_private_key(self, pem: bytes) -> PrivateKey:
        """Decode a PEM private key encrypted by :meth:`encrypt_private_key`.

        :raises KeystoreError: the PEM is malformed, not encrypted (plaintext keys are
            refused), or was encrypted under another master key.
        """
        try:
            return load_pem_private_key(pem, self._pem_password)
        except TypeError:
            raise KeystoreError(
                "private key is not encrypted at rest, or is not an EC/RSA key"
            ) from None
        except ValueError:
            raise KeystoreError(
                "cannot decrypt private key: malformed, or encrypted under another master key"
            ) from None

    def save_private_key(
        self, path: str | os.PathLike[str], key: PrivateKey, *, overwrite: bool = True
    ) -> None:
        """Write ``key`` encrypted to ``path``, atomically, with mode 0600.

        :raises TypeError: ``key`` is not an EC or RSA private key.
        :raises FileExistsError: ``overwrite`` is false and ``path`` exists.
        :raises OSError: the file cannot be written.
        """
        write_file_atomically(path, self.encrypt_private_key(key), mode=0o600, overwrite=overwrite)

    def load_private_key(self, path: str | os.PathLike[str]) -> PrivateKey:
        """Read and decrypt a private key written by :meth:`save_private_key`.

        :raises KeystoreError: see :meth:`decrypt_private_key`.
        :raises OSError: the file cannot be read (``FileNotFoundError`` if missing).
        """
        return self.decrypt_private_key(Path(path).read_bytes())

    # -- other secrets ----------------------------------------------------------------

    def seal(self, data: bytes, *, associated_data: bytes = b"") -> bytes:
        """Encrypt and authenticate ``data`` (AES-256-GCM, random 96-bit nonce).

        :param associated_data: context bound to the blob but not stored in it (e.g. the
            id of the record holding it); :meth:`unseal` must be given the same bytes.
        :returns: a versioned blob (see the module docstring).
        :raises TypeError: ``data`` or ``associated_data`` is not bytes.
        """
        _check_bytes(data, "data")
        _check_bytes(associated_data, "associated_data")
        nonce = os.urandom(_NONCE_SIZE)
        ciphertext = self._aead.encrypt(nonce, bytes(data), _SEAL_VERSION + associated_data)
        return _SEAL_VERSION + nonce + ciphertext

    def unseal(self, blob: bytes, *, associated_data: bytes = b"") -> bytes:
        """Decrypt a blob produced by :meth:`seal`.

        :raises TypeError: ``blob`` or ``associated_data`` is not bytes.
        :raises SecretTamperedError: the blob is truncated or fails authentication
            (modified, sealed under another master key, or other associated data).
        :raises KeystoreError: the blob has an unknown format version.
        """
        _check_bytes(blob, "blob")
        _check_bytes(associated_data, "associated_data")
        blob = bytes(blob)
        if not blob:
            raise SecretTamperedError("sealed secret is empty")
        version = blob[:1]
        if version != _SEAL_VERSION:
            raise KeystoreError(f"unknown sealed secret format version {version[0]}")
        if len(blob) < 1 + _NONCE_SIZE + _TAG_SIZE:
            raise SecretTamperedError("sealed secret is truncated")
        nonce, ciphertext = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
        try:
            return self._aead.decrypt(nonce, ciphertext, version + associated_data)
        except InvalidTag:
            raise SecretTamperedError(
                "sealed secret failed authentication: tampered with, or sealed under "
                "another master key or other associated data"
            ) from None


def _derive(master_key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master_key)


def _decode_master_key(encoded: bytes, source: str) -> bytes:
    try:
        master_key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeystoreError(f"{source} is not valid base64") from None
    if len(master_key) != MASTER_KEY_SIZE:
        raise KeystoreError(f"{source} must encode {MASTER_KEY_SIZE} bytes, not {len(master_key)}")
    return master_key


def _read_master_key_file(path: Path) -> bytes:
    with path.open("rb") as file:
        if os.name == "posix":
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            if mode & 0o077:
                raise KeystoreError(
                    f"master key file {path} has mode {mode:04o}; it must not be accessible "
                    f"by group or others (chmod 600 {path})"
                )
        return _decode_master_key(file.read(), f"master key file {path}")


def _check_bytes(value: object, name: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
