"""Server→device requests for a device held by another node: the node that received the REST call sends it over
the store's notifier (PostgreSQL LISTEN/NOTIFY) to the owning node (``registrations.node_id``), which carries it
out on its own CoAP session with the device and sends the HTTP status and JSON body back. REST calls travel as
``{"op": "http", ...}`` (see :mod:`lwm2m_server.api.forwarding` and :mod:`lwm2m_server.cluster.replay`).

The asking node waits at most ``timeout_s``; an owner whose heartbeat is older than the node timeout is not asked
at all. Both end in :class:`OwnerUnreachable` (the API's 504). Channel names are derived from node ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.store.repositories import NodeRepository, Notifier

log = get_logger(__name__)

Reply = tuple[int, dict[str, Any]]
Handler = Callable[[dict[str, Any]], Awaitable[Reply]]
"""Carries out one forwarded request here (``{"op": "http", "endpoint": ..., ...}``) -> (HTTP status, JSON body)."""


class OwnerUnreachable(Exception):
    """The owning node did not answer in time, or is not alive."""


def channel_for(node_id: str) -> str:
    return "tinymlaas_" + hashlib.sha256(node_id.encode()).hexdigest()[:32]


class DeviceForwarder:
    def __init__(self, notifier: Notifier, nodes: NodeRepository, node_id: str, handler: Handler, *,
                 timeout_s: float = 35.0, node_timeout_s: float = 15.0) -> None:
        self._notifier = notifier
        self._nodes = nodes
        self.node_id = node_id
        self._handler = handler
        self.timeout_s = timeout_s
        self.node_timeout_s = node_timeout_s
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._notifier.listen(channel_for(self.node_id), self._on_message)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._notifier.close()

    async def owner_elsewhere(self, endpoint: str) -> str | None:
        """The other node that holds ``endpoint``'s registration, if one does."""
        owner = await self._nodes.owner(endpoint)
        return owner if owner is not None and owner != self.node_id else None

    async def forward(self, owner: str, request: dict[str, Any]) -> Reply:
        alive = {n.node_id: n.last_seen for n in await self._nodes.nodes()}
        if time.time() - alive.get(owner, 0.0) >= self.node_timeout_s:
            raise OwnerUnreachable(f"device {request.get('endpoint')!r} is held by node {owner}, which is not "
                                   f"alive (no heartbeat for {self.node_timeout_s:g} s); it can be reached again "
                                   "once it registers through a live node")
        rid = uuid.uuid4().hex
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._notifier.notify(channel_for(owner), json.dumps(
                {"kind": "request", "id": rid, "reply_to": self.node_id, **request}))
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError:
            raise OwnerUnreachable(f"node {owner}, which holds device {request.get('endpoint')!r}, did not answer "
                                   f"within {self.timeout_s:g} s") from None
        finally:
            self._pending.pop(rid, None)

    def _on_message(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            kind = msg["kind"]
        except (ValueError, KeyError, TypeError):
            log.warning("cluster_bad_message", size=len(payload))
            return
        if kind == "reply":
            fut = self._pending.get(str(msg.get("id")))
            if fut is not None and not fut.done():
                fut.set_result((int(msg["status"]), dict(msg["body"])))
        elif kind == "request":
            task = asyncio.create_task(self._serve(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: dict[str, Any]) -> None:
        try:
            status, body = await self._handler(msg)
        except Exception as exc:  # the handler maps request errors itself; anything else is ours
            log.error("cluster_forwarded_request_failed", op=msg.get("op"), error=repr(exc))
            status, body = 500, {"error": "internal", "message": f"internal error on node {self.node_id}"}
        reply = json.dumps({"kind": "reply", "id": msg.get("id"), "status": status, "body": body})
        try:
            await self._notifier.notify(channel_for(str(msg.get("reply_to"))), reply)
        except ValueError:
            await self._notifier.notify(channel_for(str(msg.get("reply_to"))), json.dumps(
                {"kind": "reply", "id": msg.get("id"), "status": 502, "body": {
                    "error": "too_large", "message": f"the answer is too large to forward from node {self.node_id}; "
                    "ask that node directly"}}))
