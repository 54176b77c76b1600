"""One node of the fleet holds a role at a time: a lease in a JetStream key-value bucket.

Theory of operation
-------------------
The bucket ``<name>_leader`` keeps each entry for ``ttl`` seconds after it was written
(NATS's own time-to-live). The key of a role (``detect``) names the node that holds it.

* **Taking it.** A node that does not hold the role tries, every ``renew`` seconds, to
  create the key. Creation is a compare-and-set on "no such key", so of several nodes
  trying at once only one gets it.
* **Keeping it.** The holder rewrites the key every ``renew`` seconds with a
  compare-and-set on the revision it wrote last. If another node wrote the key meanwhile,
  the holder has lost it.
* **Giving it up.** The holder stops acting as soon as it has not renewed for ``ttl / 2``
  seconds (NATS unreachable, say), well before its entry runs out and another node may
  take the role. A node that stops deletes the key (if it still holds it), so another
  node takes over within ``renew`` seconds instead of ``ttl``.

A node that died therefore hands the role on within ``ttl + renew`` seconds. Two holders
never act at once as long as the nodes' clocks run at the same rate: the old one stops
after ``ttl / 2``; the new one can start only after ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

log = logging.getLogger("bastion.cluster")

LEASE_TTL: Final = 10.0
"""Seconds a lease entry lives after it was written."""
RENEW: Final = 1.0
"""Seconds between two renewals, or two attempts to take the lease."""


async def leader_bucket(nc: Any, name: str, ttl: float = LEASE_TTL) -> Any:
    """The lease bucket of cluster ``name`` (created when missing)."""
    from nats.js.api import KeyValueConfig

    return await nc.jetstream().create_key_value(
        KeyValueConfig(bucket=f"{name}_leader", history=1, ttl=ttl))


class LeaderLease:
    """This node's part in the lease of one ``role`` (see the module docstring).

    :param bucket: from :func:`leader_bucket` (its ``ttl`` must be this one's).
    :param monotonic: the clock that times the renewals.
    """

    def __init__(self, bucket: Any, role: str, node: str, *, ttl: float = LEASE_TTL,
                 renew: float = RENEW, monotonic: Callable[[], float]) -> None:
        if not 0 < renew < ttl / 2:
            raise ValueError("renew must be positive and shorter than ttl / 2")
        self._bucket = bucket
        self.role = role
        self.node = node
        self.ttl = ttl
        self.renew = renew
        self._monotonic = monotonic
        self._revision: int | None = None  # of our own last write, while we hold it
        self._renewed = 0.0
        self._closed = False

    @property
    def held(self) -> bool:
        """Whether this node holds the role now (and may act on it)."""
        return self._revision is not None and \
            self._monotonic() - self._renewed < self.ttl / 2

    async def run(self, gained: Callable[[], Awaitable[None]],
                  lost: Callable[[], Awaitable[None]]) -> None:
        """Take and keep the lease forever; ``gained()`` when this node took it,
        ``lost()`` when it lost it. The renewals go on while those run. Never raises for
        NATS trouble."""
        renewing = asyncio.get_running_loop().create_task(self._renew_forever())
        holding = False
        try:
            while True:
                if self.held and not holding:
                    holding = True
                    log.info("this node holds the %s lease", self.role)
                    await gained()
                elif holding and not self.held:
                    holding = False
                    log.warning("this node lost the %s lease", self.role)
                    await lost()
                await asyncio.sleep(self.renew / 4)
        finally:
            renewing.cancel()

    async def _renew_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._attempt(), timeout=self.renew * 2)
            except Exception as exc:  # noqa: BLE001 - NATS away: keep trying
                log.debug("lease %s: %s", self.role, exc)
            if self._revision is not None and not self.held:
                self._revision = None  # ran out: take it afresh, if it is free
            await asyncio.sleep(self.renew)

    async def _attempt(self) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        if self._closed:
            return
        value = self.node.encode()
        try:
            if self._revision is None:
                revision = await self._bucket.create(self.role, value)
            else:
                revision = await self._bucket.update(self.role, value, last=self._revision)
        except KeyWrongLastSequenceError:
            self._revision = None  # another node holds it
            return
        self._revision = revision
        self._renewed = self._monotonic()

    async def holder(self) -> str | None:
        """The node that holds the role now, as the bucket says (``None``: nobody)."""
        from nats.js.errors import NotFoundError

        try:
            entry = await self._bucket.get(self.role)
        except NotFoundError:  # never written, deleted or run out
            return None
        return bytes(entry.value or b"").decode() or None

    async def close(self) -> None:
        """Give the role up now and never take it again (the node stops)."""
        self._closed = True
        await self.release()
        with contextlib.suppress(Exception):  # a renewal that was under way wrote it again
            entry = await self._bucket.get(self.role)
            if entry.value == self.node.encode():
                await self._bucket.delete(self.role, last=entry.revision)

    async def release(self) -> None:
        """Give the role up now, if this node holds it (it may take it again later)."""
        revision, self._revision = self._revision, None
        if revision is not None:
            with contextlib.suppress(Exception):  # taken meanwhile, or NATS away
                await self._bucket.delete(self.role, last=revision)
