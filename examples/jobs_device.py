"""The AWS IoT Jobs side of the example devices, with AWS's device SDK (``awsiotsdk``):
connect with mutual TLS, take the next job (StartNextPendingJobExecution, waiting once for
``notify-next``), report its outcome (UpdateJobExecution, waiting for Bastion's answer).
Used by ``ota_mqtt_device.py`` and ``upload_logs.py``.
"""

from __future__ import annotations

import argparse
import queue
from pathlib import Path
from typing import Any

from awscrt import mqtt
from awsiot import iotjobs, mqtt_connection_builder

QOS1 = mqtt.QoS.AT_LEAST_ONCE


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every example device takes to connect (see :meth:`JobsDevice.connect`)."""
    parser.add_argument("--endpoint", default="localhost")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--cert", required=True, type=Path,
                        help="the device certificate (PEM)")
    parser.add_argument("--key", required=True, type=Path, help="the device private key (PEM)")
    parser.add_argument("--root-ca", required=True, type=Path,
                        help="the CA of Bastion's server certificate (MQTT and HTTPS)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for each answer")


class JobsDevice:
    """One connection of the device (mutual TLS, client id = thing name), with the SDK's
    jobs client."""

    def __init__(self, *, endpoint: str, port: int, thing_name: str, cert: Path, key: Path,
                 root_ca: Path, timeout: float = 10.0) -> None:
        self.thing_name = thing_name
        self.timeout = timeout
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=endpoint, port=port, ca_filepath=str(root_ca), cert_filepath=str(cert),
            pri_key_filepath=str(key), client_id=thing_name, clean_session=True,
            keep_alive_secs=30)
        self.connection.connect().result(timeout)
        self.jobs = iotjobs.IotJobsClient(self.connection)
        self._answers: queue.Queue[Any] = queue.Queue()
        self._events: queue.Queue[Any] = queue.Queue()
        thing = thing_name
        self._subscribe(self.jobs.subscribe_to_next_job_execution_changed_events,
                        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                        self._events.put)
        for subscribe in (self.jobs.subscribe_to_start_next_pending_job_execution_accepted,
                          self.jobs.subscribe_to_start_next_pending_job_execution_rejected):
            self._subscribe(subscribe, iotjobs.StartNextPendingJobExecutionSubscriptionRequest(
                thing_name=thing), self._answers.put)

    @classmethod
    def connect(cls, args: argparse.Namespace) -> JobsDevice:
        """The device the options of :func:`add_connection_arguments` describe."""
        return cls(endpoint=args.endpoint, port=args.port, thing_name=args.thing,
                   cert=args.cert, key=args.key, root_ca=args.root_ca, timeout=args.timeout)

    def _subscribe(self, subscribe: Any, request: Any, callback: Any) -> None:
        future, _ = subscribe(request, QOS1, callback)
        future.result(self.timeout)

    def next_job(self) -> Any:
        """StartNextPendingJobExecution, waiting once for a job to be announced; the
        execution, or ``None``."""
        for _ in range(2):
            self.jobs.publish_start_next_pending_job_execution(
                iotjobs.StartNextPendingJobExecutionRequest(thing_name=self.thing_name),
                QOS1).result(self.timeout)
            try:
                answer = self._answers.get(timeout=self.timeout)
                execution = getattr(answer, "execution", None)
                if execution is not None:
                    return execution
                self._events.get(timeout=self.timeout)
            except queue.Empty:
                return None
        return None

    def report(self, job_id: str, status: str, details: dict[str, str]) -> None:
        """UpdateJobExecution, waiting for Bastion's answer."""
        done: queue.Queue[Any] = queue.Queue()
        request = iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=self.thing_name,
                                                                job_id=job_id)
        self._subscribe(self.jobs.subscribe_to_update_job_execution_accepted, request, done.put)
        self._subscribe(self.jobs.subscribe_to_update_job_execution_rejected, request, done.put)
        self.jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=self.thing_name, job_id=job_id, status=status,
            status_details=details), QOS1).result(self.timeout)
        answer = done.get(timeout=self.timeout)
        if getattr(answer, "code", None) is not None:  # an iotjobs.RejectedError
            raise RuntimeError(f"the job update was rejected: {answer.message}")

    def close(self) -> None:
        self.connection.disconnect().result(self.timeout)
