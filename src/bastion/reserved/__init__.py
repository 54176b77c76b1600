"""Reserved-topic services on the broker (``$aws/things/…``): front doors that translate
MQTT requests on AWS IoT's reserved topics into service calls and publish the answers.
Each is handed its service from :class:`bastion.services.Services` (the REST API calls the
same ones) and announces the service's changes it receives from the bus.

* :class:`ShadowTopics` — the Device Shadow service's topics
  (``$aws/things/<thing>/shadow[/name/<shadow>]/get|update|delete``).
* :class:`JobsTopics` — the Jobs service's topics (``$aws/things/<thing>/jobs/get``,
  ``start-next``, ``<jobId>/get``, ``<jobId>/update``; notifications on ``notify`` and
  ``notify-next``).
* :class:`ProvisioningTopics` — fleet provisioning (``$aws/certificates/create…``,
  ``$aws/provisioning-templates/<name>/provision/…``); :class:`FirstConnectionRegistration`
  — JITP/JITR on first connection.
* :class:`StreamsTopics` — MQTT-based file delivery
  (``$aws/things/<thing>/streams/<streamId>/get|describe/<json|cbor>``).
* :mod:`.defender` — Device Defender metrics reports, the cloud-side metric sampler and
  the detect loop.
"""

from __future__ import annotations

from .jobs import JobsRequestServed, JobsTopics, parse_jobs_topic
from .provisioning import (
    FirstConnectionRegistration,
    ProvisioningTopics,
    parse_provisioning_topic,
)
from .shadow import MAX_IN_FLIGHT, ShadowTopics
from .streams import StreamsTopics, parse_streams_topic

__all__ = [
    "MAX_IN_FLIGHT",
    "FirstConnectionRegistration",
    "JobsRequestServed",
    "JobsTopics",
    "ProvisioningTopics",
    "ShadowTopics",
    "StreamsTopics",
    "parse_jobs_topic",
    "parse_provisioning_topic",
    "parse_streams_topic",
]
