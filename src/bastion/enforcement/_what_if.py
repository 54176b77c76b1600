"""What the broker would decide for a certificate: TestAuthorization's evaluation, shared
by the API (``iot:TestAuthorization``) and the console's "Test authorization" form.

A certificate's principal record (its effective policies and attached thing) is resolved
as CONNECT resolves it, the request context is the one a connection of that certificate
with ``client_id`` would have (no source address), and each resource is evaluated by the
reference evaluator (:func:`bastion.policy.evaluate`) — the one the compiled fast path is
held equal to — with the policies named in ``add`` added and those in ``skip`` left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from cryptography import x509

from bastion.account import Account
from bastion.policy import AuthRequest, Decision, Policy, evaluate, parse_policy
from bastion.registry import IdentityService, PolicyService, ResourceNotFoundError

from ._context import request_context


def authorization_decisions(identity: IdentityService, policies: PolicyService,
                            account: Account, certificate_id: str, *, client_id: str | None,
                            action: str, resources: Sequence[str], add: Sequence[str] = (),
                            skip: Collection[str] = ()) -> list[Decision]:
    """One decision per resource, for ``action`` (``iot:Publish``, …) by the certificate.

    :raises ResourceNotFoundError: no such certificate, or a policy of ``add``.
    :raises bastion.registry.InvalidRequestError: a malformed certificate id or name.
    """
    record = identity.resolve_principal(certificate_id, client_id=client_id)
    if record is None:
        raise ResourceNotFoundError(f"The certificate {certificate_id} does not exist")
    pem = identity.describe_certificate(certificate_id).certificate_pem
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    context = dataclasses.replace(
        request_context(account, record, certificate, client_id=client_id or "",
                        source_ip=""),
        client_id=client_id, source_ip=None)
    found: dict[str, Policy] = {p.policy_name: p.parse() for p in record.policies
                                if p.policy_name not in skip}
    for name in add:
        if name not in found:
            added = policies.get_policy(name)
            found[name] = Policy(name=added.policy_name,
                                 document=parse_policy(added.policy_document, max_length=None),
                                 version_id=added.default_version_id)
    policy_set = [found[name] for name in sorted(found)]
    return [evaluate(policy_set, AuthRequest(action, resource, context))
            for resource in resources]
