"""Errors of the ACM analog and of domain configurations.

Whose fault, and what the peer sees: every :class:`DomainsError` is a *remote* violation
(an operator asked for something the rules refuse), answered through the wire-error
contract (:class:`bastion.errors.ServiceError`). The ACM operations answer ACM's types
(its JSON protocol answers them all with 400); the domain configuration operations answer
``iot``'s.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class DomainsError(ServiceError):
    """Base class of this package's refusals."""


# -- ACM ---------------------------------------------------------------------------------

class CertificateInvalidError(DomainsError, ValueError):
    """ImportCertificate: the certificate, key or chain does not parse, the key does not
    match the certificate, or the certificate has expired (ACM ``ValidationException``)."""

    aws_error_type = "ValidationException"
    http_status = 400


class InvalidArnError(DomainsError, ValueError):
    """An ARN that is not an ACM certificate ARN of this account (``InvalidArnException``)."""

    aws_error_type = "InvalidArnException"
    http_status = 400


class CertificateNotFoundError(DomainsError, LookupError):
    """No imported certificate has this ARN (ACM ``ResourceNotFoundException``)."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 400


class CertificateInUseError(DomainsError):
    """DeleteCertificate of a certificate a domain configuration uses
    (``ResourceInUseException``)."""

    aws_error_type = "ResourceInUseException"
    http_status = 400


# -- iot: domain configurations ------------------------------------------------------------

class InvalidDomainRequestError(DomainsError, ValueError):
    """A malformed or unsupported domain configuration (``InvalidRequestException``)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class CertificateValidationError(DomainsError, ValueError):
    """The server certificate does not fit the domain: it does not cover the domain name,
    has expired, or is unknown (``CertificateValidationException``)."""

    aws_error_type = "CertificateValidationException"
    http_status = 400


class DomainNotFoundError(DomainsError, LookupError):
    """No domain configuration has this name (``ResourceNotFoundException``)."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class DomainExistsError(DomainsError):
    """The configuration name, or the domain name, is taken
    (``ResourceAlreadyExistsException``)."""

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409
