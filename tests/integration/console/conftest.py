"""A real Bastion with the web console (HTTPS with the data directory's certificate, access
keys from the store's own key service, the store's trail), its console clock moved by
hand, and a small HTTP client that signs in as a browser does."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bastion.access import Role
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, ConsoleConfig, MQTTConfig
from bastion.controlplane import provision_device
from bastion.datadir import DataDir, init_data_dir
from bastion.trail import TrailRecord
from support.clients import DeviceFiles
from support.clock import ManualClock
from support.running import RunningBastion

OPEN_POLICY = "console-test-open"
OPEN_DOCUMENT = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",'
                 '"Resource":"*"}]}')
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleBastion:
    """A running Bastion with its console, and the keys of each role."""

    running: RunningBastion
    datadir: DataDir
    clock: ManualClock
    url: str
    keys: dict[str, tuple[str, str]]
    devices_dir: Path

    @property
    def ca(self) -> str:
        return str(self.datadir.ca_cert_path)

    @property
    def mqtt_port(self) -> int:
        return self.running.port

    def browser(self) -> ConsoleClient:
        return ConsoleClient(self)

    def signed_in(self, role: str) -> ConsoleClient:
        client = ConsoleClient(self)
        answer = client.sign_in(*self.keys[role])
        assert answer.status_code == 303, answer.text
        return client

    def trail(self) -> list[TrailRecord]:
        return self.running.app.services.trail.recent(500)

    def console_records(self, operation: str) -> list[TrailRecord]:
        return [r for r in self.trail() if r.operation == operation
                and '"bastion:source":"console"' in r.parameters]

    def device(self, name: str | None = None, *, policy: str | None = OPEN_POLICY
               ) -> DeviceFiles:
        """A thing with an ACTIVE certificate and an open policy (``None``: the
        least-privilege device policy), made through the running app's registry, so that
        changes reach live sessions."""
        name = name or f"console-{uuid.uuid4().hex[:8]}"
        self.devices_dir.mkdir(parents=True, exist_ok=True)
        files = provision_device(self.running.app.plane, self.datadir, name, self.devices_dir,
                                 policy_name=policy)
        return DeviceFiles(name, files.cert_path, files.key_path, files.root_ca_path,
                           files.certificate_id, files.certificate_arn)

    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))


class ConsoleClient:
    """``requests`` with a cookie jar: what a browser sends, without a browser."""

    def __init__(self, bastion: ConsoleBastion) -> None:
        self.bastion = bastion
        self.http = requests.Session()
        self.http.trust_env = False  # the CA bundle of the environment would win
        self.http.verify = bastion.ca
        self.csrf = ""

    def get(self, path: str, **options: Any) -> requests.Response:
        answer = self.http.get(self.bastion.url + path, allow_redirects=False, timeout=10,
                               **options)
        found = _CSRF.search(answer.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return answer

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(self.bastion.url + path, data=data, allow_redirects=False,
                              timeout=10)

    def sign_in(self, key_id: str, secret: str) -> requests.Response:
        form = self.get("/console/sign-in")
        token = _FORM_TOKEN.search(form.text)
        assert token is not None, form.text
        answer = self.post("/console/sign-in", {
            "form_token": html.unescape(token.group(1)), "access_key_id": key_id,
            "secret_access_key": secret})
        if answer.status_code == 303:
            self.get("/console/overview")  # picks up the session's CSRF token
        return answer


def start_console_bastion(datadir: DataDir, clock: ManualClock | None = None,
                          console: ConsoleConfig | None = None,
                          api: ApiConfig | None = None) -> RunningBastion:
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=api or ApiConfig(host="127.0.0.1", port=0),
                    console=console or ConsoleConfig())
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    return RunningBastion(config, datadir, **options).start()


def create_keys(running: RunningBastion) -> dict[str, tuple[str, str]]:
    access = running.app.services.access
    return {role.value: access.create_access_key(role, f"console test {role.value}")
            for role in Role}


@pytest.fixture(scope="session")
def console_bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleBastion]:
    """One Bastion for the console's tests: every sign-in from the tests shares the
    address 127.0.0.1, so its sign-in limit is high (test_sign_in_limit has its own)."""
    root = tmp_path_factory.mktemp("console")
    datadir = init_data_dir(root / "data")
    clock = ManualClock(monotonic=1000.0)
    running = start_console_bastion(datadir, clock, ConsoleConfig(sign_in_attempts=100_000))
    try:
        running.app.plane.policies.create_policy(OPEN_POLICY, OPEN_DOCUMENT)
        api = running.app.api
        assert api is not None
        yield ConsoleBastion(running, datadir, clock, api.url, create_keys(running),
                             root / "devices")
    finally:
        running.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    return make
