"""The Debian mosquitto-clients tools (mosquitto_pub / mosquitto_sub) through Bastion."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_pub") is None,
                                reason="mosquitto-clients not installed")


def tls_args(device, port):
    return ["-h", "127.0.0.1", "-p", str(port), "--cafile", str(device.ca),
            "--cert", str(device.cert), "--key", str(device.key)]


@pytest.mark.parametrize("version", ["311", "5"])
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_mosquitto_pub_to_mosquitto_sub(bastion, make_device, version, qos):
    sub_dev, pub_dev = make_device(), make_device()
    sub = subprocess.Popen(
        ["mosquitto_sub", *tls_args(sub_dev, bastion.port), "-V", version, "-q", qos,
         "-t", "tools/#", "-C", "3", "-W", "10", "-v", "-i", f"sub-{version}-{qos}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the subscription exists: retained messages would hide the race,
        # so poll the broker's subscription index instead.
        from support.clients import wait_for

        directory = bastion.app.broker.directory
        wait_for(lambda: bastion.call(directory.subscription_count) > 0,
                 5, "mosquitto_sub's subscription")
        for i in range(3):
            subprocess.run(["mosquitto_pub", *tls_args(pub_dev, bastion.port), "-V", version,
                            "-q", qos, "-t", f"tools/{i}", "-m", f"msg{i}",
                            "-i", f"pub-{version}-{qos}-{i}"],
                           check=True, timeout=10, capture_output=True)
        out, err = sub.communicate(timeout=15)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    assert out.splitlines() == ["tools/0 msg0", "tools/1 msg1", "tools/2 msg2"]


def test_mosquitto_retained_message(bastion, make_device):
    dev = make_device()
    subprocess.run(["mosquitto_pub", *tls_args(dev, bastion.port), "-q", "1", "-r",
                    "-t", "tools/retained", "-m", "kept", "-i", "retainer"],
                   check=True, timeout=10, capture_output=True)
    out = subprocess.run(["mosquitto_sub", *tls_args(make_device(), bastion.port),
                          "-t", "tools/retained", "-C", "1", "-W", "5", "-i", "reader"],
                         check=True, timeout=10, capture_output=True, text=True).stdout
    assert out.strip() == "kept"


def test_mosquitto_pub_without_certificate_fails(bastion, device):
    result = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(bastion.port),
                             "--cafile", str(device.ca), "-t", "x", "-m", "y"],
                            timeout=10, capture_output=True, text=True, check=False)
    assert result.returncode != 0
