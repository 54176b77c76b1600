"""Make the console screenshots of docs/console.md (docs/images/console-*.png).

Starts a throwaway Bastion in a temporary data directory, fills it with a small fleet
(things, groups, certificates — one expiring in ten days —, devices connected over
mutual TLS and publishing, a shadow, jobs with executions in several states, an audit,
a Detect profile), signs in with headless chromium as an admin key and photographs each
page. Needs the test extras (paho-mqtt, selenium) and Debian's chromium and
chromium-driver::

    .venv/bin/python docs/images/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support.browser: the tests' chromium

from bastion.access import Role
from bastion.app import App
from bastion.config import ApiConfig, Config, DetectConfig, MQTTConfig
from bastion.controlplane import provision_device
from bastion.datadir import DataDir, init_data_dir
from support.browser import missing_browser, start_chromium

OPEN = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",'
        '"Resource":"*"}]}')
SENSOR_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/sensors/${iot:Connection.Thing.ThingName}/*"},
]})

SENSOR_POLICY_V2 = json.dumps({"Version": "2012-10-17", "Statement": [
    *json.loads(SENSOR_POLICY)["Statement"],
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/sensors/${iot:Connection.Thing.ThingName}/*"},
]})


class Running:
    """The app on its own event loop in a thread."""

    def __init__(self, config: Config, datadir: DataDir) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = App(config, datadir)
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.app.start())
        self._ready.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.app.stop())

    def start(self) -> Running:
        self._thread.start()
        self._ready.result(timeout=30)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=15)


def _wait(predicate: Callable[[], Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _expiring_certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy-gateway-7")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=355))
            .not_valid_after(now + dt.timedelta(days=10))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _device(datadir: DataDir, name: str, out: Path, port: int,
            client_id: str | None = None) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or name)
    client.tls_set(ca_certs=str(out / "root-ca.pem"), certfile=str(out / f"{name}.cert.pem"),
                   keyfile=str(out / f"{name}.key.pem"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def populate(running: Running, datadir: DataDir, iot: Any, jobs_data: Any,
             out: Path) -> list[paho.Client]:
    plane = running.app.plane
    plane.policies.create_policy("fleet-open", OPEN)
    plane.policies.create_policy("sensor-least-privilege", SENSOR_POLICY)
    plane.policies.create_policy_version("sensor-least-privilege", SENSOR_POLICY_V2,
                                         set_as_default=True)
    plane.registry.create_thing_type("thermostat")
    plane.registry.create_thing_group("building-a")
    names = [f"thermostat-{i:02d}" for i in range(1, 7)] + ["gateway-01", "gateway-02"]
    for name in names:
        provision_device(plane, datadir, name, out, policy_name=(
            "sensor-least-privilege" if name == "gateway-02" else "fleet-open"))
        if name.startswith("thermostat"):
            plane.registry.update_thing(name, thing_type_name="thermostat",
                                        attributes={"floor": name[-1], "model": "T-200"})
            plane.registry.add_thing_to_thing_group(thing_group_name="building-a",
                                                    thing_name=name)
    iot.register_certificate_without_ca(certificatePem=_expiring_certificate(),
                                        status="ACTIVE")
    running.app.services.shadow.update("thermostat-01", None, json.dumps({"state": {
        "desired": {"setpoint": 21.5}, "reported": {"setpoint": 21.0, "temperature": 20.7,
                                                    "firmware": "1.4.2"}}}).encode())
    port = running.app.port()
    devices = [_device(datadir, name, out, port) for name in names[:5]]
    devices[4].subscribe("sensors/#")  # a gateway that reads the sensors: messages out
    arns = [iot.describe_thing(thingName=name)["thingArn"] for name in names[:6]]
    iot.create_job(jobId="firmware-1-4-2", targets=arns,
                   document=json.dumps({"operation": "update", "version": "1.4.2"}))
    iot.create_job(jobId="rotate-logs", targets=arns[:3],
                   document=json.dumps({"operation": "rotate-logs"}))
    for thing, status in (("thermostat-01", "SUCCEEDED"), ("thermostat-02", "SUCCEEDED"),
                          ("thermostat-03", "FAILED"), ("thermostat-04", "IN_PROGRESS")):
        jobs_data.update_job_execution(jobId="firmware-1-4-2", thingName=thing, status=status)
    iot.create_security_profile(securityProfileName="chatty-devices", behaviors=[{
        "name": "messages-sent", "metric": "aws:num-messages-sent",
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 20},
                     "durationSeconds": 300, "consecutiveDatapointsToAlarm": 1,
                     "consecutiveDatapointsToClear": 1}}])
    iot.attach_security_profile(
        securityProfileName="chatty-devices",
        securityProfileTargetArn="arn:aws:iot:us-east-1:123456789012:all/registered-things")
    for _ in range(30):
        devices[0].publish("sensors/thermostat-01/temperature", b'{"t": 20.7}', qos=1)
    checks = iot.describe_account_audit_configuration()["auditCheckConfigurations"]
    enabled = [name for name, value in checks.items() if value.get("enabled")]
    task = iot.start_on_demand_audit_task(targetCheckNames=enabled)["taskId"]
    _wait(lambda: iot.describe_audit_task(taskId=task)["taskStatus"] == "COMPLETED", 60)
    return devices


def publisher(devices: list[paho.Client], stop: threading.Event) -> None:
    """Keep messages flowing, so that the overview's rates are not zero."""
    while not stop.is_set():
        for index, device in enumerate(devices):
            device.publish(f"sensors/thermostat-0{index + 1}/temperature", b'{"t": 21}')
        stop.wait(0.1)


def shoot(driver: Any, url: str, path: str, name: str, *, settle: float = 0.0) -> None:
    driver.get(url + path)
    if settle:
        time.sleep(settle)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(int(height) + 20, 2600)))
    target = HERE / f"console-{name}.png"
    driver.save_screenshot(str(target))
    driver.set_window_size(1280, 900)
    print(f"wrote {target.relative_to(ROOT)}")


def main() -> int:
    why = missing_browser()
    if why is not None:
        print(f"cannot make screenshots: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as temp:
        datadir = init_data_dir(Path(temp) / "data")
        config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                        api=ApiConfig(host="127.0.0.1", port=0),
                        detect=DetectConfig(interval=5.0))
        running = Running(config, datadir).start()
        stop = threading.Event()
        devices: list[paho.Client] = []
        driver: Any = None
        try:
            access = running.app.services.access
            key_id, secret = access.create_access_key(Role.ADMIN, "screenshots")
            api = running.app.api
            assert api is not None
            options = {"endpoint_url": api.url, "region_name": "us-east-1",
                       "aws_access_key_id": key_id, "aws_secret_access_key": secret,
                       "verify": str(datadir.ca_cert_path)}
            iot = boto3.client("iot", **options)
            jobs_data = boto3.client("iot-jobs-data", **options)
            devices = populate(running, datadir, iot, jobs_data, Path(temp) / "devices")
            threading.Thread(target=publisher, args=(devices, stop), daemon=True).start()
            detect = running.app.services.detect
            _wait(lambda: detect is not None and detect.service.active, 30)
            driver = start_chromium(datadir.server_cert_path)
            driver.get(api.url + "/console/sign-in")
            shoot(driver, api.url, "/console/sign-in", "sign-in")
            driver.find_element("id", "access_key_id").send_keys(key_id)
            driver.find_element("id", "secret_access_key").send_keys(secret)
            driver.find_element("id", "sign-in").click()
            _wait(lambda: driver.current_url.endswith("/console/overview"), 10)
            shoot(driver, api.url, "/console/overview", "overview", settle=4.5)
            shoot(driver, api.url, "/console/things", "things")
            shoot(driver, api.url, "/console/things/thermostat-01", "thing")
            shoot(driver, api.url, "/console/certificates", "certificates")
            first = running.app.plane.registry.list_thing_principals("thermostat-02")[0][0]
            certificate = first.rsplit("/", 1)[-1]
            shoot(driver, api.url, f"/console/certificates/{certificate}?confirm=REVOKED",
                  "revoke")
            gateway = running.app.plane.registry.list_thing_principals("gateway-02")[0][0]
            shoot(driver, api.url, f"/console/certificates/{gateway.rsplit('/', 1)[-1]}/test"
                  "?client_id=gateway-02&action=PUBLISH"
                  "&resource=sensors%2Fthermostat-01%2Ftemperature", "test-authorization")
            shoot(driver, api.url, "/console/policies/sensor-least-privilege/versions/2",
                  "policy")
            shoot(driver, api.url, "/console/audit", "audit")
            shoot(driver, api.url, "/console/detect", "detect")
            shoot(driver, api.url, "/console/jobs", "jobs")
            shoot(driver, api.url, "/console/jobs/firmware-1-4-2", "job")
            shoot(driver, api.url, "/console/policies/sensor-least-privilege/diff",
                  "policy-diff")
            shoot(driver, api.url, "/console/policies/sensor-least-privilege/edit",
                  "policy-edit")
            driver.get(api.url + "/console/trail")
            driver.find_element("id", "verify").click()
            _wait(lambda: driver.find_elements("id", "verification"), 10)
            driver.save_screenshot(str(HERE / "console-trail.png"))
            print("wrote docs/images/console-trail.png")
        finally:
            stop.set()
            if driver is not None:
                driver.quit()
            for device in devices:
                device.disconnect()
                device.loop_stop()
            running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
