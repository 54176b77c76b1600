"""The store: an engine, its migrations, and units of work.

Theory of operation: :meth:`Store.open` creates the engine and brings the schema to the
newest migration (Alembic ``upgrade head``, run in-process with the migrations shipped in
this package). PostgreSQL serialises concurrent upgrades with an advisory lock; SQLite's
``BEGIN IMMEDIATE`` does the same. Every read or write then happens inside
:meth:`Store.transaction`, which yields a :class:`UnitOfWork`: the repositories, all bound
to one connection and one transaction, committed when the block ends normally and rolled
back when it raises. Inside a :meth:`Store.join_writes` block a writing transaction is
joined by the block's :class:`CommitParticipant` just before it commits (how the trail's
record commits with the change it describes: :mod:`._joining`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Self

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL

from ._access_keys import AccessKeyRepository
from ._alerts import AlertTargetRepository, DeadLetterRepository
from ._audit import (
    AuditFleetReader,
    AuditMitigationRepository,
    AuditRepository,
    CrlRepository,
    MitigationActionRepository,
)
from ._billing_groups import BillingGroupRepository
from ._connections import ConnectionJournalRepository
from ._detect import DetectRepository
from ._domains import DomainRepository
from ._engine import READONLY_OPTION, create_store_engine
from ._errors import StoreError
from ._files import FileRepository
from ._groups import ThingGroupRepository
from ._identity import CaCertificateRepository, CertificateRepository
from ._index_sources import IndexSourceRepository
from ._jobs import JobExecutionRepository, JobRepository, JobTemplateRepository
from ._joining import CommitParticipant, joining, participant_of
from ._policies import PolicyRepository
from ._provisioning import ProvisioningRepository
from ._role_aliases import RoleAliasRepository
from ._rotation import CertificateRotationRepository, RotationPolicyRepository
from ._rules import TopicRuleDestinationRepository, TopicRuleRepository
from ._schema import metadata
from ._settings import SealedSecretRepository, SettingsRepository
from ._shadows import ShadowRepository
from ._signing import OtaUpdateRepository, SigningRepository
from ._streams import StreamRepository
from ._tags import TagRepository
from ._things import ThingPrincipalRepository, ThingRepository, ThingTypeRepository
from ._threats import ThreatRepository
from ._trail import TrailRepository
from ._trail_digests import TrailDigestRepository

MIGRATIONS: Final = "bastion.store:migrations"
_MIGRATION_LOCK_ID: Final = 0x42A57104  # pg_advisory_xact_lock key of schema upgrades


class UnitOfWork:
    """The repositories of one transaction. Build it with :meth:`Store.transaction`."""

    __slots__ = (
        "access_keys",
        "alert_dead_letters",
        "alert_targets",
        "audit",
        "audit_crls",
        "audit_fleet",
        "audit_mitigation",
        "billing_groups",
        "ca_certificates",
        "certificates",
        "connection",
        "connections",
        "detect",
        "domains",
        "files",
        "index_sources",
        "job_executions",
        "job_templates",
        "jobs",
        "mitigation_actions",
        "ota_updates",
        "policies",
        "provisioning",
        "role_aliases",
        "rotation_policies",
        "rotations",
        "secrets",
        "settings",
        "shadows",
        "signing",
        "streams",
        "tags",
        "thing_groups",
        "thing_principals",
        "thing_types",
        "things",
        "threats",
        "topic_rule_destinations",
        "topic_rules",
        "trail",
        "trail_digests",
    )

    def __init__(self, connection: sa.Connection) -> None:
        self.connection: Final = connection
        self.thing_types: Final = ThingTypeRepository(connection)
        self.things: Final = ThingRepository(connection)
        self.thing_groups: Final = ThingGroupRepository(connection)
        self.thing_principals: Final = ThingPrincipalRepository(connection)
        self.certificates: Final = CertificateRepository(connection)
        self.ca_certificates: Final = CaCertificateRepository(connection)
        self.policies: Final = PolicyRepository(connection)
        self.settings: Final = SettingsRepository(connection)
        self.secrets: Final = SealedSecretRepository(connection)
        self.provisioning: Final = ProvisioningRepository(connection)
        self.connections: Final = ConnectionJournalRepository(connection)
        self.index_sources: Final = IndexSourceRepository(connection)
        self.jobs: Final = JobRepository(connection)
        self.job_executions: Final = JobExecutionRepository(connection)
        self.job_templates: Final = JobTemplateRepository(connection)
        self.access_keys: Final = AccessKeyRepository(connection)
        self.trail: Final = TrailRepository(connection)
        self.trail_digests: Final = TrailDigestRepository(connection)
        # defender audit and alerts
        self.audit: Final = AuditRepository(connection)
        self.audit_mitigation: Final = AuditMitigationRepository(connection)
        self.audit_crls: Final = CrlRepository(connection)
        self.audit_fleet: Final = AuditFleetReader(connection)
        self.mitigation_actions: Final = MitigationActionRepository(connection)
        self.alert_targets: Final = AlertTargetRepository(connection)
        self.alert_dead_letters: Final = DeadLetterRepository(connection)
        self.detect: Final = DetectRepository(connection)
        self.threats: Final = ThreatRepository(connection)
        self.domains: Final = DomainRepository(connection)
        self.shadows: Final = ShadowRepository(connection)
        self.files: Final = FileRepository(connection)
        self.topic_rules: Final = TopicRuleRepository(connection)
        self.topic_rule_destinations: Final = TopicRuleDestinationRepository(connection)
        self.tags: Final = TagRepository(connection)
        self.billing_groups: Final = BillingGroupRepository(connection)
        self.role_aliases: Final = RoleAliasRepository(connection)
        self.rotation_policies: Final = RotationPolicyRepository(connection)
        self.rotations: Final = CertificateRotationRepository(connection)
        self.signing: Final = SigningRepository(connection)
        self.ota_updates: Final = OtaUpdateRepository(connection)
        self.streams: Final = StreamRepository(connection)


_KEEP_ON_RESET: Final = frozenset({
    "sealed_secrets", "access_keys",
    # The broker's working copy of these is in memory; the emulator's reset leaves both.
    "mqtt_sessions", "mqtt_subscriptions", "mqtt_deliveries", "mqtt_inbound_qos2",
    "mqtt_retained", "mqtt_stream_cursors",
})


class TransactionTimes:
    """How long the store's transactions took, by kind (``read``, ``write``): counts,
    seconds summed and failures (rolled back) since the store was opened. Transactions
    run on many threads; one short lock per transaction keeps the sums exact."""

    __slots__ = ("_lock", "_totals")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, list[float]] = {"read": [0, 0.0, 0], "write": [0, 0.0, 0]}

    def add(self, kind: str, seconds: float, *, failed: bool) -> None:
        with self._lock:
            totals = self._totals[kind]
            totals[0] += 1
            totals[1] += seconds
            if failed:
                totals[2] += 1

    def snapshot(self) -> dict[str, tuple[int, float, int]]:
        """``{kind: (transactions, seconds, failed)}``."""
        with self._lock:
            return {kind: (int(t[0]), t[1], int(t[2])) for kind, t in self._totals.items()}


class Store:
    """Bastion's database. Thread-safe: each transaction takes its own pooled connection.

    :param engine: an engine made by :func:`create_store_engine`; prefer :meth:`open`.
    :ivar times: how long its transactions took (``/metrics``).
    """

    __slots__ = ("_engine", "times")

    def __init__(self, engine: sa.Engine) -> None:
        if not isinstance(engine, sa.Engine):
            raise TypeError(f"engine must be a SQLAlchemy Engine, not {type(engine).__name__}")
        self._engine = engine
        self.times = TransactionTimes()

    def __repr__(self) -> str:
        return f"<Store {self._engine.url.render_as_string(hide_password=True)}>"

    @classmethod
    def open(cls, url: str | URL, *, migrate: bool = True, **engine_options: Any) -> Store:
        """Connect to ``url`` and (by default) upgrade its schema to the newest version.

        :param url: ``sqlite:///path`` or ``postgresql+psycopg://…``.
        :param migrate: run the migrations; with ``False`` the schema must already be
            current (see :meth:`is_current`).
        :raises StoreError: unsupported URL.
        :raises sqlalchemy.exc.OperationalError: the database cannot be reached or opened.
        """
        store = cls(create_store_engine(url, **engine_options))
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.close()
                raise
        return store

    @classmethod
    def for_sqlite_file(cls, path: str | os.PathLike[str], *, migrate: bool = True) -> Store:
        """Open (creating it if needed) the SQLite database at ``path``, e.g. a data
        directory's ``db_path``."""
        return cls.open(URL.create("sqlite", database=str(Path(path))), migrate=migrate)

    def ping(self) -> None:
        """Run ``SELECT 1``: returns once the database answers.

        :raises sqlalchemy.exc.OperationalError: it cannot be reached.
        """
        with self._engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def reset(self) -> None:
        """Delete every row of Bastion's tables except key material (sealed secrets),
        access keys and the trail, in one transaction: the emulator's reset between two
        tests. The schema and its version stay."""
        with self.engine.begin() as conn:
            groups = metadata.tables.get("thing_groups")
            if groups is not None and "parent_name" in groups.c:
                conn.execute(sa.update(groups).values(parent_name=None))
            for table in reversed(metadata.sorted_tables):
                if table.name not in _KEEP_ON_RESET and not table.name.startswith("trail"):
                    conn.execute(table.delete())

    def close(self, wait: float = 10.0) -> None:
        """Close every pooled connection, after waiting up to ``wait`` seconds for those
        still in use to come back (a worker thread finishing a transaction while Bastion
        stops): a connection in use when the pool goes would be left open."""
        checked_out = getattr(self._engine.pool, "checkedout", None)
        if checked_out is not None:
            deadline = time.monotonic() + wait
            while checked_out() > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (the newest by default).

        :raises StoreError: the database holds a revision this code does not know (it was
            upgraded by a newer Bastion).
        """
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_ID})
            current = MigrationContext.configure(conn).get_current_revision()
            if current is not None:
                try:
                    ScriptDirectory.from_config(_alembic_config()).get_revision(current)
                except CommandError:
                    raise StoreError(
                        f"the database schema is at revision {current!r}, which this version "
                        "of Bastion does not know (was it upgraded by a newer one?)"
                    ) from None
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        """The schema revision of the database (``None`` before the first migration)."""
        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        """Whether the schema is at the newest revision of this code."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        return self.current_revision() == head

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        A writing transaction opened inside a :meth:`join_writes` block (on this thread)
        calls the block's participant before it commits and after.

        :param readonly: the block only reads. On SQLite this starts a deferred
            transaction, which does not take the write lock.
        :raises Exception: whatever the block, or a joined participant, raised.
        """
        participant = None if readonly else participant_of(self)
        started = time.perf_counter()
        failed = True
        try:
            with self._engine.connect() as conn:
                if readonly:
                    conn.execution_options(**{READONLY_OPTION: True})
                with conn.begin():
                    uow = UnitOfWork(conn)
                    yield uow
                    if participant is not None:
                        participant.before_commit(uow)
                failed = False
                if participant is not None:
                    participant.after_commit()
        finally:
            self.times.add("read" if readonly else "write", time.perf_counter() - started,
                           failed=failed)

    def join_writes(self, participant: CommitParticipant) -> AbstractContextManager[None]:
        """A block whose writing transactions on this store, opened by this thread, are
        joined by ``participant``: its ``before_commit(uow)`` is each one's last work,
        inside the transaction, and its ``after_commit()`` follows each commit (see
        :mod:`._joining` for what is not joined).

        :raises TypeError: ``participant`` lacks ``before_commit`` or ``after_commit``.
        """
        if not (callable(getattr(participant, "before_commit", None))
                and callable(getattr(participant, "after_commit", None))):
            raise TypeError("participant must have before_commit(uow) and after_commit()")
        return joining(self, participant)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config
