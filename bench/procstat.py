"""CPU time and resident memory of process trees, read from /proc (Linux only).

A broker may fork workers, so every figure here covers a process and its descendants.
Memory is VmRSS summed over the tree: for a single process that is its resident set;
for a forking broker it over-counts pages the processes share.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """CPU seconds (user + system) and resident bytes of a set of processes at one instant."""

    cpu_seconds: float
    rss_bytes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` followed by every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, [])]
        tree.extend(frontier)
    return tree


def trees(pids: int | Sequence[int] | None) -> list[int] | None:
    """Every process of the trees rooted at ``pids`` (one broker, or the nodes of a
    cluster), or ``None`` when there is no pid."""
    if pids is None:
        return None
    roots = [pids] if isinstance(pids, int) else list(pids)
    out: list[int] = []
    for root in roots:
        out.extend(p for p in descendants(root) if p not in out)
    return out


def pid_of(command: str) -> int | None:
    """The pid of the root process named ``command`` (``nats-server``, or ``postgres``'s
    postmaster, whose backends are its children: system services the bench only
    watches), or ``None`` if there is none, or several unrelated ones."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8", errors="replace") as f:
                name = f.read().strip()
        except OSError:
            continue
        fields = _stat_fields(int(entry)) if name == command[:15] else None
        if fields is not None:
            found[int(entry)] = int(fields[1])
    roots = [pid for pid, parent in found.items() if parent not in found]
    return roots[0] if len(roots) == 1 else None


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (any address), or ``None`` if
    there is none or its file descriptors cannot be read (another user's process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except (OSError, StopIteration):
            continue
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds consumed so far by ``pids`` (dead ones count as 0)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICKS_PER_SECOND


def rss_bytes(pids: list[int]) -> int:
    """Sum of VmRSS over ``pids`` (dead ones count as 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def sample_tree(pid: int | None) -> ProcSample | None:
    """CPU and RSS of ``pid`` and its descendants, or ``None`` when there is no pid."""
    if pid is None:
        return None
    tree = descendants(pid)
    return ProcSample(cpu_seconds(tree), rss_bytes(tree))


def sample_pids(pids: list[int]) -> ProcSample:
    """CPU and RSS of exactly ``pids`` (used for the generator's own workers)."""
    return ProcSample(cpu_seconds(pids), rss_bytes(pids))


def fd_limit(pid: int) -> int | None:
    """The soft RLIMIT_NOFILE of ``pid`` (``None`` if unreadable or unlimited)."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line.split()[3]
                    return int(soft) if soft.isdigit() else None
    except OSError:
        return None
    return None


def mem_available_bytes() -> int:
    """MemAvailable from /proc/meminfo: what can still be allocated without swapping."""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds spent busy (not idle, not waiting for I/O) by all cores since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    busy = sum(ticks[:8]) - idle  # user..steal; guest time is already counted in user
    return busy / _TICKS_PER_SECOND


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def machine_info() -> dict[str, object]:
    """CPU model, core count, memory and kernel, for the results file."""
    info: dict[str, object] = {"cpus": os.cpu_count(), "kernel": os.uname().release}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            info["mem_total_kib"] = int(f.readline().split()[1])
    except OSError:
        pass
    return info


def filesystem(path: str) -> str:
    """``"<type> <device> on <mount point>"`` of the filesystem holding ``path``, from
    /proc/self/mounts (the durability run writes its brokers' data there)."""
    real = os.path.realpath(path)
    best: tuple[str, str, str] = ("?", "?", "")
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                device, mount, kind = line.split()[:3]
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[2]):
                    best = (kind, device, mount)
    except OSError:
        pass
    return f"{best[0]} {best[1]} on {best[2] or '?'}"
