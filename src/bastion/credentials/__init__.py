"""The credentials provider: devices trade their certificate for temporary credentials.

A front door beside the API and the MQTT listeners. A device presents its certificate
over mutual TLS and asks ``GET /role-aliases/<alias>/credentials`` (optionally naming its
thing in ``x-amzn-iot-thingname``), as it would ask AWS IoT's credentials provider; when
its IoT policy allows ``iot:AssumeRoleWithCertificate`` on the alias, it gets an access
key id, a secret, a session token and their expiration, which Bastion's SigV4 accepts
with ``x-amz-security-token`` until then, with the role of the alias.

* :class:`CredentialsProvider` — the decision (certificate, thing, policy, alias, role);
* :class:`CredentialsServer` — the HTTPS listener (``[credentials]`` in ``config.toml``);
* :class:`ProviderError` — a refusal, with the status, error type and message the device
  sees.
"""

from __future__ import annotations

from ._provider import CredentialsProvider, Issued, ProviderError
from ._server import CredentialsServer

__all__ = ["CredentialsProvider", "CredentialsServer", "Issued", "ProviderError"]
