"""The request side of an authorization: who is asking (context) and for what (request)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from bastion.account import format_arn

_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_EMPTY_STR: Mapping[str, str] = MappingProxyType({})

#: X.509 name attributes that have ``iot:Certificate.Subject.<Attr>`` /
#: ``iot:Certificate.Issuer.<Attr>`` policy variables.
CERTIFICATE_NAME_ATTRIBUTES: tuple[str, ...] = (
    "DistinguishedNameQualifier",
    "Country",
    "Organization",
    "OrganizationalUnit",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
)

#: Alternative-name kinds with ``iot:Certificate.{Subject,Issuer}.AlternativeName.<Kind>``
#: policy variables.
ALTERNATIVE_NAME_TYPES: tuple[str, ...] = (
    "RFC822Name",
    "DNSName",
    "DirectoryName",
    "UniformResourceIdentifier",
    "IPAddress",
)


def _no_strings() -> Mapping[str, str]:
    return _EMPTY_STR


def _no_values() -> Mapping[str, Sequence[str]]:
    return _EMPTY


def _freeze_multi(
    name: str, value: object, *, keep_scalars: bool = False
) -> Mapping[str, str | tuple[str, ...]]:
    """Copy a mapping of str → str-or-sequence into a read-only mapping of tuples.

    A bare ``str`` value becomes a one-element tuple, unless ``keep_scalars`` (for ``extra``,
    where a scalar marks a single-valued key and a sequence a multi-valued one).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of str to a sequence of str")
    if not value:
        return _EMPTY  # shared: a broker holds one context per connection
    frozen: dict[str, str | tuple[str, ...]] = {}
    for key, values in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__}")
        if isinstance(values, str):
            frozen[key] = values if keep_scalars else (values,)
        elif isinstance(values, Sequence) and all(isinstance(v, str) for v in values):
            frozen[key] = tuple(values)
        else:
            raise TypeError(f"{name}[{key!r}] must be a str or a sequence of str")
    return MappingProxyType(frozen)


def _freeze_single(name: str, value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"{name} must be a mapping of str to str")
    return MappingProxyType(dict(value)) if value else _EMPTY_STR


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestContext:
    """Everything policy variables and condition keys can refer to, for one principal on one
    connection. The broker builds it once per session (CONNECT); the API builds one per
    ``TestAuthorization`` call.

    ``None`` (or an absent mapping entry) means *not available*: the variable stays
    unsubstituted and the condition key is missing from the request context.

    :param region: region of the requested resources (``arn:…:iot:<region>:…``).
    :param account: account id of the requested resources.
    :param client_id: ``iot:ClientId``.
    :param thing_name: ``iot:Connection.Thing.ThingName``. The caller must only set the thing
        fields when AWS would: the client id names a thing attached to the principal.
    :param thing_type_name: ``iot:Connection.Thing.ThingTypeName``.
    :param thing_attributes: ``iot:Connection.Thing.Attributes[<name>]`` (names case-sensitive).
    :param is_attached: ``iot:Connection.Thing.IsAttached`` (rendered ``"true"``/``"false"``).
    :param certificate_subject: subject attribute → values, keyed by the names in
        :data:`CERTIFICATE_NAME_ATTRIBUTES` (``{"CommonName": ["dev1"]}``).
    :param certificate_issuer: issuer attribute → values, same keys.
    :param subject_alternative_names: kind → values, keyed by :data:`ALTERNATIVE_NAME_TYPES`.
    :param issuer_alternative_names: kind → values, same keys.
    :param certificate_serial_number: ``iot:Certificate.SerialNumber``.
    :param certificate_id: ``iot:CertificateId`` (the AWS IoT certificate id, 64 hex).
    :param source_ip: ``aws:SourceIp`` (the client's address, IPv4 or IPv6 text).
    :param extra: further condition keys (``"iot:ConnectAttributes"``, ``"aws:CurrentTime"``,
        …) → a value or a list of values. Names are case-insensitive; the built-in keys above
        take precedence.
    :param partition: ARN partition of the requested resources.
    :raises TypeError: a field has the wrong type.
    """

    region: str
    account: str
    client_id: str | None = None
    thing_name: str | None = None
    thing_type_name: str | None = None
    thing_attributes: Mapping[str, str] = field(default_factory=_no_strings, hash=False)
    is_attached: bool | None = None
    certificate_subject: Mapping[str, Sequence[str]] = field(default_factory=_no_values, hash=False)
    certificate_issuer: Mapping[str, Sequence[str]] = field(default_factory=_no_values, hash=False)
    subject_alternative_names: Mapping[str, Sequence[str]] = field(default_factory=_no_values, hash=False)
    issuer_alternative_names: Mapping[str, Sequence[str]] = field(default_factory=_no_values, hash=False)
    certificate_serial_number: str | None = None
    certificate_id: str | None = None
    source_ip: str | None = None
    extra: Mapping[str, str | Sequence[str]] = field(default_factory=_no_values, hash=False)
    partition: str = "aws"

    def __post_init__(self) -> None:
        for name in ("region", "account", "partition"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be str")
        for name in (
            "client_id",
            "thing_name",
            "thing_type_name",
            "certificate_serial_number",
            "certificate_id",
            "source_ip",
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be str or None")
        if self.is_attached is not None and not isinstance(self.is_attached, bool):
            raise TypeError("is_attached must be bool or None")
        object.__setattr__(
            self, "thing_attributes", _freeze_single("thing_attributes", self.thing_attributes)
        )
        for name in (
            "certificate_subject",
            "certificate_issuer",
            "subject_alternative_names",
            "issuer_alternative_names",
        ):
            object.__setattr__(self, name, _freeze_multi(name, getattr(self, name)))
        object.__setattr__(self, "extra", _freeze_multi("extra", self.extra, keep_scalars=True))

    def arn(self, resource_type: str, name: str) -> str:
        """The ARN of an IoT resource in this context's partition, region and account.

        ``context.arn("topic", "a/b")`` → ``"arn:aws:iot:<region>:<account>:topic/a/b"``.
        """
        return format_arn(f"{resource_type}/{name}", partition=self.partition, service="iot",
                          region=self.region, account_id=self.account)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One authorization question: may this context perform ``action`` on ``resource``?

    :ivar action: the action, e.g. ``"iot:Publish"``.
    :ivar resource: the full resource ARN, e.g. ``context.arn("topic", "a/b")``.
    :ivar context: the requesting principal's context.
    """

    action: str
    resource: str
    context: RequestContext
