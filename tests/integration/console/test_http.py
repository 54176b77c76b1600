"""The console over plain HTTP requests (no browser): sign-in, sessions, CSRF, role checks,
headers, the trail, escaping. Real HTTPS against a running Bastion."""

from __future__ import annotations

import html
import json
import socket
import ssl
from collections.abc import Callable

import pytest

from bastion.access import Role
from bastion.config import ApiConfig, ConsoleConfig
from bastion.console import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from bastion.datadir import init_data_dir
from support.clients import Client, wait_for
from support.clock import ManualClock

from .conftest import OPEN_DOCUMENT, ConsoleBastion, create_keys, start_console_bastion

PAGES = ["/console/overview", "/console/things", "/console/certificates", "/console/policies",
         "/console/audit", "/console/detect", "/console/threats", "/console/jobs",
         "/console/trail", "/console/baseline"]


def _headers_are_strict(answer: object) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                 "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert part in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


# -- sign-in, sessions ----------------------------------------------------------------------

def test_pages_need_a_session(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.browser()
    for path in [*PAGES, "/console/", "/console/things/anything"]:
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/console/sign-in"
    assert client.get("/console/overview/stream").status_code == 401
    # An action without a session does nothing but send the browser to sign in.
    assert client.post("/console/trail/verify", {"csrf": "x"}).status_code == 303


def test_sign_in_sets_a_host_only_secure_session_cookie(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.browser()
    key_id, secret = console_bastion.keys["operator"]
    answer = client.sign_in(key_id, secret)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/overview"
    session = [c for c in answer.raw.headers.getlist("set-cookie")
               if c.startswith(SESSION_COOKIE + "=")]
    assert len(session) == 1
    attributes = {part.strip().split("=")[0].lower() for part in session[0].split(";")[1:]}
    assert {"path", "secure", "httponly", "samesite"} <= attributes
    assert "samesite=strict" in session[0].lower() and "domain" not in attributes
    page = client.get("/console/overview")
    assert page.status_code == 200 and key_id in page.text and "operator" in page.text
    records = console_bastion.console_records("ConsoleSignIn")
    assert any(r.access_key_id == key_id and r.outcome == "allowed" and r.role == "operator"
               for r in records)
    assert all(secret not in r.parameters for r in console_bastion.trail())


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_a_wrong_secret_is_refused_and_trailed(console_bastion: ConsoleBastion,
                                               secret: str) -> None:
    key_id, _right = console_bastion.keys["admin"]
    client = console_bastion.browser()
    answer = client.sign_in(key_id, secret)
    assert answer.status_code == 401
    assert SESSION_COOKIE not in client.http.cookies
    assert "Unknown access key or wrong secret" in answer.text
    assert client.get("/console/overview").status_code == 303
    denied = [r for r in console_bastion.console_records("ConsoleSignIn")
              if r.access_key_id == key_id and r.outcome == "denied"]
    assert denied and denied[-1].error_code == "UnrecognizedClientException"
    assert denied[-1].role is None


def test_an_unknown_key_is_refused(console_bastion: ConsoleBastion) -> None:
    _key, secret = console_bastion.keys["admin"]
    assert console_bastion.browser().sign_in("AKIANOSUCHKEY0000000", secret).status_code == 401


def test_sign_in_without_the_form_token_is_refused(console_bastion: ConsoleBastion) -> None:
    """A cross-site form cannot sign a browser in under someone else's key."""
    key_id, secret = console_bastion.keys["admin"]
    client = console_bastion.browser()
    answer = client.post("/console/sign-in", {"access_key_id": key_id,
                                              "secret_access_key": secret})
    assert answer.status_code == 403
    client.get("/console/sign-in")  # sets the cookie; the form token sent is another
    answer = client.post("/console/sign-in", {"form_token": "forged", "access_key_id": key_id,
                                              "secret_access_key": secret})
    assert answer.status_code == 403 and SESSION_COOKIE not in client.http.cookies


def test_sign_out_ends_the_session(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    token = client.http.cookies[SESSION_COOKIE]
    assert client.post("/console/sign-out", {"csrf": client.csrf}).status_code == 303
    assert client.get("/console/overview").status_code == 303
    # The old cookie, replayed, opens nothing.
    replay = console_bastion.browser()
    replay.http.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/console/overview").status_code == 303


def test_idle_timeout_sends_the_browser_to_sign_in(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    console_bastion.advance(14 * 60)
    assert client.get("/console/things").status_code == 200  # moves the deadline on
    console_bastion.advance(14 * 60)
    assert client.get("/console/things").status_code == 200
    console_bastion.advance(15 * 60)
    answer = client.get("/console/things")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"


def test_absolute_timeout_ends_a_busy_session(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    for _ in range(47):  # a request every 10 minutes: never idle
        console_bastion.advance(10 * 60)
        assert client.get("/console/policies").status_code == 200
    console_bastion.advance(10 * 60)  # 8 hours after sign-in
    assert client.get("/console/policies").status_code == 303


def test_a_disabled_key_ends_its_sessions(console_bastion: ConsoleBastion) -> None:
    access = console_bastion.running.app.services.access
    key_id, secret = access.create_access_key(Role.OPERATOR, "to disable")
    client = console_bastion.browser()
    assert client.sign_in(key_id, secret).status_code == 303
    assert client.get("/console/things").status_code == 200
    access.disable_access_key(key_id)
    assert client.get("/console/things").status_code == 303


def test_sign_in_limit_per_address(tmp_path_factory: pytest.TempPathFactory) -> None:
    datadir = init_data_dir(tmp_path_factory.mktemp("console-limit") / "data")
    running = start_console_bastion(datadir, console=ConsoleConfig(sign_in_attempts=3,
                                                                   sign_in_window=300))
    try:
        keys = create_keys(running)
        api = running.app.api
        assert api is not None
        bastion = ConsoleBastion(running, datadir, ManualClock(), api.url, keys, datadir.path)
        key_id, secret = keys["admin"]
        for _ in range(2):
            assert bastion.browser().sign_in(key_id, "wrong").status_code == 401
        assert bastion.browser().sign_in(key_id, secret).status_code == 303  # the third
        refused = bastion.browser().sign_in(key_id, secret)  # right, but one too many
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 300
        assert SESSION_COOKIE not in refused.cookies
        records = [r for r in running.app.services.trail.recent(50)
                   if r.operation == "ConsoleSignIn"]
        assert [r.outcome for r in records] == ["denied", "denied", "allowed", "denied"]
        assert records[-1].error_code == "ThrottlingException"
    finally:
        running.stop()


# -- headers ------------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(console_bastion: ConsoleBastion) -> None:
    anonymous = console_bastion.browser()
    _headers_are_strict(anonymous.get("/console/sign-in"))
    _headers_are_strict(anonymous.get("/console/overview"))  # the redirect too
    static = anonymous.get("/console/static/console.js")
    _headers_are_strict(static)
    assert static.status_code == 200 and static.headers["content-type"].startswith(
        "text/javascript")
    assert anonymous.get("/console/static/../templates/base.html").status_code in (303, 404)
    client = console_bastion.signed_in("auditor")
    for path in [*PAGES, "/console/things/no-such-thing"]:
        answer = client.get(path)
        _headers_are_strict(answer)
        assert answer.headers["cache-control"] == "no-store", path
        assert "<script>" not in answer.text and " style=" not in answer.text, path


def test_health_endpoints_answer_without_credentials(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.browser()
    live = client.get("/healthz")
    assert live.status_code == 200 and live.json() == {"status": "live"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "mqtt": "ok"}}


def test_a_form_that_never_arrives_is_cut_off(tmp_path_factory: pytest.TempPathFactory
                                              ) -> None:
    """The console bounds a POST's body in time, as the API does (408, then closed)."""
    datadir = init_data_dir(tmp_path_factory.mktemp("console-slow") / "data")
    running = start_console_bastion(datadir, api=ApiConfig(host="127.0.0.1", port=0,
                                                           body_timeout=0.5))
    try:
        api = running.app.api
        assert api is not None
        context = ssl.create_default_context(cafile=str(datadir.ca_cert_path))
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: 100\r\n\r\naccess_key_id=AKIA")
            answer = b""
            while chunk := tls.recv(65536):  # until the server closes
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in answer.lower()
    finally:
        running.stop()


def test_console_turned_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``[console] enabled = false``: /console/ is an ordinary API path (unsigned, so
    refused), and the probes still answer."""
    datadir = init_data_dir(tmp_path_factory.mktemp("console-off") / "data")
    running = start_console_bastion(datadir, console=ConsoleConfig(enabled=False))
    try:
        api = running.app.api
        assert api is not None and running.app.console is None
        bastion = ConsoleBastion(running, datadir, ManualClock(), api.url, {}, datadir.path)
        answer = bastion.browser().get("/console/sign-in")
        assert answer.status_code == 403  # the API's answer to a request without SigV4
        assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        assert "content-security-policy" not in answer.headers
        assert bastion.browser().get("/healthz").status_code == 200
    finally:
        running.stop()


def test_readyz_names_what_is_not_ready(tmp_path_factory: pytest.TempPathFactory) -> None:
    datadir = init_data_dir(tmp_path_factory.mktemp("console-ready") / "data")
    running = start_console_bastion(datadir)
    try:
        api = running.app.api
        assert api is not None
        bastion = ConsoleBastion(running, datadir, ManualClock(), api.url, {}, datadir.path)
        assert bastion.browser().get("/readyz").status_code == 200
        listeners = next(c for c in running.app.components if c.name == "mqtt-listeners")
        running.run(listeners.stop())
        answer = bastion.browser().get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"status": "unavailable",
                                 "checks": {"database": "ok", "mqtt": "not listening"}}
        assert bastion.browser().get("/healthz").status_code == 200  # alive all the same
    finally:
        running.stop()


# -- authorization -------------------------------------------------------------------------

def test_an_auditor_reads_every_page(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    for operation in ("ListThings", "ListCertificates", "ListTrailRecords"):
        assert any(r.role == "auditor" and r.outcome == "allowed"
                   for r in console_bastion.console_records(operation)), operation


def test_an_auditors_revoke_is_refused_by_the_server(console_bastion: ConsoleBastion) -> None:
    """Even sent by hand, with the session's valid CSRF token."""
    device = console_bastion.device()
    client = console_bastion.signed_in("auditor")
    page = client.get(f"/console/certificates/{device.certificate_id}?confirm=REVOKED")
    assert page.status_code == 200 and 'id="confirm"' not in page.text  # not offered...
    answer = client.post(f"/console/certificates/{device.certificate_id}/status",
                         {"csrf": client.csrf, "new_status": "REVOKED"})
    assert answer.status_code == 403  # ...and refused when sent anyway
    identity = console_bastion.running.app.plane.identity
    assert identity.describe_certificate(device.certificate_id).status.value == "ACTIVE"
    denied = [r for r in console_bastion.console_records("UpdateCertificate")
              if device.certificate_id in r.parameters]
    assert [(r.outcome, r.role, r.http_status, r.error_code) for r in denied] == [
        ("denied", "auditor", 403, "AccessDeniedException")]


@pytest.mark.parametrize("csrf", [None, "", "wrong"])
def test_a_post_without_the_csrf_token_is_refused(console_bastion: ConsoleBastion,
                                                  csrf: str | None) -> None:
    device = console_bastion.device()
    client = console_bastion.signed_in("admin")
    form = {"new_status": "REVOKED"}
    if csrf is not None:
        form["csrf"] = csrf
    answer = client.post(f"/console/certificates/{device.certificate_id}/status", form)
    assert answer.status_code == 403 and "CSRF" in answer.text
    identity = console_bastion.running.app.plane.identity
    assert identity.describe_certificate(device.certificate_id).status.value == "ACTIVE"
    # Another session's token does not do either.
    other = console_bastion.signed_in("admin")
    answer = client.post(f"/console/certificates/{device.certificate_id}/status",
                         {"csrf": other.csrf, "new_status": "REVOKED"})
    assert answer.status_code == 403
    assert client.post("/console/sign-out", {}).status_code == 403
    assert client.get("/console/overview").status_code == 200  # still signed in


def test_an_operator_revokes_and_the_device_drops(console_bastion: ConsoleBastion) -> None:
    device = console_bastion.device()
    mqtt = Client(device, console_bastion.mqtt_port, client_id=device.name).connect()
    try:
        client = console_bastion.signed_in("operator")
        wait_for(lambda: device.name in client.get("/console/overview").text, 5,
                 "the device on the overview")
        answer = client.post(f"/console/certificates/{device.certificate_id}/status",
                             {"csrf": client.csrf, "new_status": "REVOKED"})
        assert answer.status_code == 303
        assert answer.headers["location"].endswith("?done=REVOKED")
        assert mqtt.disconnected.wait(5), "the device was not disconnected"
        page = client.get(answer.headers["location"])
        assert "REVOKED" in page.text and 'id="revoke"' not in page.text
    finally:
        mqtt.paho.loop_stop()
    identity = console_bastion.running.app.plane.identity
    assert identity.describe_certificate(device.certificate_id).status.value == "REVOKED"
    allowed = [r for r in console_bastion.console_records("UpdateCertificate")
               if device.certificate_id in r.parameters]
    assert [(r.outcome, r.role, r.service) for r in allowed] == [("allowed", "operator", "iot")]
    # A revoked certificate stays revoked: the registry refuses, the console says so.
    again = client.post(f"/console/certificates/{device.certificate_id}/status",
                        {"csrf": client.csrf, "new_status": "ACTIVE"})
    assert again.status_code >= 400


# -- pages ------------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>\"'{{7*7}}"


def test_values_a_device_controls_are_escaped(console_bastion: ConsoleBastion) -> None:
    """Thing names cannot hold markup (the registry refuses them, as AWS does); a client
    id, a shadow document and the trail's parameters can."""
    device = console_bastion.device()
    services = console_bastion.running.app.services
    services.shadow.update(device.name, None, json.dumps(
        {"state": {"reported": {"label": HOSTILE}}}).encode())
    mqtt = Client(device, console_bastion.mqtt_port, client_id=HOSTILE).connect()
    try:
        client = console_bastion.signed_in("auditor")
        overview = client.get("/console/overview").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview
        assert "<script>alert" not in overview and "{{7*7}}" in overview
        thing = client.get(f"/console/things/{device.name}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thing and "<script>alert" not in thing
        shadow = thing.split('id="shadow"')[1].split("</pre>")[0]
        label = next(line for line in shadow.splitlines() if "label" in line)
        assert "{{7*7}}" in label and "49" not in label
        trail = client.get("/console/trail?operation=%3Cscript%3E").text
        assert "&lt;script&gt;" in trail and "<script>" not in trail
    finally:
        mqtt.paho.disconnect()
        mqtt.paho.loop_stop()


def test_things_filters(console_bastion: ConsoleBastion, unique: Callable[[str], str]) -> None:
    plane = console_bastion.running.app.plane
    prefix = unique("filter")
    plane.registry.create_thing_type(f"{prefix}-type")
    plane.registry.create_thing_group(f"{prefix}-group")
    for index in range(3):
        plane.registry.create_thing(f"{prefix}-{index}",
                                    thing_type_name=f"{prefix}-type" if index else None)
    plane.registry.add_thing_to_thing_group(thing_group_name=f"{prefix}-group",
                                            thing_name=f"{prefix}-2")
    client = console_bastion.signed_in("auditor")

    def names(query: str) -> list[str]:
        page = client.get(f"/console/things?{query}")
        assert page.status_code == 200
        return [f"{prefix}-{i}" for i in range(3) if f">{prefix}-{i}<" in page.text]

    assert names(f"prefix={prefix}") == [f"{prefix}-0", f"{prefix}-1", f"{prefix}-2"]
    assert names(f"prefix={prefix}&type={prefix}-type") == [f"{prefix}-1", f"{prefix}-2"]
    assert names(f"prefix={prefix}&group={prefix}-group") == [f"{prefix}-2"]
    assert names(f"prefix={prefix}&connected=yes") == []
    assert names(f"prefix={prefix}&connected=no") == [f"{prefix}-0", f"{prefix}-1",
                                                     f"{prefix}-2"]
    assert client.get(f"/console/things?group={prefix}-nope").status_code == 404


def test_thing_page(console_bastion: ConsoleBastion) -> None:
    device = console_bastion.device()
    mqtt = Client(device, console_bastion.mqtt_port, client_id=device.name).connect()
    mqtt.paho.disconnect()
    assert mqtt.disconnected.wait(5)
    mqtt.paho.loop_stop()
    client = console_bastion.signed_in("auditor")
    registry = console_bastion.running.app.plane.registry

    def history_shown() -> bool:
        return bool(registry.connection_history(device.name))

    wait_for(history_shown, 5, "the connection journal")
    page = client.get(f"/console/things/{device.name}").text
    assert device.certificate_id[:16] in page and "console-test-open" in page
    assert "CLIENT_INITIATED_DISCONNECT" in page
    assert client.get("/console/things/no-such-thing").status_code == 404


def test_policy_pages(console_bastion: ConsoleBastion, unique: Callable[[str], str]) -> None:
    policies = console_bastion.running.app.plane.policies
    name = unique("policy")
    policies.create_policy(name, '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                 '"Action":"iot:Connect","Resource":"*"}]}')
    client = console_bastion.signed_in("auditor")
    assert name in client.get("/console/policies").text
    versions = client.get(f"/console/policies/{name}").text
    assert f"/console/policies/{name}/versions/1" in versions
    document = client.get(f"/console/policies/{name}/versions/1").text
    assert "iot:Connect" in document and "&#34;Effect&#34;: &#34;Allow&#34;" in document


def test_trail_filter_and_verify(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    client.get("/console/things")
    page = client.get("/console/trail?operation=ListThings&outcome=allowed").text
    assert "iot:ListThings" in page and "bastion:ConsoleSignIn" not in page
    verified = client.post("/console/trail/verify", {"csrf": client.csrf})
    assert verified.status_code == 200
    assert "The trail is intact" in verified.text
    assert console_bastion.console_records("VerifyTrail")[-1].role == "auditor"


def test_the_overview_stream_sends_numbers(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("auditor")
    with client.http.get(console_bastion.url + "/console/overview/stream", stream=True,
                         timeout=10) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines(decode_unicode=True)
        assert next(lines) == "event: overview"
        data = json.loads(next(lines).removeprefix("data: "))
    assert {"connected", "messagesIn", "messagesOut", "activeViolations", "findings",
            "expiringCertificates", "clients"} <= set(data)


def test_audit_findings_page_and_overview(console_bastion: ConsoleBastion) -> None:
    """The fixture's open policy (iot:* on *) is what the audit flags."""
    services = console_bastion.running.app.services
    assert services.audit is not None
    audit = services.audit.audit
    console_bastion.advance(1)  # the newest task: the audit page shows the latest one
    task_id = audit.start_on_demand_audit_task(["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"])
    wait_for(lambda: audit.describe_audit_task(task_id).status.value == "COMPLETED", 20,
             "the audit")
    client = console_bastion.signed_in("auditor")
    page = client.get("/console/audit").text
    assert task_id in page and "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in page
    assert "console-test-open" in page and "CRITICAL" in page
    console_bastion.advance(20)  # past the overview's cache of the database figures
    overview = client.get("/console/overview").text
    assert task_id in overview
    critical = overview.split('id="findings-critical">')[1].split("<")[0]
    assert int(critical) >= 1


def test_jobs_page_counts_executions_by_status(console_bastion: ConsoleBastion,
                                               unique: Callable[[str], str]) -> None:
    devices = [console_bastion.device() for _ in range(3)]
    jobs = console_bastion.running.app.services.jobs
    registry = console_bastion.running.app.plane.registry
    job_id = unique("job")
    jobs.create_job(job_id, targets=[registry.describe_thing(d.name).thing_arn
                                     for d in devices], document='{"operation": "reboot"}')
    client = console_bastion.signed_in("auditor")
    row = client.get("/console/jobs").text.split(f">{job_id}</a></td>")[1].split("</tr>")[0]
    assert "QUEUED 3" in row and "IN_PROGRESS" in row  # the job's own status
    page = client.get(f"/console/jobs/{job_id}").text
    executions = page.split('id="executions"')[1]
    for device in devices:
        assert f">{device.name}</a></td><td><span class=\"chip exec-queued\">QUEUED" in executions
    assert client.get("/console/jobs/no-such-job").status_code == 404


def test_policy_versions_compared(console_bastion: ConsoleBastion,
                                  unique: Callable[[str], str]) -> None:
    policies = console_bastion.running.app.plane.policies
    name = unique("diff")
    statement = ('{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish",'
                 '"Resource":"arn:aws:iot:us-east-1:123456789012:topic/{}"}}]}}')
    policies.create_policy(name, statement.format("plain"))
    policies.create_policy_version(name, statement.format("<b>bold</b>"), set_as_default=True)
    client = console_bastion.signed_in("auditor")
    assert 'id="compare"' in client.get(f"/console/policies/{name}").text
    page = client.get(f"/console/policies/{name}/diff").text  # 1 -> the default, 2
    assert ('<span class="diff-removed">-      &#34;Resource&#34;: &#34;arn:aws:iot:us-east-1:'
            '123456789012:topic/plain&#34;</span>') in page
    assert ('<span class="diff-added">+      &#34;Resource&#34;: &#34;arn:aws:iot:us-east-1:'
            '123456789012:topic/&lt;b&gt;bold&lt;/b&gt;&#34;</span>') in page
    same = client.get(f"/console/policies/{name}/diff?from=2&to=2").text
    assert "The two documents are the same" in same
    assert client.get(f"/console/policies/{name}/diff?from=9&to=2").status_code == 404


def test_run_an_audit_now(console_bastion: ConsoleBastion) -> None:
    auditor = console_bastion.signed_in("auditor")
    assert 'id="run-audit"' not in auditor.get("/console/audit").text
    assert auditor.post("/console/audit/run", {"csrf": auditor.csrf}).status_code == 403
    operator = console_bastion.signed_in("operator")
    assert 'id="run-audit"' in operator.get("/console/audit").text
    console_bastion.advance(1)  # the newest task: the audit page shows the latest one
    answer = operator.post("/console/audit/run", {"csrf": operator.csrf})
    assert answer.status_code == 303
    task_id = answer.headers["location"].split("started=")[1]
    audit = console_bastion.running.app.services.audit
    assert audit is not None
    wait_for(lambda: audit.audit.describe_audit_task(task_id).status.value == "COMPLETED", 20,
             "the audit")
    assert task_id in operator.get("/console/audit").text
    records = console_bastion.console_records("StartOnDemandAuditTask")
    assert [(r.role, r.outcome) for r in records[-2:]] == [("auditor", "denied"),
                                                           ("operator", "allowed")]


def test_trail_page_names_the_console_as_the_source(console_bastion: ConsoleBastion) -> None:
    client = console_bastion.signed_in("operator")
    page = client.get("/console/trail?operation=ConsoleSignIn").text
    assert '<td class="source">console</td>' in page
    records = console_bastion.console_records("ConsoleSignIn")
    assert records and all(json.loads(r.parameters)["bastion:source"] == "console"
                           for r in records)


def test_test_authorization(console_bastion: ConsoleBastion) -> None:
    """The least-privilege device policy: its own topics with its thing name as client id,
    nothing else."""
    device = console_bastion.device(policy=None)
    client = console_bastion.signed_in("auditor")
    certificate = f"/console/certificates/{device.certificate_id}"
    assert f"{certificate}/test?client_id={device.name}" in client.get(certificate).text

    def verdict(**query: str) -> str:
        page = client.get(f"{certificate}/test", params=query)
        assert page.status_code == 200
        return page.text.split('id="verdict"><strong>')[1].split("<")[0]

    assert verdict(client_id=device.name, action="PUBLISH",
                   resource=f"{device.name}/telemetry") == "ALLOWED"
    assert verdict(client_id=device.name, action="PUBLISH",
                   resource="someone-else/telemetry") == "IMPLICIT_DENY"
    assert verdict(client_id=device.name, action="CONNECT", resource=device.name) == "ALLOWED"
    assert verdict(client_id="impostor", action="CONNECT", resource="impostor") == (
        "IMPLICIT_DENY")
    assert client.get("/console/certificates/" + "0" * 64 + "/test",
                      params={"resource": "x"}).status_code == 404
    records = console_bastion.console_records("TestAuthorization")
    assert records[-1].role == "auditor" and records[-1].outcome == "error"


def test_a_new_policy_version_from_the_console_reaches_live_sessions(
        console_bastion: ConsoleBastion, unique: Callable[[str], str]) -> None:
    plane = console_bastion.running.app.plane
    name = unique("edited")
    plane.policies.create_policy(name, OPEN_DOCUMENT)
    device = console_bastion.device(policy=name)
    mqtt = Client(device, console_bastion.mqtt_port, client_id=device.name).connect()
    try:
        auditor = console_bastion.signed_in("auditor")
        form = auditor.get(f"/console/policies/{name}/edit").text
        assert 'id="save"' not in form and "iot:*" in form
        denied = auditor.post(f"/console/policies/{name}/versions",
                              {"csrf": auditor.csrf, "document": OPEN_DOCUMENT})
        assert denied.status_code == 403
        operator = console_bastion.signed_in("operator")
        assert 'id="save"' in operator.get(f"/console/policies/{name}/edit").text
        malformed = operator.post(f"/console/policies/{name}/versions",
                                  {"csrf": operator.csrf, "document": '{"Statement": <x>}',
                                   "set_as_default": "on"})
        assert malformed.status_code == 400 and 'id="problem"' in malformed.text
        assert "{&#34;Statement&#34;: &lt;x&gt;}" in malformed.text  # kept, escaped
        no_connect = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                      '"Action":"iot:Publish","Resource":"*"}]}')
        created = operator.post(f"/console/policies/{name}/versions",
                                {"csrf": operator.csrf, "document": no_connect,
                                 "set_as_default": "on"})
        assert created.status_code == 303
        assert created.headers["location"].endswith(f"/policies/{name}/versions/2?created=1")
        assert mqtt.disconnected.wait(5), "the device kept a connection its policy refuses"
    finally:
        mqtt.paho.loop_stop()
    assert plane.policies.get_policy(name).default_version_id == "2"
    records = [r for r in console_bastion.console_records("CreatePolicyVersion")
               if name in r.parameters]
    assert [(r.role, r.outcome, r.http_status) for r in records] == [
        ("auditor", "denied", 403), ("operator", "error", 400), ("operator", "allowed", 303)]


def test_thing_page_plots_its_detect_metrics(console_bastion: ConsoleBastion) -> None:
    from bastion.defender.detect import Datapoint, MetricValue

    device = console_bastion.device()
    services = console_bastion.running.app.services
    assert services.detect is not None
    now = console_bastion.clock.time()
    services.detect.service.ingest(
        [Datapoint(device.name, "aws:num-messages-sent", MetricValue(count=count), now - age)
         for age, count in ((3600, 4), (1800, 9), (60, 2))], now)
    client = console_bastion.signed_in("auditor")
    page = client.get(f"/console/things/{device.name}").text
    chart = page.split('id="chart-aws-num-messages-sent"')[1].split("</figure>")[0]
    assert "latest 2, 3 datapoints, top of the scale 9" in chart
    assert len(chart.split('class="series" points="')[1].split('"')[0].split()) == 3
    assert 'id="chart-aws-num-disconnects"' not in page  # no datapoint, no chart


def test_suppress_a_finding_and_delete_the_suppression(console_bastion: ConsoleBastion) -> None:
    services = console_bastion.running.app.services
    assert services.audit is not None
    audit = services.audit.audit
    console_bastion.advance(1)  # the newest task: the audit page shows the latest one
    task_id = audit.start_on_demand_audit_task(["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"])
    wait_for(lambda: audit.describe_audit_task(task_id).status.value == "COMPLETED", 20,
             "the audit")
    finding = next(f for f in audit.list_audit_findings(task_id=task_id)[0]
                   if f.non_compliant_resource.identifier.fields[
                       "policyVersionIdentifier"]["policyName"] == "console-test-open")
    form_path = f"/console/audit/findings/{finding.finding_id}/suppress"
    auditor = console_bastion.signed_in("auditor")
    assert 'id="suppress"' not in auditor.get(form_path).text
    assert auditor.post("/console/audit/suppressions", {
        "csrf": auditor.csrf, "finding_id": finding.finding_id, "duration": "7"}
    ).status_code == 403
    operator = console_bastion.signed_in("operator")
    assert form_path in operator.get("/console/audit").text
    assert 'id="suppress"' in operator.get(form_path).text
    answer = operator.post("/console/audit/suppressions", {
        "csrf": operator.csrf, "finding_id": finding.finding_id, "duration": "30",
        "description": "<i>known</i>, being fixed"})
    assert answer.status_code == 303
    suppressions = audit.list_audit_suppressions(
        check_name="IOT_POLICY_OVERLY_PERMISSIVE_CHECK")[0]
    assert [s.description for s in suppressions] == ["<i>known</i>, being fixed"]
    page = operator.get("/console/audit").text.split('id="suppressions"')[1]
    assert "&lt;i&gt;known&lt;/i&gt;, being fixed" in page
    identifier = page.split('name="resource_identifier" value="')[1].split('"')[0]
    assert operator.post("/console/audit/suppressions/delete", {
        "csrf": operator.csrf, "check_name": "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        "resource_identifier": html.unescape(identifier)}).status_code == 303
    assert audit.list_audit_suppressions(check_name="IOT_POLICY_OVERLY_PERMISSIVE_CHECK")[0] == []
    outcomes = [(r.operation, r.role, r.outcome) for r in console_bastion.trail()
                if r.operation in ("CreateAuditSuppression", "DeleteAuditSuppression")]
    assert outcomes[-3:] == [("CreateAuditSuppression", "auditor", "denied"),
                             ("CreateAuditSuppression", "operator", "allowed"),
                             ("DeleteAuditSuppression", "operator", "allowed")]


def test_overview_message_rates(console_bastion: ConsoleBastion) -> None:
    """Rates over the console clock's seconds; a persistent session that reconnects
    brings its history back, and that is not counted as a burst."""
    reader, writer = console_bastion.device(), console_bastion.device()
    topic = f"{reader.name}/readings"
    subscriber = Client(reader, console_bastion.mqtt_port, client_id=reader.name,
                        clean=False).connect()
    publisher = Client(writer, console_bastion.mqtt_port, client_id=writer.name).connect()
    client = console_bastion.signed_in("auditor")

    def rates() -> tuple[str, str]:
        page = client.get("/console/overview").text
        return (page.split('id="messages-in">')[1].split("<")[0],
                page.split('id="messages-out">')[1].split("<")[0])

    try:
        subscriber.subscribe(topic, qos=1)
        console_bastion.advance(2)
        rates()  # the first sample of this test
        for index in range(10):
            publisher.publish(topic, f"reading {index}", qos=1)
        wait_for(lambda: subscriber.messages.qsize() == 10, 5, "ten deliveries")
        console_bastion.advance(2)
        assert rates() == ("5.0", "5.0")
        subscriber.paho.disconnect()
        assert subscriber.disconnected.wait(5)
        subscriber.paho.loop_stop()
        console_bastion.advance(2)
        assert rates() == ("0.0", "0.0")  # a sample while it is away
        again = Client(reader, console_bastion.mqtt_port, client_id=reader.name,
                       clean=False).connect()
        assert again.session_present
        console_bastion.advance(2)
        assert rates() == ("0.0", "0.0")  # its ten earlier deliveries are not new
        again.paho.disconnect()
        again.paho.loop_stop()
    finally:
        publisher.paho.disconnect()
        publisher.paho.loop_stop()


def test_detect_page_explains_and_an_operator_marks_a_false_positive(
        console_bastion: ConsoleBastion, unique: Callable[[str], str]) -> None:
    """An ML violation shows its explanation; the auditor may not set its verification
    state (refused by the server), the operator may, and the model learns from it."""
    from bastion.defender.detect import Datapoint, MetricValue

    services = console_bastion.running.app.services
    assert services.detect is not None
    detect = services.detect.service
    profile = unique("ml")
    detect.create_security_profile(profile, now=console_bastion.clock.time(), behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent", "criteria": {
            "mlDetectionConfig": {"confidenceLevel": "MEDIUM"}}}])
    detect.attach(profile, detect.target_arn("all/things"))
    things = [unique("ml-thing") for _ in range(8)]
    now = console_bastion.clock.time()
    for step in range(5):
        detect.ingest([Datapoint(t, "aws:num-messages-sent", MetricValue(count=5 + i % 2),
                                 now + step * 60) for i, t in enumerate(things)],
                      now + step * 60)
    events = detect.ingest([Datapoint(t, "aws:num-messages-sent",
                                      MetricValue(count=500 if i == 0 else 5),
                                      now + 300) for i, t in enumerate(things)], now + 300)
    [event] = [e for e in events if e.security_profile_name == profile]
    page = console_bastion.signed_in("auditor").get("/console/detect").text
    assert "aws:num-messages-sent 500 (peer group normal up to" in page
    auditor = console_bastion.signed_in("auditor")
    refused = auditor.post("/console/detect/verify", {
        "csrf": auditor.csrf, "violation_id": event.violation_id, "state": "FALSE_POSITIVE"})
    assert refused.status_code == 403
    operator = console_bastion.signed_in("operator")
    done = operator.post("/console/detect/verify", {
        "csrf": operator.csrf, "violation_id": event.violation_id,
        "state": "FALSE_POSITIVE"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=verified")
    [active] = [v for v in detect.list_active_violations(security_profile_name=profile)]
    assert active.verification_state is not None
    assert active.verification_state.value == "FALSE_POSITIVE"
    assert [r.outcome for r in console_bastion.console_records(
        "PutVerificationStateOnViolation")] == ["denied", "allowed"]


def test_threats_page_and_archive(console_bastion: ConsoleBastion) -> None:
    threats = console_bastion.running.app.services.threats
    assert threats is not None
    threats.observe_call(source_ip="127.0.0.9", access_key_id="AKIAX", authenticated=True,
                         operation="CreatePolicy", outcome="allowed", error_code=None,
                         parameters={"policyName": "<b>wide</b>", "policyDocument": (
                             '{"Statement":[{"Effect":"Allow","Action":"*",'
                             '"Resource":"*"}]}')})
    client = console_bastion.signed_in("auditor")
    page = client.get("/console/threats").text
    assert "A policy now allows every action or every resource" in page
    assert "&lt;b&gt;wide&lt;/b&gt;" in page and "<b>wide</b>" not in page
    finding = next(f for f in threats.findings() if "wide" in f.resource_id)
    refused = client.post("/console/threats/archive", {"csrf": client.csrf,
                                                       "finding_id": finding.id})
    assert refused.status_code == 403
    operator = console_bastion.signed_in("operator")
    assert operator.post("/console/threats/archive", {
        "csrf": operator.csrf, "finding_id": finding.id}).status_code == 303
    assert next(f for f in threats.findings() if f.id == finding.id).archived
    assert finding.id in operator.get("/console/threats?archived=yes").text


def test_baseline_page_shows_each_control(console_bastion: ConsoleBastion) -> None:
    page = console_bastion.signed_in("auditor").get("/console/baseline").text
    for control in ("AISB#1", "AISB#5", "AISB#11"):
        assert f"<td>{control}</td>" in page
    assert "PASS" in page or "FAIL" in page
