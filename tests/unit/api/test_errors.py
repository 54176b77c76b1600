"""One translation point: whatever service error a handler raises, the application answers
it in the AWS error shape (HTTP status, ``x-amzn-ErrorType``, JSON ``message`` plus the
error's body fields) and records the same error type in the trail."""

from __future__ import annotations

import asyncio
import json
from typing import cast

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bastion.api import ApiApplication, ApiError, MemoryTrail, load_catalog
from bastion.api._context import Gateway, OperationContext, ServiceDirectory
from bastion.api._handlers._table import HandlerTable, Params, Result
from bastion.api._models import Catalog
from bastion.api._sigv4 import HttpRequest
from bastion.defender.audit import TaskAlreadyExistsError
from bastion.defender.detect import VersionConflictError
from bastion.errors import ServiceError
from bastion.files import SignatureRejectedError
from bastion.jobs import VersionMismatchError
from bastion.provisioning import ProvisioningFailedError
from bastion.provisioning import ResourceAlreadyExistsError as TemplateExistsError
from bastion.registry import ResourceAlreadyExistsError, ResourceNotFoundError
from bastion.shadow import ShadowVersionConflictError

REGION = "us-east-1"
ACCOUNT = "123456789012"
HOST = "api.bastion.test"
THING_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/t1"

# (AWS service, operation, method, path) of the request whose handler raises.
DESCRIBE_THING = ("iot", "DescribeThing", "GET", "/things/t1")
DESCRIBE_EXECUTION = ("iot-jobs-data", "DescribeJobExecution", "GET", "/things/t1/jobs/j1")
GET_SHADOW = ("iot-data", "GetThingShadow", "GET", "/things/t1/shadow")

CASES = [
    pytest.param(DESCRIBE_THING, ResourceNotFoundError("Thing t1 does not exist"),
                 404, "ResourceNotFoundException", {"message": "Thing t1 does not exist"},
                 id="registry"),
    pytest.param(DESCRIBE_THING,
                 ResourceAlreadyExistsError("Thing t1 already exists", resource_id="t1",
                                            resource_arn=THING_ARN),
                 409, "ResourceAlreadyExistsException",
                 {"message": "Thing t1 already exists", "resourceId": "t1",
                  "resourceArn": THING_ARN}, id="registry-body-fields"),
    pytest.param(DESCRIBE_THING, VersionMismatchError("stale"), 409,
                 "VersionConflictException", {"message": "stale"}, id="jobs-iot"),
    pytest.param(DESCRIBE_EXECUTION, VersionMismatchError("stale"), 409,
                 "ConflictException", {"message": "stale"}, id="jobs-iot-jobs-data"),
    pytest.param(GET_SHADOW, ShadowVersionConflictError("Version conflict", client_token="c"),
                 409, "ConflictException", {"message": "Version conflict"}, id="shadow"),
    pytest.param(DESCRIBE_THING, VersionConflictError("profile version"), 409,
                 "VersionConflictException", {"message": "profile version"}, id="detect"),
    pytest.param(DESCRIBE_THING, TaskAlreadyExistsError("task exists"), 400,
                 "TaskAlreadyExistsException", {"message": "task exists"}, id="defender"),
    pytest.param(DESCRIBE_THING, SignatureRejectedError("expired", expired=True), 403,
                 "AccessDeniedException", {"message": "expired"}, id="files"),
    pytest.param(DESCRIBE_THING,
                 TemplateExistsError("template exists", resource_id="tpl"), 409,
                 "ResourceAlreadyExistsException",
                 {"message": "template exists", "resourceId": "tpl"}, id="provisioning"),
    pytest.param(DESCRIBE_THING,
                 ProvisioningFailedError("no group g", aws_error_type="ResourceNotFoundException",
                                         http_status=404),
                 404, "ResourceNotFoundException", {"message": "no group g"},
                 id="provisioning-instance-identity"),
    pytest.param(DESCRIBE_THING, ApiError("LimitExceededException", 410, "too many",
                                          {"extra": "field"}),
                 410, "LimitExceededException", {"message": "too many", "extra": "field"},
                 id="api"),
    pytest.param(DESCRIBE_THING, RuntimeError("secret detail"), 500,
                 "InternalFailureException",
                 {"message": "An internal error occurred; see the Bastion server log"},
                 id="our-bug"),
]


class _NoServices:
    """The handlers below use no registry services."""

    default = None
    default_regional = None

    def for_region(self, region: str) -> None:
        del region

    def regional_for(self, region: str) -> None:
        del region


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _application(catalog: Catalog, raising: Exception, *, on_loop: bool,
                 trail: MemoryTrail) -> ApiApplication:
    def handler(ctx: OperationContext, params: Params) -> Result:
        raise raising

    table = HandlerTable()
    for service, operation, _, _ in (DESCRIBE_THING, DESCRIBE_EXECUTION, GET_SHADOW):
        table.register(service, operation, on_loop=on_loop)(handler)
    return ApiApplication(gateway=cast(Gateway, None),
                          services=cast(ServiceDirectory, _NoServices()), credentials=None,
                          trail=trail, emulator=True, account_id=ACCOUNT, table=table,
                          catalog=catalog)


def _signed(catalog: Catalog, service: str, method: str, path: str) -> HttpRequest:
    signing_name = catalog.services[service].signing_name
    request = AWSRequest(method=method, url=f"https://{HOST}{path}", headers={"host": HOST})
    SigV4Auth(Credentials("AKIAEMULATED00000001", "any-secret"), signing_name,
              REGION).add_auth(request)
    headers = tuple((name.lower(), str(value)) for name, value in request.headers.items())
    return HttpRequest(method=method, raw_path=path, raw_query="", headers=headers, body=b"")


@pytest.mark.parametrize("on_loop", [False, True], ids=["worker-thread", "on-loop"])
@pytest.mark.parametrize(("request_of", "raising", "status", "error_type", "body"), CASES)
def test_a_handler_error_is_answered_in_the_aws_error_shape(
        catalog: Catalog, request_of: tuple[str, str, str, str], raising: Exception,
        status: int, error_type: str, body: dict[str, str], on_loop: bool) -> None:
    service, operation, method, path = request_of
    trail = MemoryTrail()
    app = _application(catalog, raising, on_loop=on_loop, trail=trail)
    response = asyncio.run(app.handle(_signed(catalog, service, method, path), "127.0.0.1"))
    headers = dict(response.headers)
    assert response.status == status
    assert headers["x-amzn-errortype"] == error_type
    assert headers["content-type"] == "application/json"
    assert json.loads(response.body) == body
    [record] = trail.records
    assert (record.service, record.operation) == (service, operation)
    assert (record.error_code, record.http_status) == (error_type, status)


def test_the_translation_is_the_contract_and_nothing_else(catalog: Catalog) -> None:
    """A service error the API has never heard of is answered from its attributes."""

    class StrangeError(ServiceError):
        aws_error_type = "StrangeException"
        http_status = 418

        def body_fields(self) -> dict[str, str]:
            return {"hint": "none"}

    app = _application(catalog, StrangeError("odd"), on_loop=True, trail=MemoryTrail())
    service, _, method, path = DESCRIBE_THING
    response = asyncio.run(app.handle(_signed(catalog, service, method, path), "127.0.0.1"))
    assert (response.status, dict(response.headers)["x-amzn-errortype"]) == (
        418, "StrangeException")
    assert json.loads(response.body) == {"message": "odd", "hint": "none"}
