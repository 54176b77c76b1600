"""Certificate issuing: the Bastion root CA, the broker's server certificate, device
certificates, the code-signing CA and its signing certificates; and the AWS IoT
certificate id.

Every certificate gets a random 159-bit serial, an SKI, and (for leaves) an AKI taken from
the issuer's SKI. Unless an explicit ``not_before`` is given, validity starts five minutes
in the past to tolerate small clock skew between the broker and devices.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    check_private_key,
    generate_private_key,
    signature_hash,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CLOCK_SKEW = timedelta(minutes=5)


def certificate_id(cert: x509.Certificate) -> str:
    """The AWS IoT certificate id: lowercase hex SHA-256 of the certificate's DER encoding.

    :raises TypeError: ``cert`` is not an :class:`x509.Certificate`.
    """
    if not isinstance(cert, x509.Certificate):
        raise TypeError(f"cert must be an x509.Certificate, not {type(cert).__name__}")
    return cert.fingerprint(hashes.SHA256()).hex()


def create_root_ca(
    common_name: str = "Bastion Root CA",
    *,
    valid_days: int = 3650,
    key_type: KeyType = "ec",
) -> tuple[x509.Certificate, PrivateKey]:
    """Create a self-signed root CA.

    The certificate has basicConstraints ``CA:TRUE`` (critical, no path length limit),
    keyUsage ``keyCertSign, cRLSign`` (critical) and a subject key identifier.

    :param common_name: the subject (and issuer) CN.
    :param valid_days: validity in days from now.
    :param key_type: ``"ec"`` (P-256, default) or ``"rsa"`` (3072 bits).
    :returns: the certificate and its private key.
    :raises ValueError: empty ``common_name``, ``valid_days`` < 1, unknown ``key_type``.
    """
    key = generate_private_key(key_type)
    return _self_signed_ca(common_name, key, valid_days, path_length=None), key


def _self_signed_ca(common_name: str, key: PrivateKey, valid_days: int, *,
                    path_length: int | None,
                    extended_usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    """A self-signed CA certificate for ``key``: basicConstraints ``CA:TRUE`` (with
    ``path_length``), keyUsage ``keyCertSign, cRLSign``, and ``extended_usage`` if given.

    :raises ValueError: empty ``common_name``, ``valid_days`` < 1.
    """
    name = _name(common_name)
    not_before, not_after = _validity(valid_days, None, None)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                       critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if extended_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([extended_usage]),
                                        critical=False)
    return (builder
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .sign(key, signature_hash(key)))


def issue_server_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[IPAddress] = (),
    valid_days: int = 825,
    common_name: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a TLS server certificate for the broker, with a fresh EC P-256 key.

    Extensions: subjectAltName (the DNS names and IP addresses), extendedKeyUsage
    ``serverAuth``, keyUsage ``digitalSignature`` (critical), basicConstraints ``CA:FALSE``
    (critical), SKI, and AKI from the CA.

    :param dns_names: DNS names (A-labels; wildcards such as ``*.example.com`` allowed).
    :param ip_addresses: IP addresses.
    :param valid_days: validity in days from now (825 is the CA/Browser Forum ceiling).
    :param common_name: subject CN; defaults to the first DNS name, else the first address.
    :returns: the certificate and its private key.
    :raises TypeError: ``ca_key`` is not an EC/RSA key, or an IP address is not an
        :mod:`ipaddress` object.
    :raises ValueError: no names at all, a name is not an A-label, ``valid_days`` < 1,
        ``ca_key`` does not belong to ``ca_cert`` or ``ca_cert`` is not a CA.
    """
    ca_key = _check_issuer(ca_cert, ca_key)
    if isinstance(dns_names, str):
        raise TypeError("dns_names must be a sequence of names, not a single string")
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    for address in ip_addresses:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise TypeError(f"ip_addresses must hold ipaddress objects, not {address!r}")
        sans.append(x509.IPAddress(address))
    if not sans:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    if common_name is None:
        common_name = dns_names[0] if dns_names else str(ip_addresses[0])
    not_before, not_after = _validity(valid_days, None, None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _leaf_builder(ca_cert, _name(common_name), key.public_key(), not_before, not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, signature_hash(ca_key))
    )
    return cert, key


@overload
def issue_device_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    common_name: str,
    public_key: None = None,
    valid_days: int = 3650,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]: ...


@overload
def issue_device_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    common_name: str,
    public_key: PublicKey,
    valid_days: int = 3650,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[x509.Certificate, None]: ...


def issue_device_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    common_name: str,
    public_key: PublicKey | None = None,
    valid_days: int = 3650,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey | None]:
    """Issue a device (TLS client) certificate with subject ``CN=<common_name>``.

    Extensions: extendedKeyUsage ``clientAuth``, keyUsage ``digitalSignature`` (critical),
    basicConstraints ``CA:FALSE`` (critical), SKI, and AKI from the CA.

    Validity is ``[not_before, not_after]``. ``not_before`` defaults to now minus five
    minutes; ``not_after`` defaults to ``not_before + valid_days`` when ``not_before`` is
    given, else to now plus ``valid_days``. Both may lie in the past, to issue an
    already-expired certificate for negative tests.

    :param public_key: the device's public key (e.g. from a CSR). When ``None``, an EC P-256
        key pair is generated and its private key returned.
    :returns: the certificate, and the generated private key or ``None`` when
        ``public_key`` was given.
    :raises TypeError: ``ca_key`` or ``public_key`` is not an EC/RSA key.
    :raises ValueError: empty or over-long ``common_name``, ``valid_days`` < 1, naive
        datetimes, ``not_after`` not after ``not_before``, ``ca_key`` does not belong to
        ``ca_cert`` or ``ca_cert`` is not a CA.
    """
    ca_key = _check_issuer(ca_cert, ca_key)
    subject = _name(common_name)
    start, end = _validity(valid_days, not_before, not_after)
    key: PrivateKey | None = None
    if public_key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
    elif not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TypeError(
            f"public_key must be an EC or RSA public key, not {type(public_key).__name__}"
        )
    cert = (
        _leaf_builder(ca_cert, subject, public_key, start, end)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, signature_hash(ca_key))
    )
    return cert, key


def _leaf_builder(
    ca_cert: x509.Certificate,
    subject: x509.Name,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_identifier(ca_cert), critical=False)
    )


def _authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        public_key = ca_cert.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise TypeError("ca_cert must hold an EC or RSA public key") from None
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_issuer(ca_cert: x509.Certificate, ca_key: object) -> PrivateKey:
    if not isinstance(ca_cert, x509.Certificate):
        raise TypeError(f"ca_cert must be an x509.Certificate, not {type(ca_cert).__name__}")
    key = check_private_key(ca_key, "ca_key")
    if key.public_key() != ca_cert.public_key():
        raise ValueError("ca_key is not the private key of ca_cert")
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("ca_cert is not a CA certificate (basicConstraints CA:TRUE missing)")
    return key


def _name(common_name: str) -> x509.Name:
    if not isinstance(common_name, str):
        raise TypeError(f"common_name must be a str, not {type(common_name).__name__}")
    if not common_name.strip():
        raise ValueError("common_name must not be empty")
    # cryptography raises ValueError for a CN longer than 64 characters (RFC 5280 bound).
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(
    valid_days: int, not_before: datetime | None, not_after: datetime | None
) -> tuple[datetime, datetime]:
    if isinstance(valid_days, bool) or not isinstance(valid_days, int):
        raise TypeError(f"valid_days must be an int, not {type(valid_days).__name__}")
    if valid_days < 1:
        raise ValueError(f"valid_days must be at least 1, not {valid_days}")
    for label, moment in (("not_before", not_before), ("not_after", not_after)):
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"{label} must be timezone-aware")
    now = datetime.now(UTC)
    if not_before is None:
        start = now - CLOCK_SKEW
        end = not_after if not_after is not None else now + timedelta(days=valid_days)
    else:
        start = not_before
        end = not_after if not_after is not None else not_before + timedelta(days=valid_days)
    if end <= start:
        raise ValueError("not_after must be later than not_before")
    return start, end


def create_code_signing_ca(
    common_name: str = "Bastion Code Signing CA", *, valid_days: int = 7300
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Create a self-signed CA that issues code-signing certificates only.

    Like :func:`create_root_ca` (EC P-256 key, basicConstraints ``CA:TRUE``, keyUsage
    ``keyCertSign, cRLSign``) but with a path length of 0 (it issues leaves, never other
    CAs) and extendedKeyUsage ``codeSigning``, so that the chain it heads is good for
    nothing but code signing. It is a different CA from the device CA: a device that pins
    it trusts firmware signatures, not TLS identities, and the other way round.

    :raises ValueError: empty ``common_name``, ``valid_days`` < 1.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return _self_signed_ca(common_name, key, valid_days, path_length=0,
                           extended_usage=ExtendedKeyUsageOID.CODE_SIGNING), key


def issue_code_signing_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    common_name: str,
    public_key: PublicKey,
    valid_days: int = 3650,
) -> x509.Certificate:
    """Issue a code-signing certificate for ``public_key`` (the key never passes here).

    Extensions: extendedKeyUsage ``codeSigning``, keyUsage ``digitalSignature``
    (critical), basicConstraints ``CA:FALSE`` (critical), SKI, and AKI from the CA.

    :raises TypeError: ``ca_key`` or ``public_key`` is not an EC/RSA key.
    :raises ValueError: empty or over-long ``common_name``, ``valid_days`` < 1, ``ca_key``
        does not belong to ``ca_cert`` or ``ca_cert`` is not a CA.
    """
    ca_key = _check_issuer(ca_cert, ca_key)
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TypeError(
            f"public_key must be an EC or RSA public key, not {type(public_key).__name__}")
    start, end = _validity(valid_days, None, None)
    return (
        _leaf_builder(ca_cert, _name(common_name), public_key, start, end)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                       critical=False)
        .sign(ca_key, signature_hash(ca_key))
    )


#: The alternative-name kinds a certificate issued for a CSR carries over from the CSR.
REQUESTED_ALTERNATIVE_NAME_TYPES: tuple[type[x509.GeneralName], ...] = (
    x509.DNSName,
    x509.IPAddress,
    x509.UniformResourceIdentifier,
    x509.RFC822Name,
)


def issue_requested_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    alternative_names: Sequence[x509.GeneralName] = (),
    not_after: datetime | None = None,
) -> x509.Certificate:
    """Issue a device (TLS client) certificate for a certificate signing request: the
    request's whole ``subject`` (every RDN, multi-valued ones included, in order) and its
    subject alternative names of the kinds in :data:`REQUESTED_ALTERNATIVE_NAME_TYPES`.

    Extensions as :func:`issue_device_certificate`, plus subjectAltName (non-critical)
    when ``alternative_names`` is not empty.

    :param subject: the subject, copied as is (its DER is what the certificate carries).
    :param alternative_names: DNS names, IP addresses, URIs and e-mail addresses.
    :raises TypeError: ``ca_key`` or ``public_key`` is not an EC/RSA key, ``subject`` is not
        an :class:`x509.Name`, or an alternative name is of another kind.
    :raises ValueError: an empty ``subject``, ``ca_key`` does not belong to ``ca_cert`` or
        ``ca_cert`` is not a CA.
    """
    ca_key = _check_issuer(ca_cert, ca_key)
    if not isinstance(subject, x509.Name):
        raise TypeError(f"subject must be an x509.Name, not {type(subject).__name__}")
    if not subject.rdns:
        raise ValueError("subject must not be empty")
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TypeError(
            f"public_key must be an EC or RSA public key, not {type(public_key).__name__}")
    names = list(alternative_names)
    for name in names:
        if not isinstance(name, REQUESTED_ALTERNATIVE_NAME_TYPES):
            raise TypeError(f"alternative name of kind {type(name).__name__} is not issued")
    start, end = _validity(3650, None, not_after)
    builder = _leaf_builder(ca_cert, subject, public_key, start, end).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, signature_hash(ca_key))
