"""Evaluating a template with parameter values into a provisioning plan (pure).

Theory of operation
-------------------
:func:`resolve_parameters` builds the value of every parameter: the built-in ones
(``AWS::IoT::Certificate::Id`` and the certificate's subject fields) always come from the
certificate being provisioned — a device can never set them — and the declared ones from
the request (device parameters, merged with the pre-provisioning hook's overrides) or
their ``Default``. A declared parameter without a value is an error that lists every
missing name.

:func:`plan_provisioning` then evaluates the template: conditions once each (memoized),
intrinsic functions depth first, ``{"Ref": "AWS::NoValue"}`` removing the key or list item
it stands in. Resources whose ``Condition`` is false are skipped. The result is a
:class:`ProvisioningPlan` of plain values — which thing, which certificate status, which
policies, which device configuration — that :mod:`._apply` carries out. Every failure is a
:class:`~bastion.provisioning.ParameterError` naming the place in the template.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from ._errors import ParameterError, TemplateError
from ._template import (
    BUILTIN_PARAMETERS,
    CERTIFICATE_ID,
    NO_VALUE,
    RESERVED_PREFIX,
    OverrideAction,
    ResourceType,
    Template,
    function_of,
    substitute,
)

MAX_PARAMETERS: Final = 100
MAX_PARAMETER_LENGTH: Final = 4096

_SUBJECT_FIELDS: Final = {
    "AWS::IoT::Certificate::Country": NameOID.COUNTRY_NAME,
    "AWS::IoT::Certificate::Organization": NameOID.ORGANIZATION_NAME,
    "AWS::IoT::Certificate::OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "AWS::IoT::Certificate::DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
    "AWS::IoT::Certificate::StateName": NameOID.STATE_OR_PROVINCE_NAME,
    "AWS::IoT::Certificate::CommonName": NameOID.COMMON_NAME,
    "AWS::IoT::Certificate::SerialNumber": NameOID.SERIAL_NUMBER,
}


class _Absent:
    """What ``{"Ref": "AWS::NoValue"}`` evaluates to: the enclosing key is left out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "AWS::NoValue"


ABSENT: Final = _Absent()


# -- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThingPlan:
    """The thing to create or update. ``None`` fields were not given by the template."""

    thing_name: str
    attributes: Mapping[str, str] | None = None
    thing_type_name: str | None = None
    thing_groups: tuple[str, ...] | None = None
    overrides: Mapping[str, OverrideAction] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CertificatePlan:
    certificate_id: str
    status: str = "ACTIVE"
    status_override: OverrideAction | None = None


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """A policy to attach: an existing one (``document`` is ``None``) or one made from
    the document (named by the template, else by the SHA-256 of the document)."""

    logical_name: str
    policy_name: str
    document: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisioningPlan:
    thing: ThingPlan | None
    certificate: CertificatePlan | None
    policies: tuple[PolicyPlan, ...]
    device_configuration: Mapping[str, str]


# -- parameters -----------------------------------------------------------------------------


def certificate_parameters(certificate: x509.Certificate, certificate_id: str
                           ) -> dict[str, str]:
    """The built-in parameters of a certificate: ``AWS::IoT::Certificate::Id`` and the
    subject fields it has (the first value of each)."""
    values = {CERTIFICATE_ID: certificate_id}
    for name, oid in _SUBJECT_FIELDS.items():
        found = certificate.subject.get_attributes_for_oid(oid)
        if found:
            value = found[0].value
            values[name] = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return values


def check_request_parameters(parameters: object) -> dict[str, str]:
    """Validate the ``parameters`` of a RegisterThing request (or a hook's overrides).

    :raises ParameterError: not an object of strings, too many or too long, or a name
        reserved for the built-in parameters (``AWS::…``).
    """
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ParameterError("parameters must be an object of names and string values")
    if len(parameters) > MAX_PARAMETERS:
        raise ParameterError(f"at most {MAX_PARAMETERS} parameters can be given")
    checked: dict[str, str] = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not name:
            raise ParameterError("parameter names are non-empty strings")
        if name.startswith(RESERVED_PREFIX):
            raise ParameterError(f"parameter {name!r} is reserved: names starting with "
                                 f"{RESERVED_PREFIX} are set by Bastion from the certificate")
        if not isinstance(value, str):
            raise ParameterError(f"the value of parameter {name!r} must be a string")
        if len(value) > MAX_PARAMETER_LENGTH:
            raise ParameterError(f"the value of parameter {name!r} is longer than "
                                 f"{MAX_PARAMETER_LENGTH} characters")
        checked[name] = value
    return checked


def resolve_parameters(template: Template, given: Mapping[str, str],
                       builtins: Mapping[str, str]) -> dict[str, str]:
    """The value of every parameter the template may use.

    :param given: the request's parameters (already checked, overrides merged).
    :param builtins: :func:`certificate_parameters` of the certificate being provisioned;
        they win over anything given.
    :raises ParameterError: a declared parameter has no value (all are listed), or a
        declared built-in is absent from the certificate.
    """
    values = {name: value for name, value in given.items()
              if not name.startswith(RESERVED_PREFIX)}
    missing: list[str] = []
    for parameter in template.parameters:
        if parameter.name in BUILTIN_PARAMETERS:
            if parameter.name not in builtins:
                missing.append(parameter.name)
        elif parameter.name not in values:
            if parameter.default is None:
                missing.append(parameter.name)
            else:
                values[parameter.name] = parameter.default
    if missing:
        raise ParameterError("Missing parameters: " + ", ".join(missing))
    values.update(builtins)
    return values


# -- evaluation -----------------------------------------------------------------------------


class _Evaluator:
    __slots__ = ("_conditions", "_evaluating", "_template", "_values")

    def __init__(self, template: Template, values: Mapping[str, str]) -> None:
        self._template = template
        self._values = values
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def value(self, expression: object, path: str) -> Any:
        if isinstance(expression, list):
            items = [self.value(item, f"{path}[{i}]") for i, item in enumerate(expression)]
            return [item for item in items if item is not ABSENT]
        if not isinstance(expression, dict):
            return expression
        if not any(key == "Ref" or key.startswith("Fn::") for key in expression):
            result = {key: self.value(item, f"{path}.{key}") for key, item in expression.items()}
            return {key: item for key, item in result.items() if item is not ABSENT}
        try:
            name, argument = function_of(expression, path)
        except TemplateError as exc:  # parse_template checked this; keep the contract
            raise ParameterError(exc.message) from None
        where = f"{path}.{name}"
        if name == "Ref":
            return self._ref(argument, where)
        if name == "Fn::Join":
            delimiter, items = argument
            values = self.value(items, f"{where}[1]")
            if not isinstance(values, list):
                raise ParameterError(f"{where}: Fn::Join needs a list, got {_kind(values)}")
            return str(delimiter).join(self._text(item, where) for item in values)
        if name == "Fn::Select":
            index = self._index(self.value(argument[0], f"{where}[0]"), where)
            items = self.value(argument[1], f"{where}[1]")
            if not isinstance(items, list):
                raise ParameterError(f"{where}: Fn::Select needs a list, got {_kind(items)}")
            if index >= len(items):
                raise ParameterError(f"{where}: index {index} is out of range (the list has "
                                     f"{len(items)} items)")
            selected = items[index]
            if selected is None:
                raise ParameterError(f"{where}: item {index} is null")
            return selected
        if name == "Fn::Split":
            delimiter, source = argument
            return self._text(self.value(source, f"{where}[1]"), where).split(delimiter)
        if name == "Fn::FindInMap":
            table, key, sub_key = (self._text(self.value(item, f"{where}[{i}]"), where)
                                   for i, item in enumerate(argument))
            found = self._template.mappings.get(table, {}).get(key, {}).get(sub_key)
            if found is None:
                raise ParameterError(f"{where}: mapping {table!r} has no value for "
                                     f"{key!r} / {sub_key!r}")
            return list(found) if isinstance(found, list) else found
        if name == "Fn::Sub":
            return self._sub(argument, where)
        if name == "Fn::If":
            condition, if_true, if_false = argument
            chosen = if_true if self.condition(condition) else if_false
            return self.value(chosen, f"{where}[{1 if chosen is if_true else 2}]")
        raise ParameterError(f"{path}: {name} cannot be evaluated here")

    def _ref(self, name: object, path: str) -> Any:
        if name == NO_VALUE:
            return ABSENT
        if not isinstance(name, str) or name not in self._values:
            raise ParameterError(f"{path}: parameter {name!r} has no value")
        return self._values[name]

    def _sub(self, argument: object, path: str) -> str:
        if isinstance(argument, list):
            text, raw = argument
            variables = {key: self._text(self.value(item, f"{path}[1].{key}"), path)
                         for key, item in raw.items()}
        else:
            text, variables = argument, {}

        def lookup(name: str) -> str:
            if name in variables:
                return variables[name]
            return self._text(self._ref(name, path), path)

        return substitute(str(text), lookup)

    def condition(self, name: str) -> bool:
        known = self._conditions.get(name)
        if known is not None:
            return known
        if name in self._evaluating or name not in self._template.conditions:
            raise ParameterError(f"Conditions.{name}: cannot be evaluated")
        self._evaluating.add(name)
        result = self._condition(self._template.conditions[name], f"Conditions.{name}")
        self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def _condition(self, expression: Any, path: str) -> bool:
        name, argument = function_of(expression, path)
        where = f"{path}.{name}"
        if name == "Condition":
            return self.condition(argument)
        if name == "Fn::Equals":
            left = self.value(argument[0], f"{where}[0]")
            right = self.value(argument[1], f"{where}[1]")
            return bool(_comparable(left) == _comparable(right))
        if name == "Fn::Not":
            return not self._condition(argument[0], f"{where}[0]")
        if name == "Fn::And":
            return all(self._condition(item, f"{where}[{i}]") for i, item in enumerate(argument))
        if name == "Fn::Or":
            return any(self._condition(item, f"{where}[{i}]") for i, item in enumerate(argument))
        raise ParameterError(f"{path}: {name} is not a condition")

    @staticmethod
    def _text(value: object, path: str) -> str:
        if isinstance(value, str):
            return value
        raise ParameterError(f"{path}: expected a string, got {_kind(value)}")

    @staticmethod
    def _index(value: object, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            index = value
        elif isinstance(value, str) and value.isdigit():
            index = int(value)
        else:
            raise ParameterError(f"{path}: the index is not a number")
        if index < 0:
            raise ParameterError(f"{path}: the index cannot be negative")
        return index


def _comparable(value: object) -> object:
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def _kind(value: object) -> str:
    if value is ABSENT:
        return "AWS::NoValue"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


# -- the plan -------------------------------------------------------------------------------


def plan_provisioning(template: Template, values: Mapping[str, str]) -> ProvisioningPlan:
    """Evaluate ``template`` with the parameter ``values`` of :func:`resolve_parameters`.

    :raises ParameterError: an intrinsic function fails, or a resource property
        evaluates to a value of the wrong type (the message names the place).
    """
    evaluator = _Evaluator(template, values)
    thing: ThingPlan | None = None
    certificate: CertificatePlan | None = None
    policies: list[PolicyPlan] = []
    for resource in template.resources:
        if resource.condition is not None and not evaluator.condition(resource.condition):
            continue
        path = f"Resources.{resource.logical_name}.Properties"
        properties = {name: evaluator.value(value, f"{path}.{name}")
                      for name, value in resource.properties.items()}
        properties = {name: value for name, value in properties.items() if value is not ABSENT}
        if resource.type is ResourceType.THING:
            thing = _thing(properties, resource.overrides, path)
        elif resource.type is ResourceType.CERTIFICATE:
            certificate = _certificate(properties, resource.overrides, values, path)
        else:
            policies.append(_policy(resource.logical_name, properties, path))
    configuration: dict[str, str] = {}
    for key, expression in template.device_configuration.items():
        path = f"DeviceConfiguration.{key}"
        value = evaluator.value(expression, path)
        if value is ABSENT:
            continue
        if not isinstance(value, str):
            raise ParameterError(f"{path}: expected a string, got {_kind(value)}")
        configuration[key] = value
    return ProvisioningPlan(thing, certificate, tuple(policies), configuration)


def _string(properties: Mapping[str, Any], name: str, path: str, *,
            required: bool = False) -> str | None:
    value = properties.get(name)
    if value is None:
        if required:
            raise ParameterError(f"{path}.{name}: a value is required")
        return None
    if not isinstance(value, str):
        raise ParameterError(f"{path}.{name}: expected a string, got {_kind(value)}")
    if not value:
        raise ParameterError(f"{path}.{name}: must not be empty")
    return value


def _thing(properties: Mapping[str, Any], overrides: Mapping[str, OverrideAction],
           path: str) -> ThingPlan:
    name = _string(properties, "ThingName", path, required=True)
    assert name is not None
    attributes: dict[str, str] | None = None
    payload = properties.get("AttributePayload")
    if payload is not None:
        if not isinstance(payload, dict):
            raise ParameterError(f"{path}.AttributePayload: expected an object, got "
                                 f"{_kind(payload)}")
        attributes = {}
        for key, value in payload.items():
            if not isinstance(value, str):
                raise ParameterError(f"{path}.AttributePayload.{key}: expected a string, got "
                                     f"{_kind(value)}")
            attributes[key] = value
    groups: tuple[str, ...] | None = None
    raw_groups = properties.get("ThingGroups")
    if raw_groups is not None:
        if not isinstance(raw_groups, list) or not all(
                isinstance(group, str) and group for group in raw_groups):
            raise ParameterError(f"{path}.ThingGroups: expected a list of group names")
        groups = tuple(dict.fromkeys(raw_groups))
    return ThingPlan(name, attributes, _string(properties, "ThingTypeName", path), groups,
                     dict(overrides))


def _certificate(properties: Mapping[str, Any], overrides: Mapping[str, OverrideAction],
                 values: Mapping[str, str], path: str) -> CertificatePlan:
    certificate_id = _string(properties, "CertificateId", path, required=True)
    if certificate_id != values.get(CERTIFICATE_ID):
        raise ParameterError(f"{path}.CertificateId: must be the certificate being provisioned")
    assert certificate_id is not None
    status = _string(properties, "Status", path) or "ACTIVE"
    if status.upper() not in ("ACTIVE", "INACTIVE"):
        raise ParameterError(f"{path}.Status: must be ACTIVE or INACTIVE, not {status!r}")
    return CertificatePlan(certificate_id, status.upper(), overrides.get("Status"))


def _policy(logical_name: str, properties: Mapping[str, Any], path: str) -> PolicyPlan:
    document = properties.get("PolicyDocument")
    if document is None:
        name = _string(properties, "PolicyName", path, required=True)
        assert name is not None
        return PolicyPlan(logical_name, name)
    if isinstance(document, dict):
        document = json.dumps(document, separators=(",", ":"))
    if not isinstance(document, str):
        raise ParameterError(f"{path}.PolicyDocument: expected a JSON document, got "
                             f"{_kind(document)}")
    name = _string(properties, "PolicyName", path)
    if name is None:
        name = hashlib.sha256(document.encode("utf-8")).hexdigest()
    return PolicyPlan(logical_name, name, document)
