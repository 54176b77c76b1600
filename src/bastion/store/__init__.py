"""Bastion's storage: SQLAlchemy Core on SQLite (embedded default) or PostgreSQL.

Only this package knows SQL. Services open a unit of work and use its repositories::

    store = Store.open("sqlite:///bastion-data/bastion.db")   # migrates to the newest schema
    with store.transaction() as uow:
        row = uow.things.get("dev1")

* :class:`Store` — the engine, Alembic migrations (``migrations/``), and
  :meth:`Store.transaction` yielding a :class:`UnitOfWork`; :meth:`Store.join_writes`
  lets a :class:`CommitParticipant` add its writes to each writing transaction of a
  block, just before the commit.
* Repositories, one per aggregate: things, thing types, thing groups (hierarchy and
  membership), thing principals, certificates, CA certificates, policies (versions and
  attachments), settings, sealed secrets, the connection journal, API access keys, and
  the append-only trail (no update or delete) and its signed digests, billing groups, role aliases, and the
  tags of every taggable resource (:data:`TAGGABLE`); certificate rotations and their
  policies; code signing (certificates with sealed keys, profiles, jobs), OTA updates
  and streams.
* Rows: frozen values read and written by the repositories (no ARNs; services add them).
* Pagination: listings return ``(rows, next_token)`` with opaque, stable tokens;
  :class:`InvalidPageTokenError` for a token that is not one of ours.
"""

from __future__ import annotations

from ._access_keys import AccessKeyRepository, AccessKeyRow
from ._alerts import AlertTargetRepository, AlertTargetRow, DeadLetterRepository, DeadLetterRow
from ._audit import (
    AuditConfigurationRow,
    AuditFindingRow,
    AuditFleetReader,
    AuditMitigationExecutionRow,
    AuditMitigationRepository,
    AuditMitigationTaskRow,
    AuditRepository,
    AuditSuppressionRow,
    AuditTaskRow,
    CrlRepository,
    CrlRow,
    MitigationActionRepository,
    MitigationActionRow,
    ScheduledAuditRow,
)
from ._billing_groups import BillingGroupRepository
from ._connections import ConnectionJournalRepository, ConnectionSessionRow
from ._detect import (
    DetectModelRow,
    DetectProfileRow,
    DetectRepository,
    MetricValueRow,
    ViolationEventRow,
    ViolationRow,
)
from ._domains import DomainConfigurationRow, DomainRepository, ServerCertificateRow
from ._engine import create_store_engine
from ._errors import ConflictError, InvalidPageTokenError, StoreError
from ._files import FileRepository, FileRow, FileUploadRow
from ._groups import ThingGroupRepository
from ._identity import CaCertificateRepository, CertificateRepository
from ._index_sources import (
    IndexedThingRow,
    IndexSourceRepository,
    LatestConnectionRow,
    ShadowStateRow,
)
from ._jobs import (
    JobExecutionRepository,
    JobExecutionRow,
    JobRepository,
    JobRow,
    JobTargetRow,
    JobTemplateRepository,
    JobTemplateRow,
)
from ._joining import CommitParticipant
from ._pages import Page, page_of_sorted
from ._policies import PolicyRepository
from ._provisioning import (
    OwnershipTokenRow,
    ProvisioningClaimRow,
    ProvisioningRepository,
    ProvisioningTemplateRow,
    TemplateVersionRow,
)
from ._role_aliases import RoleAliasRepository
from ._rotation import (
    CertificateRotationRepository,
    CertificateRotationRow,
    LiveCertificateRow,
    RotationPolicyRepository,
    RotationPolicyRow,
)
from ._rows import (
    AttachedPolicy,
    BillingGroupRow,
    CaCertificateRow,
    CertificateRow,
    PolicyRow,
    PolicyTarget,
    PolicyVersionRow,
    RoleAliasRow,
    ThingGroupRow,
    ThingRow,
    ThingTypeRow,
)
from ._rules import (
    TopicRuleDestinationRepository,
    TopicRuleDestinationRow,
    TopicRuleRepository,
    TopicRuleRow,
)
from ._schema import metadata
from ._settings import SealedSecretRepository, SettingsRepository
from ._shadows import ShadowRepository, ShadowRow
from ._signing import (
    OtaUpdateRepository,
    OtaUpdateRow,
    SigningCertificateRow,
    SigningJobRow,
    SigningProfileRow,
    SigningRepository,
)
from ._store import Store, TransactionTimes, UnitOfWork
from ._streams import StreamFileRow, StreamRepository, StreamRow
from ._tags import TAGGABLE, TagRepository
from ._things import ThingPrincipalRepository, ThingRepository, ThingTypeRepository
from ._threats import ThreatFindingRow, ThreatIntelSetRow, ThreatRepository
from ._trail import TrailHead, TrailRecordRow, TrailRepository
from ._trail_digests import TrailDigestRepository, TrailDigestRow

__all__ = [
    "TAGGABLE",
    "AccessKeyRepository",
    "AccessKeyRow",
    "AlertTargetRepository",
    "AlertTargetRow",
    "AttachedPolicy",
    "AuditConfigurationRow",
    "AuditFindingRow",
    "AuditFleetReader",
    "AuditMitigationExecutionRow",
    "AuditMitigationRepository",
    "AuditMitigationTaskRow",
    "AuditRepository",
    "AuditSuppressionRow",
    "AuditTaskRow",
    "BillingGroupRepository",
    "BillingGroupRow",
    "CaCertificateRepository",
    "CaCertificateRow",
    "CertificateRepository",
    "CertificateRotationRepository",
    "CertificateRotationRow",
    "CertificateRow",
    "CommitParticipant",
    "ConflictError",
    "ConnectionJournalRepository",
    "ConnectionSessionRow",
    "CrlRepository",
    "CrlRow",
    "DeadLetterRepository",
    "DeadLetterRow",
    "DetectModelRow",
    "DetectProfileRow",
    "DetectRepository",
    "DomainConfigurationRow",
    "DomainRepository",
    "FileRepository",
    "FileRow",
    "FileUploadRow",
    "IndexSourceRepository",
    "IndexedThingRow",
    "InvalidPageTokenError",
    "JobExecutionRepository",
    "JobExecutionRow",
    "JobRepository",
    "JobRow",
    "JobTargetRow",
    "JobTemplateRepository",
    "JobTemplateRow",
    "LatestConnectionRow",
    "LiveCertificateRow",
    "MetricValueRow",
    "MitigationActionRepository",
    "MitigationActionRow",
    "OtaUpdateRepository",
    "OtaUpdateRow",
    "OwnershipTokenRow",
    "Page",
    "PolicyRepository",
    "PolicyRow",
    "PolicyTarget",
    "PolicyVersionRow",
    "ProvisioningClaimRow",
    "ProvisioningRepository",
    "ProvisioningTemplateRow",
    "RoleAliasRepository",
    "RoleAliasRow",
    "RotationPolicyRepository",
    "RotationPolicyRow",
    "ScheduledAuditRow",
    "SealedSecretRepository",
    "ServerCertificateRow",
    "SettingsRepository",
    "ShadowRepository",
    "ShadowRow",
    "ShadowStateRow",
    "SigningCertificateRow",
    "SigningJobRow",
    "SigningProfileRow",
    "SigningRepository",
    "Store",
    "StoreError",
    "StreamFileRow",
    "StreamRepository",
    "StreamRow",
    "TagRepository",
    "TemplateVersionRow",
    "ThingGroupRepository",
    "ThingGroupRow",
    "ThingPrincipalRepository",
    "ThingRepository",
    "ThingRow",
    "ThingTypeRepository",
    "ThingTypeRow",
    "ThreatFindingRow",
    "ThreatIntelSetRow",
    "ThreatRepository",
    "TopicRuleDestinationRepository",
    "TopicRuleDestinationRow",
    "TopicRuleRepository",
    "TopicRuleRow",
    "TrailDigestRepository",
    "TrailDigestRow",
    "TrailHead",
    "TrailRecordRow",
    "TrailRepository",
    "TransactionTimes",
    "UnitOfWork",
    "ViolationEventRow",
    "ViolationRow",
    "create_store_engine",
    "metadata",
    "page_of_sorted",
]
