"""The brokers under test: start each one fresh, find its port, stop it for sure.

* :class:`BastionBroker` runs ``bastion serve`` on a data directory prepared once per
  bench run by :class:`BastionInstall` (``bastion init`` + ``bastion device create``);
  the load clients use the device certificate Bastion issued.
* :class:`MosquittoBroker` runs a private ``mosquitto -c`` with a mutual-TLS listener on
  a free loopback port, certificates from :class:`BenchPki` (a throw-away CA made here),
  and an ACL file so that it checks every publish and subscribe, as Bastion's policies do.
* :class:`SystemMosquitto` is the machine's own Mosquitto on 127.0.0.1:1883 (plain TCP),
  a reference only: the bench never starts, stops or reconfigures it.
* :class:`DurableBastion` and :class:`DurableMosquitto` are the same two brokers set up to
  keep what they acknowledge (Bastion's ``[sessions]``; Mosquitto's ``persistence``), for
  the durability scenario, which kills them with SIGKILL (:meth:`kill`) and starts them
  again on the same data (:meth:`restart`).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import procstat
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from loadgen import Endpoint, TlsFiles

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class BrokerError(Exception):
    """A broker could not be prepared or started; the message says why (log tail included)."""


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True, slots=True)
class BenchPki:
    """A throw-away CA with one server and one client certificate (ECDSA P-256)."""

    server: TlsFiles
    """The server's chain and key; its ``ca_file`` verifies clients."""
    client: TlsFiles
    """The client's chain and key; its ``ca_file`` verifies the server."""

    @classmethod
    def create(cls, directory: Path) -> BenchPki:
        """Write ``ca.pem``, ``server.{cert,key}.pem`` and ``client.{cert,key}.pem``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bastion bench CA")])
        now = datetime.datetime.now(datetime.UTC)
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

        def leaf(name: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> TlsFiles:
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            cert = (
                _builder(subject, ca_name, key.public_key(), now)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            cert_file, key_file = directory / f"{name}.cert.pem", directory / f"{name}.key.pem"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            return TlsFiles(str(ca_file), str(cert_file), str(key_file))

        server = leaf(
            "server",
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        client = leaf("bench-device", ExtendedKeyUsageOID.CLIENT_AUTH, [])
        return cls(server=server, client=client)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def describe_certificate(path: str) -> str:
    """``"EC P-256"``, ``"RSA 2048"``… for the key in the certificate at ``path``."""
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__.removesuffix("PublicKey").removeprefix("_")


# --------------------------------------------------------------- broker processes


class _Process:
    """A broker child process whose merged stdout/stderr is kept in a log file.

    A reader thread copies every line to the log and to a queue, so the broker never
    blocks on a full pipe and the bench can wait for a given line with a deadline.
    The process gets its own session: a Ctrl-C in the terminal reaches only the bench,
    which then stops the broker itself.
    """

    def __init__(self, argv: list[str], log_file: Path, env: dict[str, str] | None = None):
        self.log_file = log_file
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._watching = True  # lines go to the queue only until startup is confirmed
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._copy_output, daemon=True)
        self._reader.start()

    def _copy_output(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_file, "ab") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                if self._watching:
                    self._lines.put(raw.decode(errors="replace"))
        self._lines.put(None)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Return the first output line matching ``pattern``.

        :raises BrokerError: if the process exits or the time runs out first.
        """
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self.proc.wait(timeout=_STOP_TIMEOUT)
                raise BrokerError(f"exited with status {self.proc.returncode}\n{self.log_tail()}")
            if match := pattern.search(line):
                self._watching = False
                return match
        raise BrokerError(
            f"no line matching {pattern.pattern!r} in {timeout:.0f} s\n{self.log_tail()}"
        )

    def wait_for_port(self, port: int, timeout: float) -> None:
        """Return once 127.0.0.1:``port`` accepts TCP connections.

        :raises BrokerError: if the process exits or the time runs out first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise BrokerError(f"exited with status {self.proc.returncode}\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise BrokerError(f"port {port} not open after {timeout:.0f} s\n{self.log_tail()}")

    def log_tail(self, lines: int = 8, width: int = 200) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(
            "    | " + (line if len(line) <= width else line[: width - 3] + "...")
            for line in text[-lines:]
        )

    def kill(self) -> None:
        """SIGKILL to the broker's process group (its own session, so only the broker and
        whatever it forked), as a crash would end it: nothing gets to flush or save."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._reader.join(timeout=2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; always reaps the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)


@dataclass
class BastionInstall:
    """A Bastion data directory plus one device certificate shared by all load clients."""

    executable: str
    data_dir: Path
    tls: TlsFiles
    server_key_type: str
    provisioning: str
    """How the device was registered, for the results file."""

    @classmethod
    def create(cls, workdir: Path) -> BastionInstall:
        """Run ``bastion init``, then register the bench device with the bench policy
        (``bastion_setup.py``); if that script cannot, fall back to ``bastion device
        create``, whose least-privilege policy may refuse the load's client ids.

        :raises BrokerError: if the CLI is missing or no way of registering worked.
        """
        executable = str(Path(sys.executable).with_name("bastion"))
        if not Path(executable).exists():
            raise BrokerError(f"{executable} not found: is bastion installed in this venv?")
        data_dir, out = workdir / "bastion-data", workdir / "bastion-device"
        _run_setup_step([executable, "init", "--data-dir", str(data_dir)])
        setup = [sys.executable, str(Path(__file__).with_name("bastion_setup.py"))]
        try:
            _run_setup_step([*setup, "--data-dir", str(data_dir), "--out", str(out)])
            provisioning = "bench/bastion_setup.py: bench policy (client bench-*, topics bench/*)"
            # Mosquitto's limits here never drop within a run; Bastion gets the same.
            limits = json.loads(_run_setup_step(
                [*setup, "--data-dir", str(data_dir), "--no-drop"]).strip().splitlines()[-1])
            provisioning += "; [limits] " + ", ".join(
                f"{k} = {v}" for k, v in limits["limits"].items())
        except BrokerError as exc:
            _run_setup_step(
                [
                    executable,
                    "device",
                    "create",
                    "bench-device",
                    "--data-dir",
                    str(data_dir),
                    "--out",
                    str(out),
                    "--overwrite",
                ]
            )
            provisioning = f"bastion device create (bench policy failed: {_first_line(exc)})"
        tls = TlsFiles(
            ca_file=str(out / "root-ca.pem"),
            cert_file=str(out / "bench-device.cert.pem"),
            key_file=str(out / "bench-device.key.pem"),
        )
        for path in (tls.ca_file, tls.cert_file, tls.key_file):
            if not Path(path).exists():
                raise BrokerError(f"device registration did not write {path}")
        return cls(executable, data_dir, tls, describe_certificate(tls.cert_file), provisioning)


def _run_setup_step(argv: list[str], timeout: float = 120) -> str:
    """Run a setup command and return its standard output.

    :raises BrokerError: if the command fails; the message holds the end of its output.
    :raises subprocess.TimeoutExpired: if it runs longer than ``timeout`` seconds.
    """
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()
        raise BrokerError(
            f"`{' '.join(Path(a).name for a in argv[:3])}` exited with {done.returncode}:\n"
            + output[-2000:]
        )
    return done.stdout


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


_MQTTS_URL = re.compile(r"mqtts://(\S+?):(\d+)")


class BastionBroker:
    """``bastion serve`` on a free port, started fresh by :meth:`start`."""

    label = "Bastion"

    def __init__(self, install: BastionInstall, workdir: Path) -> None:
        self._install = install
        self._workdir = workdir
        self._process: _Process | None = None
        self._last_log: _Process | None = None
        self.runs = 0
        self.start_timeout = _START_TIMEOUT
        """Seconds ``bastion serve`` has to print its URL (a data dir with a large fleet
        to sweep at start needs longer)."""

    def start(self) -> Endpoint:
        """:raises BrokerError: if the broker exits or prints no ``mqtts://`` URL in time."""
        self.runs += 1
        return self._serve(self._install.data_dir, f"bastion-{self.runs}.log")

    def _serve(self, data_dir: Path, log_name: str, *extra: str) -> Endpoint:
        self._process = _Process(
            [
                self._install.executable,
                "serve",
                "--data-dir",
                str(data_dir),
                "--mqtt-port",
                "0",
                "--host",
                "127.0.0.1",
                *extra,
            ],
            self._workdir / log_name,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the URL line must not sit in a buffer
        )
        try:
            match = self._process.wait_for_line(_MQTTS_URL, self.start_timeout)
        except BrokerError:
            self.stop()
            raise
        return Endpoint("127.0.0.1", int(match.group(2)), self._install.tls)

    @property
    def pid(self) -> int | None:
        return self._process.proc.pid if self._process else None

    def log_tail(self) -> str:
        """The last lines the current (or last) broker process printed."""
        return self._last_log.log_tail() if self._last_log else ""

    def stop(self) -> None:
        if self._process is not None:
            self._last_log = self._process
            self._process.stop()
            self._process = None


_MOSQUITTO_CONF = """\
# Written by bench/brokers.py for one benchmark run.
per_listener_settings false
{persistence}
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages false
allow_anonymous false
acl_file {acl}
max_inflight_messages 100
max_queued_messages {max_queued}
max_queued_bytes 0
set_tcp_nodelay {nodelay}

listener {port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
require_certificate true
use_identity_as_username true
"""

# `pattern` lines apply to every authenticated client (%c = its client id).
_MOSQUITTO_ACL = """\
pattern readwrite things/%c/#
pattern readwrite bench/#
"""


def free_port() -> int:
    """A port the kernel considers free on 127.0.0.1 (from the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MosquittoBroker:
    """A private ``mosquitto`` with a mutual-TLS listener, started fresh by :meth:`start`."""

    label = "Mosquitto mTLS"
    max_queued = 1_000_000
    """``max_queued_messages``: so that it never drops (the default 1000 does)."""

    def __init__(self, pki: BenchPki, workdir: Path, *, nodelay: bool = True) -> None:
        self._pki = pki
        self.nodelay = nodelay
        """``set_tcp_nodelay``: true sends every packet at once (one TCP segment per
        message on loopback, as asyncio's sockets do); false, Mosquitto's default, lets
        Nagle's algorithm coalesce what it writes while earlier data is unacknowledged."""
        self._workdir = workdir
        self._dir = workdir / "mosquitto"
        self._process: _Process | None = None
        self._last_log: _Process | None = None
        self._port = 0
        self._conf = self._dir / "mosquitto.conf"
        self.runs = 0
        self.version = _mosquitto_version()

    def start(self) -> Endpoint:
        """:raises BrokerError: if mosquitto is missing, exits, or never reports running."""
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(executable).exists():
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        self.runs += 1
        self._dir.mkdir(exist_ok=True)
        port = free_port()
        acl = self._dir / "acl"
        acl.write_text(_MOSQUITTO_ACL)
        conf = self._dir / "mosquitto.conf"
        server = self._pki.server
        conf.write_text(
            _MOSQUITTO_CONF.format(
                persistence=self._persistence(),
                max_queued=self.max_queued,
                nodelay="true" if self.nodelay else "false",
                acl=acl,
                port=port,
                ca=server.ca_file,
                cert=server.cert_file,
                key=server.key_file,
            )
        )
        _readable_by_mosquitto(
            [self._dir, *map(Path, (server.ca_file, server.cert_file, server.key_file))],
            root=self._workdir,
        )
        self._port, self._conf = port, conf
        return self._launch(executable, f"run-{self.runs}.log")

    def _persistence(self) -> str:
        """The configuration's persistence lines."""
        return "persistence false"

    def _launch(self, executable: str, log_name: str) -> Endpoint:
        port = self._port
        self._process = _Process([executable, "-c", str(self._conf)], self._dir / log_name)
        try:
            # mosquitto block-buffers its log on a pipe, so readiness is probed, not read.
            self._process.wait_for_port(port, _START_TIMEOUT)
        except BrokerError:
            self.stop()
            raise
        return Endpoint("127.0.0.1", port, self._pki.client)

    @property
    def pid(self) -> int | None:
        return self._process.proc.pid if self._process else None

    def log_tail(self) -> str:
        """The last lines the current (or last) broker process printed."""
        return self._last_log.log_tail() if self._last_log else ""

    def stop(self) -> None:
        if self._process is not None:
            self._last_log = self._process
            self._process.stop()
            self._process = None


def _readable_by_mosquitto(paths: list[Path], root: Path) -> None:
    """Started as root, mosquitto drops to the ``mosquitto`` user before reading its files.

    Hands ``paths`` to that user and lets it traverse (not list) the directories between
    them and ``root`` (included).
    """
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in paths:
        os.chown(path, user.pw_uid, user.pw_gid)
        for parent in path.parents:
            if not parent.is_relative_to(root):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)


def _mosquitto_version() -> str:
    try:
        out = subprocess.run(
            ["mosquitto", "-h"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"mosquitto version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


class SystemMosquitto:
    """The machine's Mosquitto on 127.0.0.1:1883, plain TCP; never started or stopped here."""

    label = "sys Mosquitto TCP"
    PORT = 1883

    def __init__(self, own_pids: set[int] | None = None) -> None:
        self._own = own_pids or set()
        self.pid: int | None = None

    def start(self) -> Endpoint:
        """:raises BrokerError: if nothing accepts connections on 127.0.0.1:1883."""
        try:
            with socket.create_connection(("127.0.0.1", self.PORT), timeout=2):
                pass
        except OSError as exc:
            raise BrokerError(f"no broker on 127.0.0.1:{self.PORT}: {exc}") from None
        self.pid = _system_mosquitto_pid(self._own)
        return Endpoint("127.0.0.1", self.PORT, None)

    def log_tail(self) -> str:
        """Not ours: its log is wherever its configuration sends it."""
        return ""

    def stop(self) -> None:
        """Nothing to do: it is not ours."""


def _system_mosquitto_pid(exclude: set[int]) -> int | None:
    """The pid of the one ``mosquitto`` process not started by this bench, if there is one."""
    ours = set(procstat.descendants(os.getpid())) | exclude
    candidates = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if os.path.basename(argv0) == b"mosquitto":
            candidates.append(int(entry))
    return candidates[0] if len(candidates) == 1 else None


# ------------------------------------------------------------- durable brokers

DURABLE_MAX_QUEUED = 10_000_000
"""Queued messages an offline session may hold, on both brokers: far more than a run
queues (Bastion's default is AWS's 1,000, which would drop most of a durability run, and
a drop is not what the run measures)."""


class DurableBastion(BastionBroker):
    """``bastion serve`` with durable sessions, for the durability scenario.

    Every :meth:`start` begins from a copy of the data directory as it was right after
    registration (taken when this object is made, before any broker ran on it), so no
    session of an earlier run is left; :meth:`restart` serves the same copy again.
    Durability is switched on by ``bastion_setup.py --durable``, which writes
    ``[sessions] durable = true`` and ``synchronous`` only if this Bastion's config loader
    knows them (an older one refuses an unknown section), and raises
    ``[limits] max_queued_messages``.
    """

    def __init__(self, install: BastionInstall, workdir: Path, synchronous: str) -> None:
        super().__init__(install, workdir)
        self._pristine = workdir / "bastion-durable-pristine"
        shutil.copytree(install.data_dir, self._pristine)
        self._synchronous = synchronous
        self._data_dir: Path | None = None
        self.settings = "not configured yet"

    def start(self) -> Endpoint:
        """:raises BrokerError: if configuring fails, or the broker does not start."""
        self.runs += 1
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)  # the last run's, done with
        self._data_dir = self._workdir / f"bastion-durable-{self.runs}"
        shutil.copytree(self._pristine, self._data_dir)
        out = _run_setup_step(
            [
                sys.executable,
                str(Path(__file__).with_name("bastion_setup.py")),
                "--data-dir",
                str(self._data_dir),
                "--durable",
                self._synchronous,
                "--max-queued",
                str(DURABLE_MAX_QUEUED),
            ]
        )
        self.settings = _describe_durable(out)
        return self._serve(self._data_dir, f"bastion-durable-{self.runs}.log", "--api-port", "0")

    def restart(self) -> Endpoint:
        """Serve the same data directory again (on a new port).

        :raises BrokerError: if the broker does not start.
        """
        assert self._data_dir is not None, "restart() before start()"
        self.stop()
        return self._serve(
            self._data_dir, f"bastion-durable-{self.runs}-restarted.log", "--api-port", "0"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self._process is not None:
            self._last_log = self._process
            self._process.kill()
            self._process = None


def _describe_durable(setup_output: str) -> str:
    """What ``bastion_setup.py --durable`` set, in words, from its last line (JSON)."""
    lines = setup_output.strip().splitlines()
    try:
        done = json.loads(lines[-1])
    except (IndexError, ValueError):
        return f"unknown ({setup_output.strip()[-200:]!r})"
    limits = ", ".join(f"{k} = {v}" for k, v in (done.get("limits") or {}).items())
    limits = f"; [limits] {limits}" if limits else ""
    sessions = done.get("sessions")
    if sessions is None:
        return (
            "[sessions] unknown to this Bastion (no durable sessions yet): what it "
            "acknowledges lives in memory only" + limits
        )
    settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sessions.items())
    return f"[sessions] {settings or '(no keys known)'}{limits}"


class DurableMosquitto(MosquittoBroker):
    """The private Mosquitto with ``persistence true`` in a directory of its own.

    ``autosave_on_changes true`` makes ``autosave_interval`` a number of changes (messages
    queued, subscriptions, retained messages) instead of seconds. Mosquitto checks it once
    per pass of its main loop and then writes its whole in-memory database to
    ``mosquitto.db`` (to a new file, renamed over the old one), so ``autosave_interval 1``
    saves after every pass that changed anything: the only setting under which every
    message is saved soon after it is acknowledged. It is not saved *before*: the PUBACK
    is written while the pass handles the PUBLISH, the save comes at the end of the pass,
    so a kill in between loses what that pass acknowledged. Each save rewrites the whole
    queue, so the cost of a pass grows with the queue.
    """

    label = "Mosquitto mTLS"
    max_queued = DURABLE_MAX_QUEUED

    def __init__(
        self, pki: BenchPki, workdir: Path, autosave_interval: int, *, nodelay: bool = True
    ) -> None:
        super().__init__(pki, workdir, nodelay=nodelay)
        self._dir = workdir / "mosquitto-durable"
        self.autosave_interval = autosave_interval
        self._data: Path | None = None
        self.settings = (
            f"persistence true, autosave_on_changes true, autosave_interval {autosave_interval}"
            f"; max_queued_messages {DURABLE_MAX_QUEUED}"
        )

    def _persistence(self) -> str:
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)  # the last run's, done with
        self._data = self._dir / f"run-{self.runs}-data"
        self._data.mkdir(parents=True)
        _readable_by_mosquitto([self._data], root=self._workdir)  # it writes there too
        return (
            "persistence true\n"
            f"persistence_location {self._data}/\n"
            "persistence_file mosquitto.db\n"
            "autosave_on_changes true\n"
            f"autosave_interval {self.autosave_interval}"
        )

    def restart(self) -> Endpoint:
        """Start mosquitto again on the same configuration, port and persistence file.

        :raises BrokerError: if it does not start.
        """
        self.stop()
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return self._launch(executable, f"run-{self.runs}-restarted.log")

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self._process is not None:
            self._last_log = self._process
            self._process.kill()
            self._process = None
