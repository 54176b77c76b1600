"""Job documents kept outside the job (``documentSource``) and presigned-URL placeholders,
through a fake :class:`~bastion.jobs.JobDocumentSource`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bastion.jobs import (
    InvalidRequestError,
    JobService,
    NextJobExecutionChanged,
)
from bastion.registry import RegistryService
from bastion.store import Store
from support.clock import ManualClock

Things = Callable[..., list[str]]
PLACEHOLDER = "${aws:iot:s3-presigned-url:s3://bucket/fw.bin}"
DOC = json.dumps({"operation": "ota", "url": PLACEHOLDER})


class FakeDocuments:
    """Documents at ``s3://bucket/<name>``; placeholders become ``signed:<expiry>``."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.kept = {"s3://bucket/job.json": DOC}
        self.files = {"fw.bin"}

    def fetch_document(self, source: str) -> str:
        if not source.startswith("s3://"):
            raise ValueError(f"{source} is not a file URL")
        try:
            return self.kept[source]
        except KeyError:
            raise LookupError(f"nothing at {source}") from None

    def check_document(self, document: str) -> None:
        if "${aws:iot:s3-presigned-url:s3://bucket/missing}" in document:
            raise LookupError("File missing does not exist")

    def presign_document(self, document: str, expires_in_sec: int, *,
                         execution: tuple[str, str, int] | None = None) -> str:
        expiry: datetime = self.clock.now() + timedelta(seconds=expires_in_sec)
        return document.replace(PLACEHOLDER, f"signed:{expiry.isoformat()}")


@pytest.fixture
def service(store: Store, registry: RegistryService, clock: ManualClock,
            events: list[object]) -> JobService:
    return JobService(store, registry, clock, events.append, documents=FakeDocuments(clock))


def _url(document: str | None) -> str:
    assert document is not None
    return str(json.loads(document)["url"])


def test_document_source_and_presigned_placeholders(service: JobService, things: Things,
                                                    clock: ManualClock,
                                                    events: list[object]) -> None:
    [arn] = things("ota-1")
    job = service.create_job("ota", targets=[arn], document_source="s3://bucket/job.json",
                             presigned_url_config={"expiresInSec": 60})
    assert job.document_source == "s3://bucket/job.json"
    # Stored (and shown to the operator) with its placeholder.
    assert service.get_job_document("ota") == DOC
    # Every device-facing read presigns, valid expiresInSec from that moment.
    [next_event] = [e for e in events if isinstance(e, NextJobExecutionChanged)]
    assert next_event.execution is not None
    created_expiry = (clock.now() + timedelta(seconds=60)).isoformat()
    assert _url(next_event.execution.job_document) == f"signed:{created_expiry}"
    clock.advance(timedelta(minutes=10))
    started = service.start_next_pending_job_execution("ota-1")
    assert started is not None
    expected = f"signed:{(clock.now() + timedelta(seconds=60)).isoformat()}"
    assert _url(started.job_document) == expected
    described = service.describe_job_execution("ota", "ota-1", include_job_document=True)
    assert described is not None and _url(described.job_document) == expected
    updated = service.update_job_execution("ota", "ota-1", "SUCCEEDED")
    assert _url(updated.job_document) == expected


def test_the_default_lifetime_is_an_hour(service: JobService, things: Things,
                                        clock: ManualClock) -> None:
    [arn] = things("ota-2")
    service.create_job("ota-default", targets=[arn], document=DOC)
    started = service.start_next_pending_job_execution("ota-2")
    assert started is not None
    assert _url(started.job_document) == f"signed:{(clock.now() + timedelta(hours=1)).isoformat()}"


@pytest.mark.parametrize(("arguments", "message"), [
    pytest.param({"document_source": "https://example.com/doc"}, "not a file URL",
                 id="foreign-source"),
    pytest.param({"document_source": "s3://bucket/none.json"}, "nothing at", id="missing"),
    pytest.param({"document_source": ""}, "1 to 1350", id="empty"),
    pytest.param({"document": DOC, "document_source": "s3://bucket/job.json"}, "not both",
                 id="both"),
    pytest.param({"document": DOC.replace("fw.bin", "missing")}, "does not exist",
                 id="missing-placeholder-file"),
])
def test_refused_documents(service: JobService, things: Things,
                           arguments: dict[str, str], message: str) -> None:
    [arn] = things("ota-3")
    with pytest.raises(InvalidRequestError, match=message):
        service.create_job("refused", targets=[arn], **arguments)  # type: ignore[arg-type]


def test_templates_take_document_sources(service: JobService, things: Things,
                                         clock: ManualClock) -> None:
    template = service.create_job_template("ota-template", description="OTA",
                                           document_source="s3://bucket/job.json")
    assert (template.document, template.document_source) == (DOC, "s3://bucket/job.json")
    [arn] = things("ota-4")
    service.create_job("from-template", targets=[arn],
                       job_template_arn=template.job_template_arn)
    started = service.start_next_pending_job_execution("ota-4")
    assert started is not None and _url(started.job_document).startswith("signed:")
    with pytest.raises(InvalidRequestError, match="not both"):
        service.create_job_template("t2", description="d", job_arn=service.job_arn("ota"),
                                    document_source="s3://bucket/job.json")


def test_without_a_document_source_plug(jobs: JobService, things: Things) -> None:
    [arn] = things("ota-5")
    with pytest.raises(InvalidRequestError, match="not supported"):
        jobs.create_job("plain", targets=[arn], document_source="s3://bucket/job.json")
    jobs.create_job("plain", targets=[arn], document=DOC)
    started = jobs.start_next_pending_job_execution("ota-5")
    assert started is not None and _url(started.job_document) == PLACEHOLDER
