"""Reserved-topic services on the broker (``$aws/things/…``): front doors that translate
MQTT requests on AWS IoT's reserved topics into service calls and publish the answers.

* :class:`ShadowTopics` — the Device Shadow service's topics
  (``$aws/things/<thing>/shadow[/name/<shadow>]/get|update|delete``).
* :func:`shadow_service_of` — the shadow service installed on a broker (the REST API
  calls the same one).
* :class:`JobsTopics` — the Jobs service's topics (``$aws/things/<thing>/jobs/get``,
  ``start-next``, ``<jobId>/get``, ``<jobId>/update``; notifications on ``notify`` and
  ``notify-next``); :func:`job_service_of` — the jobs service installed on a broker.
* :class:`ProvisioningTopics` — fleet provisioning (``$aws/certificates/create…``,
  ``$aws/provisioning-templates/<name>/provision/…``); :class:`FirstConnectionRegistration`
  — JITP/JITR on first connection; :func:`provisioning_service_of`.
"""

from __future__ import annotations

from .jobs import JobsTopics, job_service_of, parse_jobs_topic
from .provisioning import (
    FirstConnectionRegistration,
    ProvisioningTopics,
    parse_provisioning_topic,
    provisioning_service_of,
)
from .shadow import MAX_IN_FLIGHT, ShadowTopics, shadow_service_of

__all__ = [
    "MAX_IN_FLIGHT",
    "FirstConnectionRegistration",
    "JobsTopics",
    "ProvisioningTopics",
    "ShadowTopics",
    "job_service_of",
    "parse_jobs_topic",
    "parse_provisioning_topic",
    "provisioning_service_of",
    "shadow_service_of",
]
