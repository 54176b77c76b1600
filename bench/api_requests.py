"""Control-plane API requests per second through boto3: CreateThing and DescribeThing.

Starts a fresh ``bastion serve`` (HTTPS API with SigV4, the trail on) on free ports, then
drives it with boto3 from 1 and from 4 threads. Prints figures; asserts nothing.

    .venv/bin/python bench/api_requests.py [--count 500]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

BASTION = [sys.executable, "-m", "bastion"]


def start(data: Path) -> tuple[subprocess.Popen[str], str, str, str]:
    init = subprocess.run([*BASTION, "init", "--data-dir", str(data)], capture_output=True,
                          text=True, check=True)
    key = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", init.stdout)
    if not key or not secret:
        raise SystemExit(f"bastion init printed no access key:\n{init.stdout}")
    proc = subprocess.Popen([*BASTION, "serve", "--data-dir", str(data), "--host", "127.0.0.1",
                             "--mqtt-port", "0", "--api-port", "0", "--log-level", "WARN"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        found = re.search(r"api\s+(https://\S+)", line)
        if found:
            url = found.group(1)
        if line.startswith("Stop with"):
            break
    if url is None:
        proc.kill()
        raise SystemExit("bastion serve printed no API address")
    return proc, url, key.group(1), secret.group(1)


def client(url: str, key: str, secret: str, ca: Path):  # type: ignore[no-untyped-def]
    return boto3.client("iot", endpoint_url=url, region_name="us-east-1", verify=str(ca),
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def rate(label: str, threads: int, count: int, call) -> None:  # type: ignore[no-untyped-def]
    per = count // threads
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per):
                call(t, i)
        except Exception as exc:  # noqa: BLE001 - counted and reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start_time = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start_time
    status = f"  ({len(errors)} errors: {errors[0]!r})" if errors else ""
    print(f"{label:<28} {threads} thread(s): {per * threads / elapsed:8.0f} req/s{status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, url, key, secret = start(data)
        try:
            ca = data / "ca" / "root-ca.cert.pem"
            clients = [client(url, key, secret, ca) for _ in range(4)]
            clients[0].list_things()  # warm up TLS, models, the store
            for threads in (1, 4):
                rate("CreateThing", threads, args.count,
                     lambda t, i, n=threads: clients[t].create_thing(
                         thingName=f"bench-{n}-{t}-{i}"))
                rate("DescribeThing", threads, args.count,
                     lambda t, i, n=threads: clients[t].describe_thing(
                         thingName=f"bench-{n}-{t}-{i % 50}"))
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
