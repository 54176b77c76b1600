"""The dangerous corner: key generation and the binding of sealed secrets."""

from __future__ import annotations

import re

import pytest

from bastion.access import Role
from bastion.access._secrets import (
    new_access_key_id,
    new_secret_access_key,
    seal_secret,
    unseal_secret,
)
from bastion.pki import Keystore, SecretTamperedError


def test_generated_values_have_aws_shapes_and_do_not_repeat() -> None:
    ids = {new_access_key_id() for _ in range(500)}
    secrets = {new_secret_access_key() for _ in range(500)}
    assert len(ids) == len(secrets) == 500
    assert all(re.fullmatch(r"AKIA[A-Z0-9]{16}", key) for key in ids)
    assert all(re.fullmatch(r"[A-Za-z0-9+/]{40}", secret) for secret in secrets)


def test_a_sealed_secret_opens_only_for_its_id_role_and_master_key() -> None:
    keystore = Keystore.generate()
    sealed = seal_secret(keystore, "AKIAAAAAAAAAAAAAAAAA", Role.AUDITOR, "s" * 40)
    assert b"s" * 40 not in sealed
    assert unseal_secret(keystore, "AKIAAAAAAAAAAAAAAAAA", Role.AUDITOR, sealed) == "s" * 40
    for key_id, role, store in [("AKIAAAAAAAAAAAAAAAAB", Role.AUDITOR, keystore),
                                ("AKIAAAAAAAAAAAAAAAAA", Role.ADMIN, keystore),
                                ("AKIAAAAAAAAAAAAAAAAA", Role.AUDITOR, Keystore.generate())]:
        with pytest.raises(SecretTamperedError):
            unseal_secret(store, key_id, role, sealed)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretTamperedError):
        unseal_secret(keystore, "AKIAAAAAAAAAAAAAAAAA", Role.AUDITOR, flipped)
