"""The provisioning template language: parsing and static checks (pure).

Theory of operation
-------------------
A template body is JSON with the sections AWS IoT documents — ``Parameters``,
``Mappings``, ``Conditions``, ``Resources`` and ``DeviceConfiguration`` (plus the
inert ``Description``/``Version``/``AWSTemplateFormatVersion``). :func:`parse_template`
reads it into a :class:`Template` and checks everything that does not depend on
parameter values, so that a bad template is refused when it is created (with the path
of the problem, ``Resources.thing.Properties.ThingName``), not when a device first uses
it:

* every intrinsic function (``Ref``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
  ``Fn::FindInMap``, ``Fn::Sub``, ``Fn::If``) has the right shape, and every name it
  uses exists: parameters (declared, or the built-in ``AWS::IoT::Certificate::*``
  ones), mappings, conditions;
* conditions (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``{"Condition"}``)
  appear only in ``Conditions`` and refer to each other without a cycle;
* resources are things, certificates and policies with the properties AWS defines
  (one thing and one certificate at most; the certificate is the one being provisioned,
  named by ``{"Ref": "AWS::IoT::Certificate::Id"}``), and ``OverrideSettings`` hold
  valid actions.

Evaluation with parameter values is :mod:`._evaluate`'s business.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._errors import TemplateError

MAX_TEMPLATE_BODY: Final = 10240

CERTIFICATE_ID: Final = "AWS::IoT::Certificate::Id"
NO_VALUE: Final = "AWS::NoValue"

SUBJECT_PARAMETERS: Final = (
    "AWS::IoT::Certificate::Country",
    "AWS::IoT::Certificate::Organization",
    "AWS::IoT::Certificate::OrganizationalUnit",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
    "AWS::IoT::Certificate::StateName",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::SerialNumber",
)
"""Built-in parameters read from the subject of the certificate being provisioned."""

BUILTIN_PARAMETERS: Final = frozenset((*SUBJECT_PARAMETERS, CERTIFICATE_ID))
RESERVED_PREFIX: Final = "AWS::"


class TemplateType(enum.StrEnum):
    FLEET_PROVISIONING = "FLEET_PROVISIONING"
    JITP = "JITP"


class ResourceType(enum.StrEnum):
    THING = "AWS::IoT::Thing"
    CERTIFICATE = "AWS::IoT::Certificate"
    POLICY = "AWS::IoT::Policy"


class OverrideAction(enum.StrEnum):
    """What to do when a resource of the template already exists."""

    DO_NOTHING = "DO_NOTHING"
    REPLACE = "REPLACE"
    FAIL = "FAIL"
    MERGE = "MERGE"


VALUE_FUNCTIONS: Final = frozenset(
    {"Ref", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::FindInMap", "Fn::Sub", "Fn::If"})
CONDITION_FUNCTIONS: Final = frozenset({"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"})

_TOP_LEVEL: Final = frozenset({"Parameters", "Mappings", "Conditions", "Resources",
                               "DeviceConfiguration", "Description", "Version",
                               "AWSTemplateFormatVersion"})
_PARAMETER_KEYS: Final = frozenset({"Type", "Default", "Description"})
_RESOURCE_KEYS: Final = frozenset({"Type", "Properties", "OverrideSettings", "Condition"})
_PROPERTIES: Final[Mapping[ResourceType, frozenset[str]]] = {
    ResourceType.THING: frozenset({"ThingName", "AttributePayload", "ThingTypeName",
                                   "ThingGroups"}),
    ResourceType.CERTIFICATE: frozenset({"CertificateId", "Status"}),
    ResourceType.POLICY: frozenset({"PolicyName", "PolicyDocument"}),
}
_UNSUPPORTED_PROPERTIES: Final = {
    "BillingGroup": "billing groups are not supported by Bastion",
    "CertificateSigningRequest": ("bulk registration is not supported; a provisioning "
                                  "template names its certificate with CertificateId"),
    "CertificatePem": ("bulk registration is not supported; a provisioning template names "
                       "its certificate with CertificateId"),
    "CACertificatePem": ("bulk registration is not supported; a provisioning template names "
                         "its certificate with CertificateId"),
}
_OVERRIDES: Final[Mapping[ResourceType, Mapping[str, frozenset[OverrideAction]]]] = {
    ResourceType.THING: {
        "AttributePayload": frozenset(OverrideAction),
        "ThingTypeName": frozenset(OverrideAction) - {OverrideAction.MERGE},
        "ThingGroups": frozenset(OverrideAction),
    },
    ResourceType.CERTIFICATE: {"Status": frozenset(OverrideAction) - {OverrideAction.MERGE}},
    ResourceType.POLICY: {},
}
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
_SUB_NAME: Final = re.compile(r"[A-Za-z0-9_:.]+")
MAX_CONDITION_OPERANDS: Final = 10


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """One entry of ``Resources``; ``properties`` still hold unevaluated expressions."""

    logical_name: str
    type: ResourceType
    properties: Mapping[str, Any]
    overrides: Mapping[str, OverrideAction]
    condition: str | None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed, statically valid template (the raw JSON values are shared, never
    mutated)."""

    template_type: TemplateType
    parameters: tuple[Parameter, ...]
    mappings: Mapping[str, Mapping[str, Mapping[str, Any]]]
    conditions: Mapping[str, Any]
    resources: tuple[Resource, ...]
    device_configuration: Mapping[str, Any]

    def declared(self, name: str) -> Parameter | None:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


def parse_template(body: str, template_type: TemplateType) -> Template:
    """Parse and statically check a template body.

    :raises TypeError: ``body`` is not a str.
    :raises TemplateError: the body is not JSON, too long, or not a valid template; the
        message names the place.
    """
    if not isinstance(body, str):
        raise TypeError(f"template body must be a str, not {type(body).__name__}")
    if len(body) > MAX_TEMPLATE_BODY:
        raise TemplateError(f"the template body is longer than {MAX_TEMPLATE_BODY} characters")
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise TemplateError(f"the template body is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise TemplateError("the template body must be a JSON object")
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        raise TemplateError(f"unknown section {unknown[0]!r}; expected Parameters, Mappings, "
                            "Conditions, Resources or DeviceConfiguration")
    parameters = _parameters(document.get("Parameters", {}))
    mappings = _mappings(document.get("Mappings", {}))
    conditions = _object(document.get("Conditions", {}), "Conditions")
    checker = _Checker(parameters, mappings, conditions)
    for name, expression in conditions.items():
        checker.condition_expression(expression, f"Conditions.{name}", name)
    checker.acyclic()
    resources = _resources(document.get("Resources"), checker)
    device_configuration = _object(document.get("DeviceConfiguration", {}),
                                   "DeviceConfiguration")
    for key, value in device_configuration.items():
        path = f"DeviceConfiguration.{key}"
        if isinstance(value, dict) and not _is_function(value):
            raise TemplateError("DeviceConfiguration must be flat (no nested objects)", path)
        if not isinstance(value, str | dict):
            raise TemplateError("DeviceConfiguration values are strings", path)
        checker.value(value, path)
    return Template(template_type, tuple(Parameter(n, d) for n, d in parameters.items()),
                    mappings, conditions, resources, device_configuration)


# -- sections ---------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TemplateError("must be a JSON object", path)
    return value


def _parameters(section: object) -> dict[str, str | None]:
    declared: dict[str, str | None] = {}
    for name, spec in _object(section, "Parameters").items():
        path = f"Parameters.{name}"
        if not name:
            raise TemplateError("a parameter name cannot be empty", "Parameters")
        spec = _object(spec, path)
        unknown = sorted(set(spec) - _PARAMETER_KEYS)
        if unknown:
            raise TemplateError(f"unknown key {unknown[0]!r} (expected Type, Default)", path)
        kind = spec.get("Type", "String")
        if kind != "String":
            raise TemplateError(f"Type {kind!r} is not supported; parameters are of Type String",
                                path)
        default = spec.get("Default")
        if default is not None and not isinstance(default, str):
            raise TemplateError("Default must be a string", path)
        if name.startswith(RESERVED_PREFIX) and name not in BUILTIN_PARAMETERS:
            raise TemplateError(f"{name!r} is not a built-in parameter; names starting with "
                                f"{RESERVED_PREFIX} are reserved", path)
        declared[name] = default
    return declared


def _mappings(section: object) -> dict[str, dict[str, dict[str, Any]]]:
    mappings = _object(section, "Mappings")
    for name, table in mappings.items():
        for key, row in _object(table, f"Mappings.{name}").items():
            for sub_key, value in _object(row, f"Mappings.{name}.{key}").items():
                path = f"Mappings.{name}.{key}.{sub_key}"
                if isinstance(value, list):
                    if not all(isinstance(item, str) for item in value):
                        raise TemplateError("a mapping list holds strings only", path)
                elif not isinstance(value, str):
                    raise TemplateError("a mapping value is a string or a list of strings "
                                        "(no functions inside Mappings)", path)
    return mappings


def _resources(section: object, checker: _Checker) -> tuple[Resource, ...]:
    if section is None:
        raise TemplateError("a template needs a Resources section")
    resources: list[Resource] = []
    counts = {kind: 0 for kind in ResourceType}
    for logical_name, raw in _object(section, "Resources").items():
        path = f"Resources.{logical_name}"
        raw = _object(raw, path)
        unknown = sorted(set(raw) - _RESOURCE_KEYS)
        if unknown:
            raise TemplateError(f"unknown key {unknown[0]!r}", path)
        try:
            kind = ResourceType(str(raw.get("Type")))
        except ValueError:
            raise TemplateError(f"Type {raw.get('Type')!r} is not one of "
                                + ", ".join(t.value for t in ResourceType), path) from None
        counts[kind] += 1
        properties = _object(raw.get("Properties", {}), f"{path}.Properties")
        for name in properties:
            if name in _UNSUPPORTED_PROPERTIES:
                raise TemplateError(_UNSUPPORTED_PROPERTIES[name], f"{path}.Properties.{name}")
            if name not in _PROPERTIES[kind]:
                allowed = ", ".join(sorted(_PROPERTIES[kind]))
                raise TemplateError(f"unknown property {name!r} of {kind.value} "
                                    f"(expected {allowed})", f"{path}.Properties")
        for name, value in properties.items():
            checker.value(value, f"{path}.Properties.{name}")
        _check_resource(kind, properties, f"{path}.Properties")
        condition = raw.get("Condition")
        if condition is not None and (not isinstance(condition, str)
                                      or condition not in checker.conditions):
            raise TemplateError(f"condition {condition!r} is not declared in Conditions",
                                f"{path}.Condition")
        overrides = _overrides(kind, raw.get("OverrideSettings", {}), f"{path}.OverrideSettings")
        resources.append(Resource(logical_name, kind, properties, overrides, condition))
    if not resources:
        raise TemplateError("a template needs at least one resource", "Resources")
    for kind in (ResourceType.THING, ResourceType.CERTIFICATE):
        if counts[kind] > 1:
            raise TemplateError(f"a template declares at most one {kind.value}", "Resources")
    if counts[ResourceType.CERTIFICATE] == 0:
        raise TemplateError(f"a template needs an {ResourceType.CERTIFICATE.value} resource "
                            f"with CertificateId {{\"Ref\": \"{CERTIFICATE_ID}\"}}", "Resources")
    return tuple(resources)


def _check_resource(kind: ResourceType, properties: Mapping[str, Any], path: str) -> None:
    if kind is ResourceType.THING:
        if "ThingName" not in properties:
            raise TemplateError("a thing needs a ThingName", path)
        payload = properties.get("AttributePayload")
        if isinstance(payload, dict) and not _is_function(payload):
            for key, value in payload.items():
                if isinstance(value, dict | list) and not _is_function(value):
                    raise TemplateError("attribute values are strings",
                                        f"{path}.AttributePayload.{key}")
        elif payload is not None and not _is_function(payload):
            raise TemplateError("AttributePayload must be an object of attribute names and "
                                "values", f"{path}.AttributePayload")
        groups = properties.get("ThingGroups")
        if groups is not None and not isinstance(groups, list) and not _is_function(groups):
            raise TemplateError("ThingGroups must be a list of thing group names",
                                f"{path}.ThingGroups")
    elif kind is ResourceType.CERTIFICATE:
        if properties.get("CertificateId") != {"Ref": CERTIFICATE_ID}:
            raise TemplateError(f"CertificateId must be {{\"Ref\": \"{CERTIFICATE_ID}\"}}: "
                                "the template provisions the certificate presented by the "
                                "device", f"{path}.CertificateId")
        status = properties.get("Status")
        if isinstance(status, str) and status.upper() not in ("ACTIVE", "INACTIVE"):
            raise TemplateError("Status must be ACTIVE or INACTIVE", f"{path}.Status")
    else:
        if ("PolicyName" in properties) == ("PolicyDocument" in properties):
            raise TemplateError("a policy has either a PolicyName or a PolicyDocument "
                                "(exactly one)", path)
        document = properties.get("PolicyDocument")
        if isinstance(document, str):
            try:
                json.loads(document)
            except ValueError:
                raise TemplateError("PolicyDocument is not valid JSON",
                                    f"{path}.PolicyDocument") from None


def _overrides(kind: ResourceType, raw: object, path: str) -> dict[str, OverrideAction]:
    result: dict[str, OverrideAction] = {}
    allowed = _OVERRIDES[kind]
    for name, action in _object(raw, path).items():
        if name not in allowed:
            if not allowed:
                raise TemplateError(f"{kind.value} resources have no OverrideSettings", path)
            raise TemplateError(f"{name!r} cannot be overridden (expected "
                                + ", ".join(sorted(allowed)) + ")", path)
        try:
            value = OverrideAction(action)
        except ValueError:
            value = None
        if value is None or value not in allowed[name]:
            choices = ", ".join(sorted(a.value for a in allowed[name]))
            raise TemplateError(f"{action!r} is not one of {choices}", f"{path}.{name}")
        result[name] = value
    return result


# -- expressions --------------------------------------------------------------------------


def _is_function(value: object) -> bool:
    """Whether ``value`` is an intrinsic function object (``Ref`` or ``Fn::…``); any other
    object is literal data (a policy statement's ``Condition`` stays data)."""
    return isinstance(value, dict) and any(
        key == "Ref" or key.startswith("Fn::") for key in value)


def function_of(value: Mapping[str, Any], path: str) -> tuple[str, Any]:
    """``(name, argument)`` of an intrinsic function object.

    :raises TemplateError: the object has other keys besides the function.
    """
    if len(value) != 1:
        names = ", ".join(sorted(value))
        raise TemplateError(f"an intrinsic function must be the only key of its object "
                            f"(found {names})", path)
    ((name, argument),) = value.items()
    return name, argument


def sub_references(text: str) -> list[str]:
    """The variable names ``${Name}`` of an ``Fn::Sub`` string (``${!Literal}`` skipped)."""
    return [match.group(1) for match in _SUB_VARIABLE.finditer(text)
            if not match.group(1).startswith("!")]


def substitute(text: str, lookup: Callable[[str], str]) -> str:
    """Replace ``${Name}`` with ``lookup(Name)`` and ``${!Literal}`` with ``${Literal}``."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return lookup(name)
    return _SUB_VARIABLE.sub(replace, text)


class _Checker:
    """Static checks of expressions against the declared names."""

    def __init__(self, parameters: Mapping[str, str | None],
                 mappings: Mapping[str, Any], conditions: Mapping[str, Any]) -> None:
        self.parameters = parameters
        self.mappings = mappings
        self.conditions = conditions
        self._edges: dict[str, set[str]] = {name: set() for name in conditions}

    def _ref(self, name: object, path: str, *, extra: frozenset[str] = frozenset(),
             allow_no_value: bool = False) -> None:
        if not isinstance(name, str):
            raise TemplateError("Ref takes a parameter name", path)
        if name in self.parameters or name in BUILTIN_PARAMETERS or name in extra:
            return
        if name == NO_VALUE and allow_no_value:
            return
        raise TemplateError(f"Ref to parameter {name!r}, which is not declared in Parameters",
                            path)

    def value(self, value: object, path: str, *, in_if: bool = False) -> None:
        """Check a value expression (anything outside ``Conditions``)."""
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.value(item, f"{path}[{index}]", in_if=in_if)
            return
        if not isinstance(value, dict):
            return
        if not _is_function(value):
            for key, item in value.items():
                self.value(item, f"{path}.{key}")
            return
        name, argument = function_of(value, path)
        where = f"{path}.{name}"
        if name in CONDITION_FUNCTIONS:
            raise TemplateError(f"{name} can only be used in the Conditions section (use "
                                "Fn::If with a declared condition)", path)
        if name not in VALUE_FUNCTIONS:
            raise TemplateError(f"unknown intrinsic function {name!r}", path)
        if name == "Ref":
            self._ref(argument, where, allow_no_value=in_if)
        elif name == "Fn::Join":
            delimiter, items = _pair(argument, where, "[delimiter, [values]]")
            if not isinstance(delimiter, str):
                raise TemplateError("the delimiter of Fn::Join is a string", where)
            if not isinstance(items, list) and not _is_function(items):
                raise TemplateError("Fn::Join joins a list of values", where)
            self.value(items, f"{where}[1]")
        elif name == "Fn::Select":
            index, items = _pair(argument, where, "[index, [values]]")
            if not (isinstance(index, int) and not isinstance(index, bool)) and not (
                    isinstance(index, str) or _is_function(index)):
                raise TemplateError("the index of Fn::Select is a number", where)
            if isinstance(index, int) and index < 0:
                raise TemplateError("the index of Fn::Select cannot be negative", where)
            self.value(index, f"{where}[0]")
            self.value(items, f"{where}[1]")
        elif name == "Fn::Split":
            delimiter, source = _pair(argument, where, "[delimiter, string]")
            if not isinstance(delimiter, str) or not delimiter:
                raise TemplateError("the delimiter of Fn::Split is a non-empty string", where)
            self.value(source, f"{where}[1]")
        elif name == "Fn::FindInMap":
            if not isinstance(argument, list) or len(argument) != 3:
                raise TemplateError("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]",
                                    where)
            table = argument[0]
            if isinstance(table, str) and table not in self.mappings:
                raise TemplateError(f"mapping {table!r} is not declared in Mappings", where)
            for index, item in enumerate(argument):
                self.value(item, f"{where}[{index}]")
        elif name == "Fn::Sub":
            self._sub(argument, where)
        else:  # Fn::If
            if not isinstance(argument, list) or len(argument) != 3:
                raise TemplateError("Fn::If takes [ConditionName, ValueIfTrue, ValueIfFalse]",
                                    where)
            condition = argument[0]
            if not isinstance(condition, str) or condition not in self.conditions:
                raise TemplateError(f"condition {condition!r} is not declared in Conditions",
                                    where)
            self.value(argument[1], f"{where}[1]", in_if=True)
            self.value(argument[2], f"{where}[2]", in_if=True)

    def _sub(self, argument: object, path: str) -> None:
        variables: dict[str, Any] = {}
        if isinstance(argument, list):
            if len(argument) != 2 or not isinstance(argument[1], dict):
                raise TemplateError("Fn::Sub takes a string or [string, {variables}]", path)
            text, variables = argument
            for key, item in variables.items():
                self.value(item, f"{path}[1].{key}")
        else:
            text = argument
        if not isinstance(text, str):
            raise TemplateError("the string of Fn::Sub must be a literal string", path)
        for name in sub_references(text):
            if not _SUB_NAME.fullmatch(name):
                raise TemplateError(f"${{{name}}} is not a valid Fn::Sub variable", path)
            self._ref(name, path, extra=frozenset(variables))

    def condition_expression(self, value: object, path: str, owner: str) -> None:
        """Check a condition expression of condition ``owner`` (and record which
        conditions it refers to)."""
        if not isinstance(value, dict) or not (_is_function(value) or "Condition" in value):
            raise TemplateError("a condition is Fn::Equals, Fn::Not, Fn::And, Fn::Or or "
                                "{\"Condition\": name}", path)
        name, argument = function_of(value, path)
        where = f"{path}.{name}"
        if name == "Condition":
            if not isinstance(argument, str) or argument not in self.conditions:
                raise TemplateError(f"condition {argument!r} is not declared in Conditions",
                                    where)
            self._edges[owner].add(argument)
        elif name == "Fn::Equals":
            left, right = _pair(argument, where, "[value, value]")
            self.value(left, f"{where}[0]")
            self.value(right, f"{where}[1]")
        elif name == "Fn::Not":
            if not isinstance(argument, list) or len(argument) != 1:
                raise TemplateError("Fn::Not takes [condition]", where)
            self.condition_expression(argument[0], f"{where}[0]", owner)
        elif name in ("Fn::And", "Fn::Or"):
            if not isinstance(argument, list) or not 2 <= len(argument) <= MAX_CONDITION_OPERANDS:
                raise TemplateError(f"{name} takes 2 to {MAX_CONDITION_OPERANDS} conditions",
                                    where)
            for index, item in enumerate(argument):
                self.condition_expression(item, f"{where}[{index}]", owner)
        else:
            raise TemplateError(f"{name} is not a condition function", path)

    def acyclic(self) -> None:
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*trail[trail.index(name):], name])
                raise TemplateError(f"conditions refer to each other in a cycle ({cycle})",
                                    "Conditions")
            state[name] = 1
            for target in sorted(self._edges[name]):
                visit(target, [*trail, name])
            state[name] = 2

        for name in self._edges:
            visit(name, [])


def _pair(argument: object, path: str, shape: str) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise TemplateError(f"takes {shape}", path)
    return argument[0], argument[1]
