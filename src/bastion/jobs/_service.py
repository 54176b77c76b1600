"""JobService: the one implementation both doors (MQTT reserved topics, REST) call."""

from __future__ import annotations

from ._control import ControlOperations
from ._device import DeviceOperations
from ._upkeep import Upkeep


class JobService(ControlOperations, DeviceOperations, Upkeep):
    """Jobs, job executions and job templates, with AWS IoT's rules and errors.

    Construct with ``JobService(store, registry, clock, publish_event, documents=…)``:

    :param store: an open :class:`~bastion.store.Store`.
    :param registry: the registry service (things, groups; its account names the ARNs).
    :param clock: the current time (timers are judged by it); tests pass one they move by
        hand.
    :param publish_event: receives :class:`~bastion.jobs.JobExecutionsChanged` and
        :class:`~bastion.jobs.NextJobExecutionChanged` after each commit.
    :param documents: a :class:`~bastion.jobs.JobDocumentSource` (``documentSource``,
        presigned-URL placeholders); ``None``: inline documents only.

    Every method raises :class:`TypeError` for arguments of the wrong type and a
    :class:`~bastion.jobs.JobsError` for requests AWS would refuse. Methods are blocking
    and thread-safe (each runs its own transaction).
    """

    __slots__ = ()
