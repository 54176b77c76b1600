"""AlertTargetService: create, read, enable, delete notification targets; their secrets
sealed at rest; and the dead letters of undeliverable alerts.

A webhook's signing key is generated here (32 random bytes) unless the operator gives
one, and returned once at creation; an SMTP password is given by the operator. Both are
stored only as :meth:`bastion.pki.Keystore.seal` blobs bound to the target's name.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from bastion.account import Account, parse_arn
from bastion.clock import Clock, SystemClock
from bastion.store import (
    AlertTargetRow,
    ConflictError,
    DeadLetterRow,
    InvalidPageTokenError,
    Store,
)

from ._errors import InvalidTargetError, TargetExistsError, TargetNotFoundError
from ._model import (
    AlertTarget,
    DeadLetter,
    EmailSettings,
    MqttSettings,
    Settings,
    TargetKind,
    WebhookSettings,
)

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ADDRESS: Final = re.compile(r"[^@\s<>,]+@[^@\s<>,]+")


class Sealer(Protocol):
    """Encrypts secrets at rest (:class:`bastion.pki.Keystore`)."""

    def seal(self, data: bytes, *, associated_data: bytes = b"") -> bytes: ...

    def unseal(self, blob: bytes, *, associated_data: bytes = b"") -> bytes: ...


@dataclass(frozen=True, slots=True)
class CreatedTarget:
    """A new target, and its webhook signing key (shown only now; ``None`` otherwise)."""

    target: AlertTarget
    signing_key: str | None


def _aad(name: str) -> bytes:
    return b"bastion alert target secret:" + name.encode("utf-8")


class AlertTargetService:
    """Notification targets of one store.

    :param sealer: seals secrets; without one, targets that need a secret are refused.
    :param account: region and account of the targets' SNS-style ARNs.
    :param clock: dates the targets and their dead letters.
    """

    def __init__(self, store: Store, *, sealer: Sealer | None, account: Account,
                 clock: Clock | None = None) -> None:
        self._store = store
        self._sealer = sealer
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()

    # -- names ---------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return self._account.arn(name, service="sns")

    def name_of(self, target_arn: str) -> str | None:
        """The target an SNS-style ARN of this account names (``None``: not one of ours).
        Any region is accepted: only the account id has to be this one's."""
        try:
            arn = parse_arn(target_arn or "")
        except (TypeError, ValueError):
            return None
        if (arn.partition != "aws" or arn.service != "sns" or not arn.region
                or arn.account_id != self._account.account_id
                or not _NAME.fullmatch(arn.resource)):
            return None
        return arn.resource

    def exists(self, target_arn_or_name: str) -> bool:
        name = self.name_of(target_arn_or_name) or target_arn_or_name
        with self._store.transaction(readonly=True) as uow:
            return uow.alert_targets.get(name) is not None

    # -- creating ------------------------------------------------------------------------

    def create_webhook(self, name: str, url: str, *, signing_key: str | None = None,
                       ca_file: str | None = None, timeout: float = 10.0) -> CreatedTarget:
        """A webhook target. Without ``signing_key`` one is generated (returned once).

        :raises InvalidTargetError: not an https URL, a bad name, or no sealer.
        :raises TargetExistsError: the name is taken.
        """
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise InvalidTargetError("webhook URLs must be https:// (alerts are signed but "
                                     "never sent in clear)")
        key = signing_key or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        if len(key) < 16:
            raise InvalidTargetError("the signing key must have at least 16 characters")
        target = self._create(name, TargetKind.WEBHOOK,
                              {"url": url, "caFile": ca_file, "timeout": timeout}, key)
        return CreatedTarget(target, key)

    def create_email(self, name: str, *, host: str, port: int = 587, sender: str,
                     recipients: Sequence[str], username: str | None = None,
                     password: str | None = None, ca_file: str | None = None,
                     timeout: float = 30.0) -> CreatedTarget:
        """An e-mail target (SMTP with STARTTLS).

        :raises InvalidTargetError: bad addresses, port, name; a password without a
            username; a password and no sealer.
        :raises TargetExistsError: the name is taken.
        """
        if not host or not 0 < port < 65536:
            raise InvalidTargetError("give the SMTP host and a port between 1 and 65535")
        addresses = [sender, *recipients]
        if not recipients or not all(isinstance(a, str) and _ADDRESS.fullmatch(a)
                                     for a in addresses):
            raise InvalidTargetError("give a sender and at least one recipient address")
        if password is not None and not username:
            raise InvalidTargetError("a password needs a username")
        target = self._create(name, TargetKind.EMAIL, {
            "host": host, "port": port, "sender": sender, "recipients": list(recipients),
            "username": username, "caFile": ca_file, "timeout": timeout}, password)
        return CreatedTarget(target, None)

    def create_mqtt(self, name: str, topic: str, *, qos: int = 1) -> CreatedTarget:
        """A publish on Bastion's broker.

        :raises InvalidTargetError: a topic with wildcards or a reserved ``$`` topic, bad QoS.
        """
        if not topic or "+" in topic or "#" in topic or topic.startswith("$") \
                or len(topic.encode()) > 256:
            raise InvalidTargetError("the MQTT topic must be a topic name (no wildcards, not "
                                     "$-reserved, at most 256 bytes)")
        if qos not in (0, 1):
            raise InvalidTargetError("qos must be 0 or 1")
        return CreatedTarget(self._create(name, TargetKind.MQTT,
                                          {"topic": topic, "qos": qos}, None), None)

    def _create(self, name: str, kind: TargetKind, config: Mapping[str, Any],
                secret: str | None) -> AlertTarget:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidTargetError("target names are 1-128 characters of A-Z a-z 0-9 _ -")
        sealed = None
        if secret is not None:
            if self._sealer is None:
                raise InvalidTargetError("this installation cannot seal secrets")
            sealed = self._sealer.seal(secret.encode("utf-8"), associated_data=_aad(name))
        now = self._clock.now()
        row = AlertTargetRow(name, kind.value, {k: v for k, v in config.items()
                                                if v is not None}, sealed, True, now, now)
        try:
            with self._store.transaction() as uow:
                uow.alert_targets.insert(row)
        except ConflictError:
            raise TargetExistsError(f"alert target {name} already exists") from None
        return self._target(row)

    # -- reading and changing ---------------------------------------------------------------

    def get(self, name: str) -> AlertTarget:
        """:raises TargetNotFoundError: no such target."""
        return self._target(self._row(name))

    def _row(self, name: str) -> AlertTargetRow:
        with self._store.transaction(readonly=True) as uow:
            row = uow.alert_targets.get(name)
        if row is None:
            raise TargetNotFoundError(f"alert target {name} does not exist")
        return row

    def all(self) -> list[AlertTarget]:
        with self._store.transaction(readonly=True) as uow:
            return [self._target(row) for row in uow.alert_targets.all()]

    def secret_of(self, name: str) -> str | None:
        """The target's unsealed secret (webhook signing key, SMTP password).

        :raises TargetNotFoundError: no such target.
        """
        row = self._row(name)
        if row.sealed_secret is None or self._sealer is None:
            return None
        return self._sealer.unseal(row.sealed_secret, associated_data=_aad(name)).decode()

    def set_enabled(self, name: str, enabled: bool) -> None:
        """:raises TargetNotFoundError: no such target."""
        row = self._row(name)
        with self._store.transaction() as uow:
            uow.alert_targets.update(AlertTargetRow(
                row.name, row.kind, row.config, row.sealed_secret, enabled, row.creation_date,
                self._clock.now()))

    def delete(self, name: str) -> None:
        """:raises TargetNotFoundError: no such target."""
        with self._store.transaction() as uow:
            if not uow.alert_targets.delete(name):
                raise TargetNotFoundError(f"alert target {name} does not exist")

    # -- dead letters --------------------------------------------------------------------

    def record_dead_letter(self, letter: DeadLetter) -> None:
        with self._store.transaction() as uow:
            uow.alert_dead_letters.insert(DeadLetterRow(
                letter.letter_id, letter.target_name, letter.kind.value, letter.subject,
                json.dumps(dict(letter.document), default=str), letter.attempts,
                letter.last_error[:4000], letter.first_attempt_at, letter.created_at))

    def dead_letters(self, *, target_name: str | None = None, limit: int = 100,
                     next_token: str | None = None) -> tuple[list[DeadLetter], str | None]:
        """:raises InvalidTargetError: a bad page token."""
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.alert_dead_letters.list_page(target_name=target_name,
                                                               limit=limit, token=next_token)
        except InvalidPageTokenError:
            raise InvalidTargetError("the page token is not valid") from None
        return [_letter(row) for row in rows], token

    def delete_dead_letter(self, letter_id: str) -> bool:
        with self._store.transaction() as uow:
            return uow.alert_dead_letters.delete(letter_id)

    def _target(self, row: AlertTargetRow) -> AlertTarget:
        return AlertTarget(row.name, self.arn(row.name), TargetKind(row.kind),
                           settings_of(row.kind, row.config), row.enabled,
                           row.sealed_secret is not None, row.creation_date,
                           row.last_modified_date)


def settings_of(kind: str, config: Mapping[str, Any]) -> Settings:
    if kind == TargetKind.WEBHOOK:
        return WebhookSettings(str(config["url"]), config.get("caFile"),
                               float(config.get("timeout", 10.0)))
    if kind == TargetKind.EMAIL:
        return EmailSettings(str(config["host"]), int(config["port"]), str(config["sender"]),
                             tuple(config["recipients"]), config.get("username"),
                             config.get("caFile"), float(config.get("timeout", 30.0)))
    return MqttSettings(str(config["topic"]), int(config.get("qos", 1)))


def _letter(row: DeadLetterRow) -> DeadLetter:
    try:
        document = json.loads(row.payload)
    except ValueError:
        document = {"raw": row.payload}
    return DeadLetter(row.letter_id, row.target_name, TargetKind(row.kind), row.subject,
                      document if isinstance(document, dict) else {"raw": document},
                      row.attempts, row.last_error, row.first_attempt_at, row.created_at)
