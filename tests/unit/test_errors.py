"""The wire-error contract (:mod:`bastion.errors`): every service error of every package
carries an AWS error type and an HTTP status a client can be answered with."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator

import pytest

import bastion
from bastion.errors import ServiceError

# Importing these runs something (the CLI entry point, Alembic's migration environment).
_NOT_IMPORTED = re.compile(r"^bastion\.(__main__|store\.migrations)(\.|$)")
_AWS_ERROR_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]*Exception$")

# Each package's own exception base (in its _errors module): "whose fault, what the peer
# sees" stays there.
PACKAGE_BASES = [
    ("bastion.access", "AccessError"),
    ("bastion.alerts", "AlertTargetError"),
    ("bastion.api", "ApiError"),
    ("bastion.defender", "DefenderError"),
    ("bastion.defender.detect", "DetectError"),
    ("bastion.files", "FilesError"),
    ("bastion.jobs", "JobsError"),
    ("bastion.policy", "PolicyError"),
    ("bastion.provisioning", "ProvisioningError"),
    ("bastion.registry", "RegistryError"),
    ("bastion.shadow", "ShadowError"),
]

# Errors that reach no AWS-shaped answer, and why; everything else in an _errors module
# is a ServiceError.
NOT_WIRE_ERRORS = {
    ("bastion.mqtt", "MQTTError"): "answered with an MQTT reason code, or nothing (local)",
    ("bastion.pki", "PKIError"): "deployment problems; nothing talks to a peer",
    ("bastion.store", "StoreError"): "services above translate it into their own errors",
    ("bastion.alerts", "DeliveryError"): "a receiver's failure to take an alert",
    ("bastion.trail", "TrailError"): "a tampered trail; the API answers the call and logs it",
}


def _bastion_modules() -> Iterator[str]:
    yield "bastion"
    for module in pkgutil.walk_packages(bastion.__path__, "bastion."):
        if not _NOT_IMPORTED.match(module.name):
            yield module.name


def _all_subclasses(cls: type[ServiceError]) -> set[type[ServiceError]]:
    found: set[type[ServiceError]] = set()
    pending = [cls]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


@pytest.fixture(scope="module")
def service_errors() -> list[type[ServiceError]]:
    """Every ServiceError subclass defined in bastion, once every module is imported."""
    for name in _bastion_modules():
        importlib.import_module(name)
    return sorted((cls for cls in _all_subclasses(ServiceError)
                   if cls.__module__.startswith("bastion.")),
                  key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_the_contract_module_imports_nothing_from_bastion() -> None:
    source = inspect.getsource(importlib.import_module("bastion.errors"))
    assert not re.search(r"^\s*(from|import)\s+(bastion|\.)", source, re.MULTILINE)


def test_the_walk_finds_every_package_base(service_errors: list[type[ServiceError]]) -> None:
    names = {(cls.__module__.rsplit("._", 1)[0], cls.__name__) for cls in service_errors}
    assert set(PACKAGE_BASES) <= names
    assert len(service_errors) > 60  # the walk does reach the subclasses


def test_every_service_error_names_an_aws_error_type_and_an_http_status(
        service_errors: list[type[ServiceError]]) -> None:
    wrong = []
    for cls in service_errors:
        error_type, status = cls.aws_error_type, cls.http_status
        if not (isinstance(error_type, str) and _AWS_ERROR_TYPE.match(error_type)):
            wrong.append(f"{cls.__module__}.{cls.__qualname__}: type {error_type!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            wrong.append(f"{cls.__module__}.{cls.__qualname__}: status {status!r}")
    assert wrong == []


@pytest.mark.parametrize(("module", "name"), PACKAGE_BASES,
                         ids=[f"{m}.{n}" for m, n in PACKAGE_BASES])
def test_each_package_base_follows_the_contract(module: str, name: str) -> None:
    base = getattr(importlib.import_module(f"{module}._errors"), name)
    assert issubclass(base, ServiceError)
    error = base.__new__(base)
    assert callable(error.body_fields) and callable(error.aws_error_type_for)


@pytest.mark.parametrize(("module", "name"), list(NOT_WIRE_ERRORS),
                         ids=[f"{m}.{n}" for m, n in NOT_WIRE_ERRORS])
def test_errors_that_reach_no_aws_answer_stay_outside_the_contract(module: str,
                                                                   name: str) -> None:
    assert not issubclass(getattr(importlib.import_module(module), name), ServiceError)


def test_every_error_module_class_is_a_service_error_or_a_documented_exception() -> None:
    outside = []
    not_wire = tuple(getattr(importlib.import_module(module), name)
                     for module, name in NOT_WIRE_ERRORS)
    for name in _bastion_modules():
        if not name.endswith("._errors"):
            continue
        for cls in vars(importlib.import_module(name)).values():
            if (isinstance(cls, type) and issubclass(cls, BaseException)
                    and cls.__module__ == name
                    and not issubclass(cls, (ServiceError, *not_wire))):
                outside.append(f"{name}.{cls.__qualname__}")
    assert outside == []


def test_instances_carry_the_message_and_their_own_wire_identity() -> None:
    from bastion.jobs import VersionMismatchError
    from bastion.provisioning import ProvisioningFailedError
    from bastion.registry import ResourceAlreadyExistsError

    exists = ResourceAlreadyExistsError("Thing t exists", resource_id="t",
                                        resource_arn="arn:aws:iot:us-east-1:1:thing/t")
    assert (exists.message, str(exists)) == ("Thing t exists", "Thing t exists")
    assert exists.body_fields() == {"resourceId": "t",
                                    "resourceArn": "arn:aws:iot:us-east-1:1:thing/t"}
    assert ResourceAlreadyExistsError("x", resource_id="t").body_fields() == {
        "resourceId": "t"}
    mismatch = VersionMismatchError("stale")
    assert mismatch.aws_error_type_for("iot") == "VersionConflictException"
    assert mismatch.aws_error_type_for("iot-jobs-data") == "ConflictException"
    failed = ProvisioningFailedError("no group g", aws_error_type="ResourceNotFoundException",
                                     http_status=404)
    assert (failed.aws_error_type, failed.http_status) == ("ResourceNotFoundException", 404)
    assert failed.rejection() == (404, "ResourceNotFound")
    assert ServiceError("boom").body_fields() == {}
