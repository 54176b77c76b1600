"""The application records a call that changes something in the transaction of its
change, once; a call that changes nothing afterwards, as before; a call that fails after
its change committed twice (the change's record and the answer's). Driven through
:meth:`ApiApplication.handle` with a real trail and a real registry on both backends;
the handlers are the test's own, to make a call fail after its change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from bastion.api import ApiApplication, load_catalog
from bastion.api._context import Gateway, OperationContext, ServiceDirectory
from bastion.api._handlers._table import HandlerTable, Params, Result
from bastion.api._models import Catalog
from bastion.pki import Keystore
from bastion.registry import RegistryService, ResourceNotFoundError
from bastion.store import Store
from bastion.trail import Trail, TrailKeys, export, verify

from .test_errors import ACCOUNT, _signed

KEYS = TrailKeys.from_keystore(Keystore.generate())
Handler = Callable[[OperationContext, Params], Result]


class _NoServices:
    """The handlers below use the test's registry, not the directory's."""

    default = None
    default_regional = None

    def for_region(self, region: str) -> None:
        del region

    def regional_for(self, region: str) -> None:
        del region


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def registry(store: Store) -> RegistryService:
    return RegistryService(store)


def _handle(catalog: Catalog, store: Store, method: str, operation: str, handler: Handler,
            *, on_loop: bool = False) -> int:
    table = HandlerTable()
    table.register("iot", operation, on_loop=on_loop)(handler)
    app = ApiApplication(gateway=cast(Gateway, None),
                         services=cast(ServiceDirectory, _NoServices()), credentials=None,
                         trail=Trail(store, KEYS), emulator=True, account_id=ACCOUNT,
                         table=table, catalog=catalog)
    request = _signed(catalog, "iot", method, "/things/t1")
    return asyncio.run(app.handle(request, "192.0.2.10")).status


def _records(store: Store) -> list[tuple[str, str, int, str | None]]:
    assert verify(store, KEYS).ok
    return [(r["operation"], r["outcome"], r["http_status"], r["error_code"])
            for r in export(store)]


@pytest.mark.parametrize("on_loop", [False, True], ids=["worker-thread", "on-loop"])
def test_a_change_is_recorded_once_with_it(catalog: Catalog, store: Store,
                                           registry: RegistryService, on_loop: bool) -> None:
    def create(ctx: OperationContext, params: Params) -> Result:
        thing = registry.create_thing(params["thingName"])
        return {"thingName": thing.thing_name, "thingArn": thing.thing_arn}

    assert _handle(catalog, store, "POST", "CreateThing", create, on_loop=on_loop) == 200
    assert _records(store) == [("CreateThing", "allowed", 200, None)]


def test_a_call_that_changes_nothing_is_recorded_after_it(
        catalog: Catalog, store: Store, registry: RegistryService) -> None:
    def describe(ctx: OperationContext, params: Params) -> Result:
        registry.describe_thing(params["thingName"])
        return {}

    assert _handle(catalog, store, "GET", "DescribeThing", describe) == 404
    assert _records(store) == [("DescribeThing", "error", 404, "ResourceNotFoundException")]


def test_a_call_that_fails_after_its_change_is_recorded_twice(
        catalog: Catalog, store: Store, registry: RegistryService) -> None:
    def create_then_fail(ctx: OperationContext, params: Params) -> Any:
        registry.create_thing(params["thingName"])
        raise ResourceNotFoundError("a later step found nothing")

    assert _handle(catalog, store, "POST", "CreateThing", create_then_fail) == 404
    assert _records(store) == [("CreateThing", "allowed", 200, None),
                               ("CreateThing", "error", 404, "ResourceNotFoundException")]
    assert registry.describe_thing("t1").thing_name == "t1"  # the change stays
