"""Validation: a decoded JSON value → :class:`PolicyDocument`, or a precise error.

Every error names the element (as a JSON path such as ``Statement[2].Condition``) and what is
wrong with it. Element names are case-sensitive, as in IAM.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ._actions import IOT_POLICY_ACTIONS, validate_action
from ._conditions import check_value, parse_operator
from ._errors import MalformedPolicyError
from ._match import arn_fields
from ._model import SUPPORTED_VERSIONS, Condition, Effect, PolicyDocument, Statement
from ._variables import Part, Value, Variable, tokenize

_TOP_LEVEL = ("Version", "Id", "Statement")
_STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)


def validate_document(
    raw: object, *, known_actions: frozenset[str] = IOT_POLICY_ACTIONS
) -> PolicyDocument:
    """Validate a decoded policy document.

    :param raw: the value ``json.loads`` produced.
    :param known_actions: the ``iot:`` action vocabulary.
    :raises MalformedPolicyError: see the individual checks below.
    """
    if not isinstance(raw, dict):
        raise MalformedPolicyError("the policy document must be a JSON object")
    _reject_unknown(raw, _TOP_LEVEL, None)
    version = raw.get("Version")
    if version is not None and (not isinstance(version, str) or version not in SUPPORTED_VERSIONS):
        raise MalformedPolicyError(
            f"unsupported policy version {_show(version)} "
            '(expected "2012-10-17" or "2008-10-17")',
            "Version",
        )
    policy_id = raw.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicyError("Id must be a string", "Id")
    if "Statement" not in raw:
        raise MalformedPolicyError('missing required element "Statement"')
    body = raw["Statement"]
    if isinstance(body, dict):
        entries: list[tuple[object, str]] = [(body, "Statement")]
    elif isinstance(body, list):
        if not body:
            raise MalformedPolicyError("Statement must not be empty", "Statement")
        entries = [(entry, f"Statement[{i}]") for i, entry in enumerate(body)]
    else:
        raise MalformedPolicyError(
            "Statement must be a statement object or a list of statement objects", "Statement"
        )
    variables = version == "2012-10-17"
    statements = tuple(
        _statement(entry, path, variables=variables, known_actions=known_actions)
        for entry, path in entries
    )
    seen: set[str] = set()
    for statement, (_, path) in zip(statements, entries, strict=True):
        if statement.sid:
            if statement.sid in seen:
                raise MalformedPolicyError(
                    f'duplicate Sid "{statement.sid}": statement ids must be unique',
                    f"{path}.Sid",
                )
            seen.add(statement.sid)
    return PolicyDocument(version=version, statements=statements, id=policy_id)


def _show(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return f"of type {_json_type(value)}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_unknown(raw: Mapping[str, object], allowed: tuple[str, ...], path: str | None) -> None:
    for key in raw:
        if key in allowed:
            continue
        where = f"{path}.{key}" if path else key
        if key in ("Principal", "NotPrincipal"):
            raise MalformedPolicyError(
                f"{key} is not allowed: an IoT policy applies to the principal it is "
                "attached to",
                where,
            )
        raise MalformedPolicyError(f'unknown element "{key}"', where)


def _statement(
    raw: object, path: str, *, variables: bool, known_actions: frozenset[str]
) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicyError(
            f"a statement must be a JSON object, not {_json_type(raw)}", path
        )
    _reject_unknown(raw, _STATEMENT_ELEMENTS, path)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicyError("Sid must be a string", f"{path}.Sid")
    if "Effect" not in raw:
        raise MalformedPolicyError('missing required element "Effect"', path)
    effect_text = raw["Effect"]
    if effect_text not in ("Allow", "Deny"):
        raise MalformedPolicyError(
            f'Effect must be "Allow" or "Deny", got {_show(effect_text)}', f"{path}.Effect"
        )
    effect = Effect(effect_text)

    action_key = _exactly_one(raw, "Action", "NotAction", path)
    action_path = f"{path}.{action_key}"
    actions = _string_list(raw[action_key], action_path)
    for i, action in enumerate(actions):
        validate_action(action, _item(action_path, raw[action_key], i), known_actions)

    resource_key = _exactly_one(raw, "Resource", "NotResource", path)
    resource_path = f"{path}.{resource_key}"
    resources = _string_list(raw[resource_key], resource_path)
    for i, resource in enumerate(resources):
        _check_resource(resource, _item(resource_path, raw[resource_key], i), variables)

    conditions = _conditions(raw.get("Condition"), f"{path}.Condition")
    return Statement(
        effect=effect,
        actions=actions if action_key == "Action" else None,
        not_actions=actions if action_key == "NotAction" else None,
        resources=resources if resource_key == "Resource" else None,
        not_resources=resources if resource_key == "NotResource" else None,
        conditions=conditions,
        sid=sid,
    )


def _item(path: str, raw: object, index: int) -> str:
    return f"{path}[{index}]" if isinstance(raw, list) else path


def _exactly_one(raw: Mapping[str, object], positive: str, negative: str, path: str) -> str:
    if positive in raw and negative in raw:
        raise MalformedPolicyError(
            f"a statement must not contain both {positive} and {negative}", path
        )
    if positive in raw:
        return positive
    if negative in raw:
        return negative
    raise MalformedPolicyError(f'missing required element "{positive}" (or "{negative}")', path)


def _string_list(raw: object, path: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list):
        if not raw:
            raise MalformedPolicyError("must not be an empty list", path)
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                raise MalformedPolicyError(
                    f"must be a string, not {_json_type(item)}", f"{path}[{i}]"
                )
        return tuple(raw)
    raise MalformedPolicyError(
        f"must be a string or a list of strings, not {_json_type(raw)}", path
    )


def _check_resource(resource: str, path: str, variables: bool) -> None:
    if resource == "*":
        return
    tokens = tokenize(resource, variables=variables, wildcards=True)
    # A variable is never an ARN field separator: treat it as opaque text for the check.
    parts: list[Part] = [Value(t.raw) if isinstance(t, Variable) else t for t in tokens]
    fields = arn_fields(parts)
    if fields is None or fields[0] != list("arn") or not fields[5]:
        raise MalformedPolicyError(
            f'invalid resource "{resource}": a resource must be "*" or an ARN '
            "arn:<partition>:<service>:<region>:<account>:<resource>",
            path,
        )


def _conditions(raw: object, path: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise MalformedPolicyError(
            f"Condition must be an object of operators, not {_json_type(raw)}", path
        )
    conditions: list[Condition] = []
    for operator_text, block in raw.items():
        op_path = f"{path}.{operator_text}"
        base, qualifier, if_exists = parse_operator(operator_text, op_path)
        if not isinstance(block, dict):
            raise MalformedPolicyError(
                f"a condition operator must map condition keys to values, not "
                f"{_json_type(block)}",
                op_path,
            )
        if not block:
            raise MalformedPolicyError("a condition operator must name at least one key", op_path)
        for key, raw_values in block.items():
            key_path = f"{op_path}.{key}"
            if not key:
                raise MalformedPolicyError("a condition key must not be empty", op_path)
            values = _condition_values(raw_values, key_path)
            for i, value in enumerate(values):
                check_value(base, value, _item(key_path, raw_values, i))
            conditions.append(Condition(base, key, values, qualifier, if_exists))
    return tuple(conditions)


def _condition_value(raw: object, path: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | Decimal):
        return str(raw)
    raise MalformedPolicyError(
        f"a condition value must be a string, number or boolean, not {_json_type(raw)}", path
    )


def _condition_values(raw: object, path: str) -> tuple[str, ...]:
    if isinstance(raw, list):
        if not raw:
            raise MalformedPolicyError("a condition must list at least one value", path)
        return tuple(_condition_value(item, f"{path}[{i}]") for i, item in enumerate(raw))
    return (_condition_value(raw, path),)
