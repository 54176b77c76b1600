"""Domain configurations and the ACM analog, end to end: boto3's ``acm`` and ``iot``
clients against the running API, and real TLS handshakes with SNI against the MQTT
listener — each server name sees its own certificate and completes an MQTT CONNECT with
a device certificate; a disabled domain is refused; an unknown name gets the default
certificate; a TLS 1.3-only policy refuses TLS 1.2; every change is live."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.x509.oid import NameOID

from bastion.mqtt import MQTT_3_1_1, Connect, encode
from bastion.trail import redact
from support.clients import HOST, DeviceFiles, read_until_closed
from support.server_certs import Issued, OperatorCa

from .conftest import ApiBastion, device_through_api

POLL = 10.0


@pytest.fixture(scope="module")
def operator_ca() -> OperatorCa:
    return OperatorCa()


@pytest.fixture
def acm(api_bastion: ApiBastion) -> Any:
    return api_bastion.client("acm")


@pytest.fixture(scope="module")
def device(api_bastion: ApiBastion, tmp_path_factory: pytest.TempPathFactory) -> DeviceFiles:
    iot = api_bastion.client("iot")
    return device_through_api(api_bastion, iot, "domains-device",
                              tmp_path_factory.mktemp("domains-device"))


def _import(acm: Any, issued: Issued) -> str:
    return str(acm.import_certificate(Certificate=issued.certificate_pem,
                                      PrivateKey=issued.key_pem,
                                      CertificateChain=issued.chain_pem)["CertificateArn"])


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _handshake(api: ApiBastion, server_name: str, ca: OperatorCa | None, *,
               device: DeviceFiles | None = None,
               maximum: ssl.TLSVersion | None = None,
               check_hostname: bool = True) -> tuple[str, str, bytes]:
    """Connect with SNI ``server_name``; the server certificate's common name, the TLS
    version, and (with ``device``) the answer to an MQTT CONNECT."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(api.datadir.ca_cert_path))
    if ca is not None:
        context.load_verify_locations(cadata=ca.pem.decode())
    if maximum is not None:
        context.maximum_version = maximum
    if device is not None:
        context.load_cert_chain(str(device.cert), str(device.key))
    context.check_hostname = check_hostname and server_name != HOST
    raw = socket.create_connection((HOST, api.mqtt_port), timeout=5)
    with context.wrap_socket(raw, server_hostname=server_name) as sock:
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        name = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)[0].value
        answer = b""
        if device is not None:
            sock.sendall(encode(Connect(f"dom-{time.monotonic_ns()}", keep_alive=30),
                                MQTT_3_1_1))
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    break
                answer += chunk
        return str(name), str(sock.version()), answer


def _eventually(check: Callable[[], object], what: str) -> None:
    """Poll until ``check`` returns without raising (a change reaches new handshakes)."""
    deadline = time.monotonic() + POLL
    while True:
        try:
            check()
            return
        except (AssertionError, OSError, pytest.fail.Exception) as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {error!r}") from error
            time.sleep(0.05)


def _domain(unique: Callable[[str], str]) -> str:
    return f"{unique('mqtt')}.devices.example.test"


# -- ACM --------------------------------------------------------------------------------

def test_import_describe_list_delete_a_certificate(acm: Any, operator_ca: OperatorCa,
                                                   unique: Callable[[str], str]) -> None:
    name = _domain(unique)
    arn = _import(acm, operator_ca.issue(name, f"alt.{name}"))
    assert arn.startswith("arn:aws:acm:us-east-1:123456789012:certificate/")
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["CertificateArn"] == arn
    assert detail["DomainName"] == name
    assert detail["SubjectAlternativeNames"] == [name, f"alt.{name}"]
    assert (detail["Status"], detail["Type"], detail["KeyAlgorithm"]) == (
        "ISSUED", "IMPORTED", "EC_prime256v1")
    assert detail["InUseBy"] == []
    assert detail["Issuer"] == "CN=Operator Test CA"
    assert detail["NotAfter"] > datetime.now(UTC)
    listed = acm.list_certificates()["CertificateSummaryList"]
    assert [s["DomainName"] for s in listed if s["CertificateArn"] == arn] == [name]
    assert acm.list_certificates(CertificateStatuses=["EXPIRED"])["CertificateSummaryList"
                                                                 ] == []
    acm.delete_certificate(CertificateArn=arn)
    with pytest.raises(ClientError) as gone:
        acm.describe_certificate(CertificateArn=arn)
    assert _code(gone) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as again:
        acm.delete_certificate(CertificateArn=arn)
    assert _code(again) == "ResourceNotFoundException"


def test_list_certificates_pages(acm: Any, operator_ca: OperatorCa,
                                 unique: Callable[[str], str]) -> None:
    arns = {_import(acm, operator_ca.issue(_domain(unique))) for _ in range(3)}
    seen: list[str] = []
    token = None
    while True:
        page = acm.list_certificates(MaxItems=2, **({"NextToken": token} if token else {}))
        assert len(page["CertificateSummaryList"]) <= 2
        seen += [s["CertificateArn"] for s in page["CertificateSummaryList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert arns <= set(seen)
    assert len(seen) == len(set(seen))


def test_import_refuses_a_key_that_does_not_match(acm: Any, operator_ca: OperatorCa,
                                                  unique: Callable[[str], str]) -> None:
    one, other = operator_ca.issue(_domain(unique)), operator_ca.issue(_domain(unique))
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(Certificate=one.certificate_pem, PrivateKey=other.key_pem)
    assert _code(refused) == "ValidationException"
    assert "does not match" in str(refused.value)


def test_import_refuses_an_expired_certificate(acm: Any, operator_ca: OperatorCa,
                                               unique: Callable[[str], str]) -> None:
    now = datetime.now(UTC)
    expired = operator_ca.issue(_domain(unique), not_before=now - timedelta(days=10),
                                not_after=now - timedelta(days=1))
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(Certificate=expired.certificate_pem, PrivateKey=expired.key_pem)
    assert _code(refused) == "ValidationException"
    assert "expired" in str(refused.value)


def test_import_refuses_garbage_and_a_chain_that_does_not_issue(
        acm: Any, operator_ca: OperatorCa, unique: Callable[[str], str]) -> None:
    issued = operator_ca.issue(_domain(unique))
    with pytest.raises(ClientError) as garbage:
        acm.import_certificate(Certificate=b"not a certificate", PrivateKey=issued.key_pem)
    assert _code(garbage) == "ValidationException"
    with pytest.raises(ClientError) as chain:
        acm.import_certificate(Certificate=issued.certificate_pem, PrivateKey=issued.key_pem,
                               CertificateChain=OperatorCa("Another CA").pem)
    assert _code(chain) == "ValidationException"


def test_arns_of_another_kind_are_refused(acm: Any) -> None:
    for arn, code in (("arn:aws:acm:eu-west-1:123456789012:certificate/abc",
                       "InvalidArnException"),
                      ("arn:aws:acm:us-east-1:123456789012:other/abc", "InvalidArnException"),
                      ("arn:aws:iot:us-east-1:123456789012:cert/abc", "ValidationException")):
        with pytest.raises(ClientError) as refused:
            acm.describe_certificate(CertificateArn=arn)
        assert _code(refused) == code, arn


def test_the_private_key_is_sealed_at_rest_and_kept_out_of_the_trail(
        api_bastion: ApiBastion, acm: Any, operator_ca: OperatorCa,
        unique: Callable[[str], str]) -> None:
    issued = operator_ca.issue(_domain(unique))
    arn = _import(acm, issued)
    store = api_bastion.running.app.services.store
    with store.transaction(readonly=True) as uow:
        row = uow.domains.certificate(arn.rsplit("/", 1)[1])
    assert row is not None
    body = b"".join(issued.key_pem.splitlines()[1:-1])
    assert b"PRIVATE KEY" not in row.sealed_key and body not in row.sealed_key
    assert row.sealed_key[:1] == b"\x01"  # the keystore's sealed-blob version
    # What the trail stores of the call (the sink redacts what the API hands it).
    recorded = [redact(r.service, r.operation, r.parameters)
                for r in api_bastion.trail.records if r.operation == "ImportCertificate"]
    assert recorded and all(r["PrivateKey"] == "[REDACTED]" for r in recorded)
    assert all(body.decode() not in str(r) for r in recorded)


# -- domain configurations ----------------------------------------------------------------

def test_domain_configuration_lifecycle(iot: Any, acm: Any, operator_ca: OperatorCa,
                                        unique: Callable[[str], str]) -> None:
    name, domain = unique("dc"), _domain(unique)
    arn = _import(acm, operator_ca.issue(domain))
    created = iot.create_domain_configuration(
        domainConfigurationName=name, domainName=domain, serverCertificateArns=[arn],
        serviceType="DATA", tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"},
        authorizerConfig={"defaultAuthorizerName": "auth", "allowAuthorizerOverride": True})
    assert created["domainConfigurationName"] == name
    assert created["domainConfigurationArn"].startswith(
        f"arn:aws:iot:us-east-1:123456789012:domainconfiguration/{name}/")
    found = iot.describe_domain_configuration(domainConfigurationName=name)
    assert (found["domainName"], found["domainConfigurationStatus"], found["serviceType"],
            found["domainType"]) == (domain, "ENABLED", "DATA", "CUSTOMER_MANAGED")
    assert found["serverCertificates"] == [{"serverCertificateArn": arn,
                                            "serverCertificateStatus": "VALID"}]
    assert found["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}
    assert found["authorizerConfig"] == {"defaultAuthorizerName": "auth",
                                         "allowAuthorizerOverride": True}
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"] == [
        created["domainConfigurationArn"]]
    names = [d["domainConfigurationName"] for d in iot.list_domain_configurations(
        serviceType="DATA")["domainConfigurations"]]
    assert "iot:Data-ATS" in names and name in names
    iot.update_domain_configuration(domainConfigurationName=name,
                                    domainConfigurationStatus="DISABLED",
                                    removeAuthorizerConfig=True)
    found = iot.describe_domain_configuration(domainConfigurationName=name)
    assert found["domainConfigurationStatus"] == "DISABLED"
    assert "authorizerConfig" not in found
    assert found["tlsConfig"]["securityPolicy"] == "IoTSecurityPolicy_TLS13_1_3_2022_10"
    iot.delete_domain_configuration(domainConfigurationName=name)
    with pytest.raises(ClientError) as gone:
        iot.describe_domain_configuration(domainConfigurationName=name)
    assert _code(gone) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as again:
        iot.delete_domain_configuration(domainConfigurationName=name)
    assert _code(again) == "ResourceNotFoundException"


def test_the_default_domain_is_the_listeners_certificate(iot: Any) -> None:
    found = iot.describe_domain_configuration(domainConfigurationName="iot:Data-ATS")
    assert (found["domainType"], found["domainConfigurationStatus"],
            found["serverCertificates"]) == ("ENDPOINT", "ENABLED", [])
    assert found["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_2_2022_10"}
    for refused in ({"domainConfigurationStatus": "DISABLED"},
                    {"tlsConfig": {"securityPolicy": "IoTSecurityPolicy_Nope"}}):
        with pytest.raises(ClientError) as error:
            iot.update_domain_configuration(domainConfigurationName="iot:Data-ATS",
                                            **refused)
        assert _code(error) == "InvalidRequestException"
    with pytest.raises(ClientError) as delete:
        iot.delete_domain_configuration(domainConfigurationName="iot:Data-ATS")
    assert _code(delete) == "InvalidRequestException"


def test_create_refusals(iot: Any, acm: Any, operator_ca: OperatorCa,
                         unique: Callable[[str], str]) -> None:
    domain = _domain(unique)
    arn = _import(acm, operator_ca.issue(domain))
    name = unique("dc")
    iot.create_domain_configuration(domainConfigurationName=name, domainName=domain,
                                    serverCertificateArns=[arn])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"domainConfigurationName": name, "domainName": _domain(unique),
          "serverCertificateArns": [arn]}, "ResourceAlreadyExistsException"),
        ({"domainConfigurationName": unique("dc"), "domainName": domain,
          "serverCertificateArns": [arn]}, "ResourceAlreadyExistsException"),
        ({"domainConfigurationName": unique("dc"), "domainName": _domain(unique),
          "serverCertificateArns": [arn]}, "CertificateValidationException"),
        ({"domainConfigurationName": unique("dc"), "domainName": domain,
          "serverCertificateArns": [arn.rsplit("/", 1)[0] + "/unknown"]},
         "CertificateValidationException"),
        ({"domainConfigurationName": unique("dc"), "domainName": _domain(unique)},
         "InvalidRequestException"),
        ({"domainConfigurationName": unique("dc"), "domainName": _domain(unique),
          "serverCertificateArns": [arn], "tlsConfig": {"securityPolicy": "TLS_1_0"}},
         "InvalidRequestException"),
        ({"domainConfigurationName": unique("dc"), "domainName": domain,
          "serverCertificateArns": [arn], "serviceType": "JOBS"}, "InvalidRequestException"),
        ({"domainConfigurationName": "iot:Mine", "domainName": domain,
          "serverCertificateArns": [arn]}, "InvalidRequestException"),
    ]
    for arguments, expected in cases:
        with pytest.raises(ClientError) as refused:
            iot.create_domain_configuration(**arguments)
        assert _code(refused) == expected, arguments
    with pytest.raises(ClientError) as unknown:
        iot.update_domain_configuration(domainConfigurationName=unique("dc"),
                                        domainConfigurationStatus="DISABLED")
    assert _code(unknown) == "ResourceNotFoundException"


def test_a_certificate_in_use_cannot_be_deleted(iot: Any, acm: Any, operator_ca: OperatorCa,
                                                unique: Callable[[str], str]) -> None:
    domain, name = _domain(unique), unique("dc")
    arn = _import(acm, operator_ca.issue(domain))
    iot.create_domain_configuration(domainConfigurationName=name, domainName=domain,
                                    serverCertificateArns=[arn])
    iot.update_domain_configuration(domainConfigurationName=name,
                                    domainConfigurationStatus="DISABLED")
    with pytest.raises(ClientError) as in_use:
        acm.delete_certificate(CertificateArn=arn)
    assert _code(in_use) == "ResourceInUseException"
    assert name in str(in_use.value)
    iot.delete_domain_configuration(domainConfigurationName=name)
    acm.delete_certificate(CertificateArn=arn)


# -- what TLS handshakes see ----------------------------------------------------------------

def test_each_server_name_gets_its_certificate_and_connects(
        api_bastion: ApiBastion, iot: Any, acm: Any, operator_ca: OperatorCa,
        device: DeviceFiles, unique: Callable[[str], str]) -> None:
    first, second = _domain(unique), _domain(unique)
    for domain in (first, second):
        iot.create_domain_configuration(
            domainConfigurationName=unique("dc"), domainName=domain,
            serverCertificateArns=[_import(acm, operator_ca.issue(domain))])
    for domain in (first, second):
        def served(domain: str = domain) -> None:
            common_name, _, connack = _handshake(api_bastion, domain, operator_ca,
                                                 device=device)
            assert common_name == domain
            assert connack == b"\x20\x02\x00\x00"  # CONNACK, accepted
        _eventually(served, f"{domain} served")
    # An unknown name, and no domain name at all, get the default certificate.
    default_name, _, connack = _handshake(api_bastion, "unknown.example.test", None,
                                          device=device, check_hostname=False)
    assert default_name != first and connack == b"\x20\x02\x00\x00"
    assert _handshake(api_bastion, HOST, None)[0] == default_name


def test_a_disabled_domain_is_refused_live_and_served_again_when_enabled(
        api_bastion: ApiBastion, iot: Any, acm: Any, operator_ca: OperatorCa,
        device: DeviceFiles, unique: Callable[[str], str]) -> None:
    domain, name = _domain(unique), unique("dc")
    iot.create_domain_configuration(
        domainConfigurationName=name, domainName=domain,
        serverCertificateArns=[_import(acm, operator_ca.issue(domain))])
    _eventually(lambda: _handshake(api_bastion, domain, operator_ca), "served")
    iot.update_domain_configuration(domainConfigurationName=name,
                                    domainConfigurationStatus="DISABLED")

    def refused() -> None:
        with pytest.raises(ssl.SSLError, match="ACCESS_DENIED"):
            _handshake(api_bastion, domain, operator_ca, device=device)
    _eventually(refused, "the disabled domain refused")
    iot.update_domain_configuration(domainConfigurationName=name,
                                    domainConfigurationStatus="ENABLED")
    _eventually(lambda: _handshake(api_bastion, domain, operator_ca, device=device),
                "served again")
    # Deleted: the name is unknown again, so the default certificate answers it (and a
    # client checking the name refuses that certificate).
    iot.delete_domain_configuration(domainConfigurationName=name)

    def default() -> None:
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(api_bastion, domain, operator_ca)
    _eventually(default, "the deleted domain answered by the default certificate")


def _open_session(api: ApiBastion, server_name: str, ca: OperatorCa, device: DeviceFiles,
                  client_id: str) -> ssl.SSLSocket:
    """A live MQTT session over TLS with SNI ``server_name`` (CONNACK read)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.pem.decode())
    context.load_cert_chain(str(device.cert), str(device.key))
    sock = context.wrap_socket(socket.create_connection((HOST, api.mqtt_port), timeout=5),
                               server_hostname=server_name)
    sock.sendall(encode(Connect(client_id, keep_alive=60), MQTT_3_1_1))
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    return sock


def test_live_sessions_of_a_disabled_domain_are_dropped(
        api_bastion: ApiBastion, iot: Any, acm: Any, operator_ca: OperatorCa,
        device: DeviceFiles, unique: Callable[[str], str]) -> None:
    doomed, kept = _domain(unique), _domain(unique)
    names = {}
    for domain in (doomed, kept):
        names[domain] = unique("dc")
        iot.create_domain_configuration(
            domainConfigurationName=names[domain], domainName=domain,
            serverCertificateArns=[_import(acm, operator_ca.issue(domain))])
        _eventually(lambda domain=domain: _handshake(api_bastion, domain, operator_ca),
                    "served")
    on_doomed = _open_session(api_bastion, doomed, operator_ca, device, unique("c"))
    on_kept = _open_session(api_bastion, kept, operator_ca, device, unique("c"))
    try:
        iot.update_domain_configuration(domainConfigurationName=names[doomed],
                                        domainConfigurationStatus="DISABLED")
        read_until_closed(on_doomed)  # the server closes it
        on_kept.settimeout(0.5)
        with pytest.raises(TimeoutError):  # the other domain's session stays open
            on_kept.recv(1)
        on_kept.settimeout(5)
        on_kept.sendall(b"\xc0\x00")  # PINGREQ
        assert on_kept.recv(2) == b"\xd0\x00"  # PINGRESP
    finally:
        on_doomed.close()
        on_kept.close()


def test_a_tls13_only_policy_refuses_tls12(api_bastion: ApiBastion, iot: Any, acm: Any,
                                           operator_ca: OperatorCa, device: DeviceFiles,
                                           unique: Callable[[str], str]) -> None:
    strict, lenient = _domain(unique), _domain(unique)
    for domain, policy in ((strict, "IoTSecurityPolicy_TLS13_1_3_2022_10"),
                           (lenient, "IoTSecurityPolicy_TLS13_1_2_2022_10")):
        iot.create_domain_configuration(
            domainConfigurationName=unique("dc"), domainName=domain,
            serverCertificateArns=[_import(acm, operator_ca.issue(domain))],
            tlsConfig={"securityPolicy": policy})
    _eventually(lambda: _handshake(api_bastion, strict, operator_ca), "served")
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):  # with a good device
        _handshake(api_bastion, strict, operator_ca, device=device,
                   maximum=ssl.TLSVersion.TLSv1_2)
    _, version, connack = _handshake(api_bastion, strict, operator_ca, device=device)
    assert (version, connack) == ("TLSv1.3", b"\x20\x02\x00\x00")
    _eventually(lambda: _handshake(api_bastion, lenient, operator_ca), "served")
    assert _handshake(api_bastion, lenient, operator_ca, device=device,
                      maximum=ssl.TLSVersion.TLSv1_2)[1:] == ("TLSv1.2", b"\x20\x02\x00\x00")


def test_reimporting_a_served_certificate_renews_it_live(
        api_bastion: ApiBastion, iot: Any, acm: Any, operator_ca: OperatorCa,
        unique: Callable[[str], str]) -> None:
    domain = _domain(unique)
    arn = _import(acm, operator_ca.issue(domain))
    iot.create_domain_configuration(domainConfigurationName=unique("dc"), domainName=domain,
                                    serverCertificateArns=[arn])

    def serial() -> int:
        raw = socket.create_connection((HOST, api_bastion.mqtt_port), timeout=5)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=operator_ca.pem.decode())
        with context.wrap_socket(raw, server_hostname=domain) as sock:
            der = sock.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

    _eventually(serial, "served")
    before = serial()
    renewed = operator_ca.issue(domain)
    assert acm.import_certificate(CertificateArn=arn, Certificate=renewed.certificate_pem,
                                  PrivateKey=renewed.key_pem)["CertificateArn"] == arn
    expected = x509.load_pem_x509_certificate(renewed.certificate_pem).serial_number
    assert expected != before

    def renewed_served() -> None:
        assert serial() == expected
    _eventually(renewed_served, "the renewed certificate served")
    # A re-import that no longer covers the domain it serves is refused.
    other = operator_ca.issue(_domain(unique))
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(CertificateArn=arn, Certificate=other.certificate_pem,
                               PrivateKey=other.key_pem)
    assert _code(refused) == "CertificateValidationException"


def test_unknown_acm_target_is_refused(api_bastion: ApiBastion, tmp_path: Path) -> None:
    del tmp_path
    acm = api_bastion.client("acm")
    with pytest.raises(ClientError) as refused:
        acm.get_account_configuration()
    assert _code(refused) == "NotImplementedException"
