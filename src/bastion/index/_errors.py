"""Exceptions of the fleet index.

Whose fault, and what the peer sees: every :class:`FleetIndexError` is a *remote*
violation — an API caller sent a query or a configuration AWS would refuse, or asked an
index that does not exist or is still being built. Each carries its AWS error type and
HTTP status (the wire-error contract, :class:`bastion.errors.ServiceError`); the API
answers ``{"message": …}`` with them. Local misuse (a wrong type from our own caller)
raises :class:`TypeError`.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class FleetIndexError(ServiceError):
    """Base class: a request the fleet index refuses."""


class InvalidQueryError(FleetIndexError):
    """The query string is not valid: the peer sees 400 ``InvalidQueryException``."""

    aws_error_type = "InvalidQueryException"
    http_status = 400


class InvalidAggregationError(FleetIndexError):
    """The aggregation field cannot be aggregated as asked: 400
    ``InvalidAggregationException``."""

    aws_error_type = "InvalidAggregationException"
    http_status = 400


class IndexNotReadyError(FleetIndexError):
    """The index is being built: 400 ``IndexNotReadyException``."""

    aws_error_type = "IndexNotReadyException"
    http_status = 400


class IndexNotFoundError(FleetIndexError):
    """No such index, or thing (group) indexing is off: 404 ``ResourceNotFoundException``."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class InvalidIndexRequestError(FleetIndexError):
    """A request that breaks a rule (a bad configuration, a bad page token): 400
    ``InvalidRequestException``."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
