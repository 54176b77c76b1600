"""The dangerous corner: master key, private keys at rest, sealed secrets."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.pki import (
    MASTER_KEY_ENV,
    Keystore,
    KeystoreError,
    SecretTamperedError,
    generate_private_key,
    private_key_to_pem,
    write_file_atomically,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- sealing ----------------------------------------------------------------------------


def test_seal_round_trip() -> None:
    keystore = Keystore.generate()
    blob = keystore.seal(b"api secret", associated_data=b"key-id-1")
    assert b"api secret" not in blob
    assert blob[0] == 1  # format version
    assert len(blob) == 1 + 12 + len(b"api secret") + 16
    assert keystore.unseal(blob, associated_data=b"key-id-1") == b"api secret"


def test_seal_uses_fresh_nonces() -> None:
    keystore = Keystore.generate()
    assert keystore.seal(b"same") != keystore.seal(b"same")


def test_seal_empty_secret() -> None:
    keystore = Keystore.generate()
    assert keystore.unseal(keystore.seal(b"")) == b""


@pytest.mark.parametrize(
    "position",
    [pytest.param(1, id="nonce"), pytest.param(13, id="ciphertext"), pytest.param(-1, id="tag")],
)
def test_tampering_is_detected(position: int) -> None:
    keystore = Keystore.generate()
    blob = bytearray(keystore.seal(b"secret"))
    blob[position] ^= 0x01
    with pytest.raises(SecretTamperedError):
        keystore.unseal(bytes(blob))


@pytest.mark.parametrize("length", [0, 1, 28], ids=["empty", "version-only", "short"])
def test_truncated_blob_is_tampered(length: int) -> None:
    keystore = Keystore.generate()
    blob = keystore.seal(b"")  # 29 bytes: the shortest valid blob
    with pytest.raises(SecretTamperedError):
        keystore.unseal(blob[:length])


def test_unknown_version_is_rejected() -> None:
    keystore = Keystore.generate()
    blob = b"\x02" + keystore.seal(b"secret")[1:]
    with pytest.raises(KeystoreError, match="version"):
        keystore.unseal(blob)


def test_other_associated_data_is_rejected() -> None:
    keystore = Keystore.generate()
    blob = keystore.seal(b"secret", associated_data=b"row-1")
    with pytest.raises(SecretTamperedError):
        keystore.unseal(blob, associated_data=b"row-2")
    with pytest.raises(SecretTamperedError):
        keystore.unseal(blob)


def test_wrong_master_key_cannot_unseal() -> None:
    blob = Keystore.generate().seal(b"secret")
    with pytest.raises(SecretTamperedError):
        Keystore.generate().unseal(blob)


def test_same_master_key_unseals() -> None:
    master_key = os.urandom(32)
    assert Keystore(master_key).unseal(Keystore(master_key).seal(b"s")) == b"s"


def test_seal_type_checks() -> None:
    keystore = Keystore.generate()
    with pytest.raises(TypeError):
        keystore.seal("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keystore.unseal(keystore.seal(b"x"), associated_data="text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("master_key", "error"),
    [(b"short", ValueError), (os.urandom(33), ValueError), ("x" * 32, TypeError)],
    ids=["short", "long", "str"],
)
def test_master_key_must_be_32_bytes(master_key: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Keystore(master_key)  # type: ignore[arg-type]


def test_repr_shows_no_key_material() -> None:
    keystore = Keystore.generate()
    assert repr(keystore) == "<Keystore>"
    assert keystore.private_key_password.decode() not in repr(keystore)


def test_derived_keys_are_independent_of_each_other() -> None:
    master_key = os.urandom(32)
    keystore = Keystore(master_key)
    password = keystore.private_key_password
    assert len(password) == 64 and bytes.fromhex(password.decode()) != master_key
    assert master_key.hex().encode() != password


def test_derive_key_is_hkdf_of_the_master_key_under_the_label() -> None:
    master_key = os.urandom(32)
    keystore = Keystore(master_key)
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"bastion trail chain v1").derive(master_key)
    assert keystore.derive_key(b"bastion trail chain v1") == expected
    assert Keystore(master_key).derive_key(b"bastion trail chain v1") == expected
    assert keystore.derive_key(b"bastion trail head v1") != expected
    assert Keystore.generate().derive_key(b"bastion trail chain v1") != expected
    with pytest.raises(ValueError):
        keystore.derive_key(b"bastion keystore v1: AES-256-GCM sealing key")
    with pytest.raises(ValueError):
        keystore.derive_key(b"")
    with pytest.raises(TypeError):
        keystore.derive_key("bastion trail chain v1")  # type: ignore[arg-type]


# -- private keys at rest ---------------------------------------------------------------


def test_private_key_saved_encrypted_with_mode_0600(tmp_path: Path) -> None:
    keystore = Keystore.generate()
    key = generate_private_key()
    path = tmp_path / "ca.key.pem"
    keystore.save_private_key(path, key)
    assert _mode(path) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keystore.load_private_key(path).private_numbers() == key.private_numbers()
    # an ordinary PEM password: OpenSSL-compatible tools can read it with the password
    loaded = serialization.load_pem_private_key(pem, keystore.private_key_password)
    assert loaded.public_key() == key.public_key()


def test_private_key_file_is_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        path = tmp_path / "key.pem"
        Keystore.generate().save_private_key(path, generate_private_key())
    finally:
        os.umask(previous)
    assert _mode(path) == 0o600


def test_encrypted_key_cannot_be_loaded_without_the_master_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    Keystore.generate().save_private_key(path, generate_private_key())
    with pytest.raises(KeystoreError, match="another master key"):
        Keystore.generate().load_private_key(path)
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(path.read_bytes(), None)


def test_plaintext_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pem"
    path.write_bytes(private_key_to_pem(generate_private_key()))
    with pytest.raises(KeystoreError, match="not encrypted"):
        Keystore.generate().load_private_key(path)


def test_save_without_overwrite_keeps_existing_key(tmp_path: Path) -> None:
    keystore = Keystore.generate()
    path = tmp_path / "key.pem"
    first = generate_private_key()
    keystore.save_private_key(path, first)
    with pytest.raises(FileExistsError):
        keystore.save_private_key(path, generate_private_key(), overwrite=False)
    assert keystore.load_private_key(path).private_numbers() == first.private_numbers()
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary left behind


# -- atomic writes ----------------------------------------------------------------------


def test_write_file_atomically_replaces_and_sets_mode(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    path.chmod(0o666)
    write_file_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o600
    write_file_atomically(path, b"public", mode=0o644)
    assert _mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_write_file_atomically_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_file_atomically(tmp_path / "missing-dir" / "file", b"x")
    with pytest.raises(TypeError):
        write_file_atomically(tmp_path / "file", "text")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# -- the master key ---------------------------------------------------------------------


def test_master_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keystore = Keystore.open(path, create=True)
    assert _mode(path) == 0o600
    master_key = base64.b64decode(path.read_bytes(), validate=False)
    assert len(master_key) == 32
    assert Keystore(master_key).unseal(keystore.seal(b"s")) == b"s"
    # opening again reads the same key
    assert Keystore.open(path).unseal(keystore.seal(b"t")) == b"t"
    assert Keystore.open(path, create=True).unseal(keystore.seal(b"u")) == b"u"


def test_missing_master_key_is_not_created_by_default(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Keystore.open(tmp_path / "master.key")
    assert list(tmp_path.iterdir()) == []


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    Keystore.open(path, create=True)
    path.chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        Keystore.open(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not base64!\n", base64.b64encode(os.urandom(16)) + b"\n"],
    ids=["empty", "not-base64", "16-bytes"],
)
def test_malformed_master_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    write_file_atomically(path, content)
    with pytest.raises(KeystoreError, match="master key file"):
        Keystore.open(path)


def test_environment_variable_takes_precedence(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    from_file = Keystore.open(path, create=True)
    master_key = os.urandom(32)
    environ = {MASTER_KEY_ENV: base64.b64encode(master_key).decode()}
    from_env = Keystore.open(path, create=True, environ=environ)
    blob = from_env.seal(b"secret")
    assert Keystore(master_key).unseal(blob) == b"secret"
    with pytest.raises(SecretTamperedError):
        from_file.unseal(blob)


def test_environment_variable_means_no_file_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_key = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(master_key).decode())
    keystore = Keystore.open(tmp_path / "master.key", create=True)
    assert list(tmp_path.iterdir()) == []
    assert Keystore(master_key).unseal(keystore.seal(b"s")) == b"s"


@pytest.mark.parametrize(
    "value",
    ["not base64!", base64.b64encode(os.urandom(31)).decode(), "Zm9v\u00e9"],
    ids=["not-base64", "31-bytes", "non-ascii"],
)
def test_malformed_environment_variable_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(KeystoreError, match=MASTER_KEY_ENV) as raised:
        Keystore.open(tmp_path / "master.key", create=True, environ={MASTER_KEY_ENV: value})
    assert value not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_empty_environment_variable_falls_back_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    Keystore.open(path, create=True, environ={MASTER_KEY_ENV: ""})
    assert path.exists()
