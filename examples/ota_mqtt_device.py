"""A device that installs signed OTA updates from Bastion over MQTT streams, with AWS's
device SDK (``awsiotsdk``) — and refuses unsigned, tampered, foreign or revoked ones.

What it does, once per job (AWS IoT Jobs and MQTT-based file delivery, mutual TLS):

1. asks for its next job (StartNextPendingJobExecution) and takes an OTA job: a
   document with ``afr_ota`` whose ``protocols`` hold ``MQTT`` and whose ``streamname``
   names the stream;
2. asks the stream for its version and files
   (``$aws/things/<thing>/streams/<streamId>/describe/cbor`` → ``…/description/cbor``);
3. for every file of the job: reads it block by block
   (``…/get/cbor`` → one ``…/data/cbor`` message per block, CBOR as FreeRTOS's OTA agent
   does), asking each time for the blocks still missing with a bitmap and the stream's
   version, so a block lost on the way is asked for again and a stream changed under
   it is noticed (``VersionMismatch``);
4. checks each file exactly as ``ota_device.py`` does (``ota_verify.py``: size, a
   signature, a signing certificate issued by the code-signing CA it **pins** — of the
   one signing profile it expects, with ``--signing-profile`` — and the signature over
   the bytes; and, with ``--role-alias``, ``--credentials-endpoint`` and
   ``--signer-endpoint``, that AWS Signer has not revoked the signature since);
5. "installs" the files (writes them to ``--install-dir``) only when all of them passed,
   and reports the job ``SUCCEEDED``; otherwise ``FAILED`` with the reason in
   ``statusDetails.reason``.

Run it against ``make run`` (a thing with a certificate and a policy allowing its own
``$aws/things/<thing>/*`` topics, as ``bastion device create`` attaches)::

    python examples/ota_mqtt_device.py --thing my-device \\
        --cert my-device.cert.pem --key my-device.key.pem \\
        --root-ca bastion-data/ca/root-ca.cert.pem \\
        --code-signing-ca bastion-data/ca/code-signing-ca.cert.pem \\
        --signing-profile fw_prod

Exit status: 0 when the job succeeded, 1 when it failed, 2 when no job came.
Needs ``awsiotsdk``, ``cbor2`` and ``cryptography``; nothing of Bastion (the jobs client
is ``jobs_device.py`` beside it).
"""

from __future__ import annotations

import argparse
import queue
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cbor2
from awscrt import mqtt
from cryptography import x509
from jobs_device import JobsDevice, add_connection_arguments
from ota_verify import (
    MAX_FILE_BYTES,
    Refused,
    RevocationCheck,
    add_revocation_arguments,
    install,
    ota_files,
    revocation_check_from,
    verify_file,
)

QOS1 = mqtt.QoS.AT_LEAST_ONCE
BLOCK_SIZE = 4096
BLOCKS_PER_REQUEST = 32  # 128 KB of 4 KB blocks: what one request may bring
ROUNDS_WITHOUT_PROGRESS = 3


class StreamReader:
    """MQTT-based file delivery over the SDK's connection: describe a stream, read files.

    :param timeout: seconds to wait for each answer.
    """

    def __init__(self, connection: mqtt.Connection, thing_name: str, stream_id: str, *,
                 timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._base = f"$aws/things/{thing_name}/streams/{stream_id}"
        self._answers: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        for answer in ("description", "data", "rejected"):
            future, _ = connection.subscribe(f"{self._base}/{answer}/cbor", QOS1,
                                             self._on_answer)
            future.result(timeout)

    def _on_answer(self, topic: str, payload: bytes, **_: Any) -> None:
        try:
            document = cbor2.loads(payload)
        except (ValueError, cbor2.CBORDecodeError):
            return
        if isinstance(document, dict):
            self._answers.put((topic.rsplit("/", 2)[1], document))

    def _ask(self, request: str, document: dict[str, Any]) -> None:
        self._connection.publish(f"{self._base}/{request}/cbor", cbor2.dumps(document),
                                 QOS1)[0].result(self._timeout)

    def _answer(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """The next answer to the request ``token`` (``None``: none came in time)."""
        while True:
            try:
                kind, document = self._answers.get(timeout=self._timeout)
            except queue.Empty:
                return None
            if document.get("c") != token:
                continue  # the late answer of an earlier request
            if kind == "rejected":
                raise Refused(f"the stream refused: {document.get('o')}: {document.get('m')}")
            return kind, document

    def describe(self) -> tuple[int, dict[int, int]]:
        """The stream's version and its files' sizes by file id."""
        token = uuid.uuid4().hex
        self._ask("describe", {"c": token})
        answer = self._answer(token)
        if answer is None or answer[0] != "description":
            raise Refused("the stream did not describe itself")
        document = answer[1]
        return int(document["s"]), {int(item["f"]): int(item["z"]) for item in document["r"]}

    def read(self, file_id: int, size: int, version: int, *,
             block_size: int = BLOCK_SIZE) -> bytes:
        """File ``file_id`` (``size`` bytes) of stream version ``version``, whole."""
        if size > MAX_FILE_BYTES:
            raise Refused("the file is too large")
        count = max(1, -(-size // block_size))
        blocks: dict[int, bytes] = {}
        stalled = 0
        while len(blocks) < count:
            wanted = [block for block in range(count) if block not in blocks]
            wanted = wanted[:BLOCKS_PER_REQUEST]
            offset = wanted[0]
            bitmap = bytearray((wanted[-1] - offset) // 8 + 1)
            for block in wanted:
                bitmap[(block - offset) // 8] |= 1 << ((block - offset) % 8)
            token = uuid.uuid4().hex[:16]
            self._ask("get", {"c": token, "s": version, "f": file_id, "l": block_size,
                              "o": offset, "n": BLOCKS_PER_REQUEST, "b": bytes(bitmap)})
            before = len(blocks)
            for _ in wanted:
                answer = self._answer(token)
                if answer is None:
                    break
                index, data = answer[1].get("i"), answer[1].get("p")
                if answer[1].get("f") == file_id and isinstance(index, int) \
                        and 0 <= index < count and isinstance(data, bytes) \
                        and len(data) == min(block_size, size - index * block_size):
                    blocks[index] = data
            stalled = 0 if len(blocks) > before else stalled + 1
            if stalled >= ROUNDS_WITHOUT_PROGRESS:
                raise Refused(f"the stream stopped sending (file {file_id}: "
                              f"{len(blocks)} of {count} blocks)")
        return b"".join(blocks[block] for block in range(count))


def receive_and_install(device: JobsDevice, document: dict[str, Any],
                        pinned_ca: x509.Certificate, install_dir: Path,
                        signing_profile: str | None = None,
                        block_size: int = BLOCK_SIZE,
                        revocations: RevocationCheck | None = None) -> list[Path]:
    """Read every file of the job from its stream, check them all, then install them."""
    entries = ota_files(document)
    ota = document["afr_ota"]
    stream_id = ota.get("streamname")
    if "MQTT" not in ota.get("protocols", []) or not isinstance(stream_id, str):
        raise Refused("no MQTT stream in the job")
    reader = StreamReader(device.connection, device.thing_name, stream_id,
                          timeout=device.timeout)
    version, sizes = reader.describe()
    checked: list[tuple[dict[str, Any], bytes]] = []
    for entry in entries:
        file_id = entry.get("fileid")
        if not isinstance(file_id, int) or file_id not in sizes:
            raise Refused(f"the stream has no file {file_id}")
        data = reader.read(file_id, sizes[file_id], version, block_size=block_size)
        verify_file(entry, data, pinned_ca, signing_profile, revocations)
        checked.append((entry, data))
    return install(checked, install_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_connection_arguments(parser)
    parser.add_argument("--code-signing-ca", required=True, type=Path,
                        help="the code-signing CA the device pins (PEM)")
    parser.add_argument("--signing-profile",
                        help="accept only files signed by this profile (its certificate's CN)")
    parser.add_argument("--install-dir", default="ota-installed", type=Path)
    parser.add_argument("--block-size", type=int, default=BLOCK_SIZE)
    add_revocation_arguments(parser)
    args = parser.parse_args(argv)
    revocations = revocation_check_from(args)

    pinned_ca = x509.load_pem_x509_certificate(args.code_signing_ca.read_bytes())
    device = JobsDevice.connect(args)
    try:
        execution = device.next_job()
        if execution is None:
            print("no job", file=sys.stderr)
            return 2
        job_id = execution.job_id
        try:
            installed = receive_and_install(device, execution.job_document or {}, pinned_ca,
                                            args.install_dir, args.signing_profile,
                                            args.block_size, revocations)
        except Refused as refused:
            print(f"{job_id}: FAILED: {refused}", file=sys.stderr)
            device.report(job_id, "FAILED", {"reason": str(refused)})
            return 1
        names = ", ".join(path.name for path in installed)
        print(f"{job_id}: SUCCEEDED: installed {names}")
        device.report(job_id, "SUCCEEDED", {"installed": names})
        return 0
    finally:
        device.close()


if __name__ == "__main__":
    sys.exit(main())
