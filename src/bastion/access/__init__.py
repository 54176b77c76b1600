"""Access keys of the control-plane API: who may call it, and with which role.

* :class:`Role` — ``admin`` (everything), ``operator`` (everything but access-key and
  user management), ``auditor`` (read-only). The API's authorizer decides what each role
  may call; this package only names them.
* :class:`AccessKeyService` — creates AWS-shaped access keys (``AKIA…`` id and a
  40-character secret), stores the secret sealed under the installation's master key
  (never in clear), and answers :meth:`AccessKeyService.lookup` for SigV4 verification
  (it implements the API's ``CredentialSource``).
* :class:`AccessKey` — what a listing shows (no secret), :class:`AccessKeyStatus`.
* :class:`TemporaryCredentialService` — temporary credentials (``ASIA…`` key id, secret,
  session token) that the credentials provider issues to devices for a role alias, and
  that SigV4 verification resolves (:meth:`TemporaryCredentialService.resolve`); the
  token is sealed, nothing is stored. :func:`role_of_arn` says which role an IAM role
  ARN names; temporary credentials never carry ``admin`` (:data:`ASSUMABLE_ROLES`).
* :class:`AccessError` and subclasses: refused requests, carrying ``aws_error_type`` and
  ``http_status`` (the wire-error contract, :class:`bastion.errors.ServiceError`).
"""

from __future__ import annotations

from ._errors import AccessError, AccessKeyNotFoundError, LastAdminKeyError
from ._model import AccessKey, AccessKeyStatus, Role
from ._role_arns import ASSUMABLE_ROLES, ROLE_NAMES, role_arn, role_of_arn
from ._service import AccessKeyService
from ._session_tokens import SessionClaims
from ._temporary import (
    ExpiredSessionTokenError,
    InvalidSessionTokenError,
    TemporaryCredentials,
    TemporaryCredentialService,
)

__all__ = [
    "ASSUMABLE_ROLES",
    "ROLE_NAMES",
    "AccessError",
    "AccessKey",
    "AccessKeyNotFoundError",
    "AccessKeyService",
    "AccessKeyStatus",
    "ExpiredSessionTokenError",
    "InvalidSessionTokenError",
    "LastAdminKeyError",
    "Role",
    "SessionClaims",
    "TemporaryCredentialService",
    "TemporaryCredentials",
    "role_arn",
    "role_of_arn",
]
