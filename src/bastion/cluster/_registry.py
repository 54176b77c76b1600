"""Who owns each client id in a cluster: a JetStream key-value bucket, and the handover.

Theory of operation
-------------------
Every node of a cluster shares one NATS (with JetStream) and one PostgreSQL. A client id
has at most one owner node: the one holding its session (live, or parked offline with
its queue). The bucket ``<name>_sessions`` maps the client id (encoded into a key NATS
accepts) to ``{"node": ...}``; every change is a compare-and-set on the key's revision,
so two nodes claiming at once cannot both win.

A CONNECT on node B for a client id owned by node A (:meth:`SessionRegistry.claim`):

1. B asks A, over the core NATS subject ``<name>.ctl.<A>.handover``, to hand the session
   over. A closes the live connection (MQTT 5: DISCONNECT 0x8E, as a takeover on one
   node), removes the session from its memory without forgetting what the store holds,
   waits until its journal has committed everything about it, and answers with where it
   was in the cluster's message stream when it let go (B delivers what came after);
2. B writes itself as the owner (compare-and-set on the revision it read first);
3. B reads the session back from the store into its own directory, and the CONNECT
   continues as on one node: the session is resumed (session present) when the
   certificate matches and the client did not ask for a clean start.

Never two owners: if A does not answer, B cannot tell a dead A from one cut off from
NATS (then NATS answers "no responders" too, once A's connection is gone) that still
serves the device on the other side of the partition. B therefore takes over only once
A's lease (its heartbeat in ``<name>_nodes``, ``[cluster] lease`` seconds) has run out, and
refuses the CONNECT until then (0x88; the device retries): a device whose node died
resumes on another within the lease. It resumes with what the store holds, which is
everything acknowledged (acknowledgements wait for the commit). A node that cannot
renew its lease for two thirds of it gives up every live session of its own accord
(``ClusterNode``), so by the time its lease is gone it holds none.

Every node also watches the bucket: a client id it holds that another node now owns is
closed and dropped from memory there and then (a lost handover request, a healed
partition).

When a session ends (expiry 0 at disconnect, expiry, revocation) and the node holds no
other for that client id, it deletes the key, again only if the key still names it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bastion.cluster")

HANDOVER_TIMEOUT = 1.0
"""Seconds a node waits for the previous owner to hand a session over."""


class ClusterUnavailable(Exception):
    """No client id can be claimed now: the cluster's NATS cannot be reached, or the node
    holding the session cannot be reached and may still be alive."""


Alive = Callable[[str], Awaitable[bool]]
"""Whether a node's lease is still running (see ``ClusterNode``)."""


def session_key(client_id: str) -> str:
    """The bucket key of ``client_id`` (NATS keys allow ``[-/_=.A-Za-z0-9]``)."""
    return "c." + base64.urlsafe_b64encode(client_id.encode()).decode().rstrip("=")


def client_of(key: str) -> str:
    """The client id of a bucket key (the inverse of :func:`session_key`)."""
    if not key.startswith("c."):
        raise ValueError(f"not a session key: {key!r}")
    raw = key[2:]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


@dataclass(frozen=True, slots=True)
class Owner:
    node: str
    position: int | None = None
    """Where the node was in the cluster's message stream when it handed the session over;
    None when it did not answer (dead, or cut off)."""


HandOver = Callable[[str], Awaitable[int]]
"""Give up a client id held here (close its connection, keep its stored state, wait for the
journal): what the previous owner does when another node claims it. Returns this node's
position in the message stream at the moment it gave the session up."""
Lost = Callable[[str, str], None]
"""A client id held here is now owned by another node (seen on the bucket): drop it."""


class SessionRegistry:
    """Client id → owner node, on a JetStream key-value bucket (see the module docstring).

    :param nc: a connected ``nats.aio.client.Client``.
    :param name: the cluster's name: the bucket is ``<name>_sessions``, the control
        subjects ``<name>.ctl.<node>.*``.
    """

    def __init__(self, nc: Any, name: str, node: str) -> None:
        self._nc = nc
        self._name = name
        self.node = node
        self._kv: Any = None
        self._subscription: Any = None
        self._watcher: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        self._hand_over: HandOver | None = None
        self._lost: Lost | None = None
        self._alive: Alive | None = None
        self._claimed: dict[str, int] = {}  # client id -> the revision of our last claim

    @property
    def bucket(self) -> str:
        return f"{self._name}_sessions"

    async def start(self, hand_over: HandOver, lost: Lost, alive: Alive) -> None:
        """Create (or open) the bucket, answer handover requests, watch the bucket."""
        from nats.js.api import KeyValueConfig

        self._hand_over, self._lost, self._alive = hand_over, lost, alive
        js = self._nc.jetstream()
        self._kv = await js.create_key_value(KeyValueConfig(bucket=self.bucket, history=1))
        self._subscription = await self._nc.subscribe(
            f"{self._name}.ctl.{self.node}.handover", cb=self._on_handover)
        self._watcher = await self._kv.watchall(ignore_deletes=True)
        self._watch_task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # the releases sent so far leave first
            await self._nc.flush(timeout=2)
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for closing in (self._watcher, self._subscription):
            if closing is not None:
                with contextlib.suppress(Exception):
                    await (closing.stop() if closing is self._watcher
                           else closing.unsubscribe())

    # -- claiming and releasing ------------------------------------------------------------

    async def owner(self, client_id: str) -> tuple[Owner | None, int]:
        """The current owner of ``client_id`` and the key's revision (0: none)."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await self._kv.get(session_key(client_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None, 0
        if not entry.value:
            return None, entry.revision or 0
        data = json.loads(entry.value)
        return Owner(str(data["node"])), int(entry.revision or 0)

    async def claim(self, client_id: str) -> Owner | None:
        """Make this node the owner of ``client_id``; returns the previous owner (after
        it handed the session over, or did not answer in time), or None."""
        from nats.js.errors import KeyWrongLastSequenceError

        if not self._nc.is_connected:  # fail fast rather than wait for a timeout
            raise ClusterUnavailable("NATS is unreachable")
        key = session_key(client_id)
        value = json.dumps({"node": self.node}).encode()
        while True:
            previous, revision = await self.owner(client_id)
            if previous is not None and previous.node != self.node:
                previous = Owner(previous.node,
                                 await self._take_from(previous.node, client_id))
            try:
                if revision:
                    claimed = await self._kv.update(key, value, last=revision)
                else:
                    claimed = await self._kv.create(key, value)
            except KeyWrongLastSequenceError:
                continue  # another claim came first: look again
            except Exception as exc:
                if "wrong last sequence" in str(exc).lower():
                    continue
                raise
            break
        self._claimed[client_id] = int(claimed)
        return previous

    async def release(self, client_id: str) -> None:
        """Forget ``client_id`` if this node still owns it.

        When this node knows the revision of its own claim, the delete expects that
        revision (so it does nothing if another node claimed the key since) and is sent
        without waiting for the stream's answer: a release needs none, since the next
        claim overwrites the key anyway. Waiting cost two requests per release; with
        13,000 connections closing on a node at once, that held its event loop long
        enough for NATS to drop the node as a slow consumer."""
        from nats.js.errors import KeyWrongLastSequenceError

        revision = self._claimed.pop(client_id, None)
        if revision is not None:
            await self._nc.publish(f"$KV.{self.bucket}.{session_key(client_id)}", b"",
                                   headers={"KV-Operation": "DEL",
                                            "Nats-Expected-Last-Subject-Sequence":
                                                str(revision)})
            return
        current, revision = await self.owner(client_id)
        if current is None or current.node != self.node:
            return
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self._kv.delete(session_key(client_id), last=revision)

    async def _take_from(self, node: str, client_id: str) -> int | None:
        """Have ``node`` hand ``client_id`` over; return when it did (with its position in
        the message stream), or when it is gone (None).

        :raises ClusterUnavailable: ``node`` does not answer and its lease still runs.
        """
        try:
            reply = await self._nc.request(f"{self._name}.ctl.{node}.handover",
                                           client_id.encode(), timeout=HANDOVER_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - no responders or a timeout: maybe alive
            silent = type(exc).__name__
        else:
            try:
                return int(json.loads(reply.data)["position"])
            except (ValueError, KeyError, TypeError):
                silent = "a malformed answer"
        assert self._alive is not None
        if await self._alive(node):
            raise ClusterUnavailable(f"node {node!r} holds client {client_id!r}, does not "
                                     f"answer ({silent}) and its lease still runs")
        log.warning("node %r's lease ran out; client %r resumes from the store", node,
                    client_id)
        return None

    # -- answering -------------------------------------------------------------------------

    async def _on_handover(self, msg: Any) -> None:
        client_id = msg.data.decode()
        try:
            assert self._hand_over is not None
            position = await self._hand_over(client_id)
        except Exception:
            log.exception("handing client %r over failed", client_id)
            return  # no answer: the claiming node waits for this node's lease
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps({"position": position}).encode())

    async def _watch(self) -> None:
        watcher = self._watcher
        while True:
            try:
                entry = await watcher.updates(timeout=3600)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching the session registry failed")
                await asyncio.sleep(1.0)
                continue
            if entry is None or not entry.value:
                continue
            try:
                data = json.loads(entry.value)
                client_id = client_of(entry.key)
            except (ValueError, KeyError):
                continue
            if (data.get("node") != self.node and self._lost is not None
                    # an update older than our own later claim is history, not news
                    and int(entry.revision or 0) > self._claimed.get(client_id, 0)):
                self._claimed.pop(client_id, None)
                self._lost(client_id, str(data.get("node")))
