"""Pre-provisioning hooks: a real HTTP endpoint on loopback receives AWS's hook input and
allows, denies, overrides — or hangs, which denies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bastion.provisioning import ProvisioningService
from bastion.registry import CertificateStatus, ResourceNotFoundError
from support.clients import DeviceFiles
from support.running import RunningBastion

from .conftest import HOOK_TIMEOUT, HookServer, IdentityDevice, Rejected, fleet_template, unique


def hooked_template(service: ProvisioningService, hook: HookServer) -> str:
    name = unique("hooked-")
    service.create_provisioning_template(
        name, fleet_template(prefix="hooked-"), enabled=True,
        pre_provisioning_hook={"targetArn": hook.url, "payloadVersion": "2020-04-01"})
    return name


def test_a_hook_that_allows_receives_aws_input_and_overrides_parameters(
        prov_bastion: RunningBastion, service: ProvisioningService,
        hook_server: Callable[[dict[str, Any] | None], HookServer],
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    hook = hook_server({"allowProvisioning": True,
                        "parameterOverrides": {"Site": "from-the-hook"}})
    template = hooked_template(service, hook)
    claim = make_claim(template)
    device = IdentityDevice(claim, prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()
    serial = unique("")

    registered = device.register_thing(template, created.certificate_ownership_token,
                                       {"SerialNumber": serial})

    assert registered.thing_name == f"hooked-{serial}"
    assert registered.device_configuration["site"] == "from-the-hook"
    call = hook.calls.get(timeout=5)
    assert call == {
        "claimCertificateId": claim_id(claim),
        "certificateId": created.certificate_id,
        "certificatePem": created.certificate_pem,
        "templateArn": f"arn:aws:iot:us-east-1:123456789012:provisioningtemplate/{template}",
        "clientId": device.client_id,
        "parameters": {"SerialNumber": serial},
    }


def claim_id(files: DeviceFiles) -> str:
    from cryptography import x509

    from bastion.pki import certificate_id

    return certificate_id(x509.load_pem_x509_certificate(files.cert.read_bytes()))


@pytest.mark.parametrize("answer", [
    {"allowProvisioning": False},
    {"allowProvisioning": "false", "parameterOverrides": {"Site": "x"}},
    {"parameterOverrides": {}},
    {"allowProvisioning": True, "parameterOverrides": {"Site": 7}},
], ids=["false", "string-false", "no-decision", "bad-overrides"])
def test_a_hook_that_does_not_allow_denies(
        prov_bastion: RunningBastion, service: ProvisioningService,
        hook_server: Callable[[dict[str, Any] | None], HookServer],
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice],
        answer: dict[str, Any]) -> None:
    hook = hook_server(answer)
    template = hooked_template(service, hook)
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()
    serial = unique("")

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, created.certificate_ownership_token,
                              {"SerialNumber": serial})

    assert (rejected.value.status_code, rejected.value.error_code) == (403, "AccessDenied")
    assert hook.calls.get(timeout=5)["parameters"] == {"SerialNumber": serial}
    plane = prov_bastion.app.plane
    with pytest.raises(ResourceNotFoundError):
        plane.registry.describe_thing(f"hooked-{serial}")
    assert plane.identity.describe_certificate(created.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)


def test_a_hook_that_hangs_past_the_deadline_denies(
        prov_bastion: RunningBastion, service: ProvisioningService,
        hook_server: Callable[[dict[str, Any] | None], HookServer],
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    hook = hook_server(None)  # never answers (until the test ends)
    template = hooked_template(service, hook)
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, created.certificate_ownership_token,
                              {"SerialNumber": unique("")})

    assert rejected.value.error_code == "AccessDenied"
    assert hook.calls.get(timeout=HOOK_TIMEOUT)  # it was asked, and did not answer in time


def test_an_unreachable_hook_denies(
        prov_bastion: RunningBastion, service: ProvisioningService,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    template = unique("unreachable-")
    service.create_provisioning_template(
        template, fleet_template(), enabled=True,
        pre_provisioning_hook={"targetArn": f"http://127.0.0.1:{port}/hook"})
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, created.certificate_ownership_token,
                              {"SerialNumber": unique("")})
    assert rejected.value.error_code == "AccessDenied"
