"""Build the policy ``RequestContext`` of a connection from its certificate and registry
record. Done once per CONNECT (and after a security event)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..account import Account
from ..policy import RequestContext
from ..registry import PrincipalRecord

# AWS IoT's certificate attribute names (policy variables) → X.509 name OIDs.
_NAME_ATTRIBUTES: Mapping[str, x509.ObjectIdentifier] = {
    "DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
    "Country": NameOID.COUNTRY_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "State": NameOID.STATE_OR_PROVINCE_NAME,
    "CommonName": NameOID.COMMON_NAME,
    "SerialNumber": NameOID.SERIAL_NUMBER,
    "Title": NameOID.TITLE,
    "Surname": NameOID.SURNAME,
    "GivenName": NameOID.GIVEN_NAME,
    "Initials": NameOID.INITIALS,
    "Pseudonym": NameOID.PSEUDONYM,
    "GenerationQualifier": NameOID.GENERATION_QUALIFIER,
}


def _name_values(name: x509.Name) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute, oid in _NAME_ATTRIBUTES.items():
        found = [str(a.value) for a in name.get_attributes_for_oid(oid)]
        if found:
            values[attribute] = found
    return values


def _alternative_names(cert: x509.Certificate,
                       extension: type[x509.SubjectAlternativeName | x509.IssuerAlternativeName]) -> dict[str, list[str]]:
    try:
        names = cert.extensions.get_extension_for_class(extension).value
    except x509.ExtensionNotFound:
        return {}
    values: dict[str, list[str]] = {}
    found: dict[str, list[str]] = {
        "RFC822Name": list(names.get_values_for_type(x509.RFC822Name)),
        "DNSName": list(names.get_values_for_type(x509.DNSName)),
        "UniformResourceIdentifier": list(
            names.get_values_for_type(x509.UniformResourceIdentifier)),
        "IPAddress": [str(ip) for ip in names.get_values_for_type(x509.IPAddress)],
    }
    for label, items in found.items():
        if items:
            values[label] = items
    directories = [d.rfc4514_string() for d in names.get_values_for_type(x509.DirectoryName)]
    if directories:
        values["DirectoryName"] = directories
    return values


@dataclass(frozen=True, slots=True)
class CertificateFields:
    """What policies may read from a certificate (``iot:Certificate.*``): parsed once per
    certificate, shared by every connection that presents it."""

    subject: dict[str, list[str]]
    issuer: dict[str, list[str]]
    subject_alternative_names: dict[str, list[str]]
    issuer_alternative_names: dict[str, list[str]]
    serial_number: str

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateFields:
        return cls(_name_values(certificate.subject), _name_values(certificate.issuer),
                   _alternative_names(certificate, x509.SubjectAlternativeName),
                   _alternative_names(certificate, x509.IssuerAlternativeName),
                   format(certificate.serial_number, "x"))


def request_context(
    account: Account,
    record: PrincipalRecord,
    certificate: x509.Certificate | CertificateFields,
    *,
    client_id: str,
    source_ip: str,
) -> RequestContext:
    """The context every policy of this connection is evaluated in.

    ``iot:Connection.Thing.*`` is filled only when the client id names a thing attached
    to the certificate (AWS IoT's rule); ``IsAttached`` is ``false`` otherwise.
    """
    thing = record.thing
    fields = certificate if isinstance(certificate, CertificateFields) else (
        CertificateFields.of(certificate))
    return RequestContext(
        region=account.region,
        account=account.account_id,
        client_id=client_id,
        thing_name=thing.thing_name if thing else None,
        thing_type_name=thing.thing_type_name if thing else None,
        thing_attributes=dict(thing.attributes) if thing else {},
        is_attached=thing is not None,
        certificate_subject=fields.subject,
        certificate_issuer=fields.issuer,
        subject_alternative_names=fields.subject_alternative_names,
        issuer_alternative_names=fields.issuer_alternative_names,
        certificate_serial_number=fields.serial_number,
        certificate_id=record.certificate_id,
        source_ip=source_ip,
    )
