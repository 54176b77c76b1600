"""The console in a real browser: Debian's headless chromium through Selenium, over real
HTTPS, with real devices (paho over mutual TLS). Skipped, saying why, when chromium or
its driver is not installed (``make system-packages`` installs both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.browser import missing_browser, start_chromium
from support.clients import Client, wait_for

from .conftest import ConsoleBastion

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(missing_browser() is not None,
                                 reason=missing_browser() or "")]

HOSTILE = "<script>alert(1)</script>\"'{{7*7}}"


@pytest.fixture(scope="module")
def chromium(console_bastion: ConsoleBastion) -> Iterator[Any]:
    driver = start_chromium(console_bastion.datadir.server_cert_path)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any, console_bastion: ConsoleBastion) -> Any:
    """The browser, signed out (no cookie of an earlier test)."""
    chromium.get(console_bastion.url + "/console/static/console.css")
    chromium.delete_all_cookies()
    return chromium


def _by_id(driver: Any, ident: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, ident)


def _sign_in(driver: Any, bastion: ConsoleBastion, role: str) -> None:
    key_id, secret = bastion.keys[role]
    driver.get(bastion.url + "/console/")
    assert driver.current_url.endswith("/console/sign-in")
    _by_id(driver, "access_key_id").send_keys(key_id)
    _by_id(driver, "secret_access_key").send_keys(secret)
    _by_id(driver, "sign-in").click()
    wait_for(lambda: driver.current_url.endswith("/console/overview"), 10, "the overview")
    assert role in driver.find_element("css selector", "header .who").text


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - the lookup is the check


def _client_ids(driver: Any) -> list[str]:
    """The overview's connected client ids, read at once (the stream replaces the rows)."""
    found: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#clients tbody tr:not(.empty)"
        " td:first-child'), cell => cell.textContent)")
    return found


def test_an_auditor_signs_in_and_can_only_look(browser: Any,
                                               console_bastion: ConsoleBastion) -> None:
    device = console_bastion.device()
    _sign_in(browser, console_bastion, "auditor")
    browser.get(f"{console_bastion.url}/console/certificates/{device.certificate_id}")
    assert _by_id(browser, "status").text == "ACTIVE"
    assert not browser.find_elements("id", "revoke")
    # Sent by hand from the page, with the session's valid CSRF token: refused (403).
    status = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector("input[name=csrf]").value;
        fetch(arguments[0], {method: "POST", redirect: "manual",
                             body: new URLSearchParams({csrf: csrf, new_status: "REVOKED"})})
            .then(answer => done(answer.status), error => done(String(error)));
    """, f"/console/certificates/{device.certificate_id}/status")
    assert status == 403
    browser.refresh()
    assert _by_id(browser, "status").text == "ACTIVE"


def test_an_operator_sees_a_device_connect_and_revokes_it(
        browser: Any, console_bastion: ConsoleBastion) -> None:
    device = console_bastion.device()
    _sign_in(browser, console_bastion, "operator")
    assert device.name not in _client_ids(browser)
    mqtt = Client(device, console_bastion.mqtt_port, client_id=device.name).connect()
    try:
        # No reload: the overview's live stream brings it in.
        wait_for(lambda: device.name in _client_ids(browser), 10, "the device, live")
        assert int(_by_id(browser, "connected").text) >= 1
        browser.get(f"{console_bastion.url}/console/certificates/{device.certificate_id}")
        assert _by_id(browser, "connected-now").text == "1"
        _by_id(browser, "revoke").click()
        _by_id(browser, "confirm").click()  # the confirmation form
        wait_for(lambda: browser.find_elements("id", "done"), 10, "the result")
        assert _by_id(browser, "status").text == "REVOKED"
        assert mqtt.disconnected.wait(5), "the device is still connected"
        assert _by_id(browser, "connected-now").text == "0"
        browser.get(console_bastion.url + "/console/overview")
        assert device.name not in _client_ids(browser)
    finally:
        mqtt.paho.loop_stop()
    with pytest.raises(AssertionError):  # and it cannot come back
        Client(device, console_bastion.mqtt_port, client_id=device.name).connect(timeout=3)


def test_hostile_values_are_shown_as_text_and_run_nothing(
        browser: Any, console_bastion: ConsoleBastion) -> None:
    import json

    device = console_bastion.device()
    console_bastion.running.app.services.shadow.update(device.name, None, json.dumps(
        {"state": {"reported": {"label": HOSTILE}}}).encode())
    mqtt = Client(device, console_bastion.mqtt_port, client_id=HOSTILE).connect()
    try:
        _sign_in(browser, console_bastion, "auditor")
        assert HOSTILE in _client_ids(browser)  # rendered by the server
        _no_alert(browser)
        wait_for(lambda: "on" in browser.execute_script(
            "return document.getElementById('live-state').className"), 10, "the live stream")
        assert HOSTILE in _client_ids(browser)  # rendered again by the script
        _no_alert(browser)
        scripts = browser.find_elements("css selector", "script")
        assert [s.get_attribute("src").rsplit("/", 1)[-1] for s in scripts] == ["console.js"]
        browser.get(f"{console_bastion.url}/console/things/{device.name}")
        shadow = _by_id(browser, "shadow").text
        label = next(line for line in shadow.splitlines() if "label" in line)
        assert "<script>alert(1)</script>" in label and "{{7*7}}" in label
        assert "49" not in label
        _no_alert(browser)
    finally:
        mqtt.paho.disconnect()
        mqtt.paho.loop_stop()


def test_an_expired_session_goes_back_to_sign_in(browser: Any,
                                                 console_bastion: ConsoleBastion) -> None:
    _sign_in(browser, console_bastion, "auditor")
    wait_for(lambda: _by_id(browser, "live-state").text == "live", 10, "the live stream")
    console_bastion.advance(15 * 60 + 1)
    # The stream notices without a click (it does not keep the session alive)...
    wait_for(lambda: _by_id(browser, "live-state").text == "session ended", 10,
             "the stream to end")
    # ...and the next page is the sign-in form.
    browser.get(console_bastion.url + "/console/things")
    assert browser.current_url.endswith("/console/sign-in")
    assert _by_id(browser, "access_key_id").is_displayed()


def test_sign_out(browser: Any, console_bastion: ConsoleBastion) -> None:
    _sign_in(browser, console_bastion, "admin")
    browser.find_element("css selector", "header .who button").click()
    wait_for(lambda: browser.current_url.endswith("/console/sign-in"), 10, "sign-in")
    browser.get(console_bastion.url + "/console/overview")
    assert browser.current_url.endswith("/console/sign-in")


def test_the_page_loads_nothing_from_elsewhere(browser: Any,
                                               console_bastion: ConsoleBastion) -> None:
    _sign_in(browser, console_bastion, "auditor")
    for path in ("/console/overview", "/console/things", "/console/trail"):
        browser.get_log("browser")  # drains what earlier pages logged
        browser.get(console_bastion.url + path)
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(name.startswith(console_bastion.url + "/console/")
                              for name in loaded), loaded
        problems = [entry for entry in browser.get_log("browser")
                    if entry["level"] == "SEVERE"]
        assert not problems, problems  # no CSP violation, no failed load
