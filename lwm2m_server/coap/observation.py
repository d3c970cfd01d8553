"""Client-side observations (server observes a device path): one CoAP observation, many owners' handles.

Several parts of the server may observe the same path (the inventory follows /5/0/3 for OTA, an operator
observes it through the REST API). They share *one* CoAP observation (one token on the wire, one
``notification`` event per notification), and each owner gets its own :class:`Observation` handle. Cancelling a
handle detaches only that owner; the CoAP observation is cancelled when its last handle goes. So an API
``DELETE .../observe`` can never break the server's own observations.

aiocoap's callback interface is used (not its lossy async iterator) so every notification is decoded, published
and counted as an uplink, without a task per observation. Each handle keeps a bounded queue that drops the
oldest value for a slow consumer (:class:`~lwm2m_server.coap.notifications.NotificationStream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lwm2m_server.coap.notifications import NotificationStream
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath

log = get_logger(__name__)

NotifyCallback = Callable[[str, LwM2MPath, Content], None]


class Observation(NotificationStream):
    """One owner's handle on an observation: the latest value, notifications as callback and async iterator."""

    def __init__(
        self, endpoint: str, path: LwM2MPath, reg_id: str, maxsize: int = 64, *, owner: str | None = None,
        buffered: bool = True,
    ) -> None:
        super().__init__(maxsize, buffered=buffered)
        self.endpoint = endpoint
        self.path = path
        self.reg_id = reg_id
        self.owner = owner
        self.address: tuple[str, int] | None = None
        self.callback: NotifyCallback | None = None
        self._detach: Callable[[Observation], None] | None = None
        self._on_cancel: list[Callable[[Observation], None]] = []

    def _push(self, content: Content) -> None:
        self._enqueue(content)
        if self.callback is not None:
            try:
                self.callback(self.endpoint, self.path, content)
            except Exception:
                log.exception("notification_callback_failed", endpoint=self.endpoint, path=str(self.path))

    def _end(self, error: BaseException | None = None) -> None:
        if not self._close(error):
            return
        self._detach = None
        for fn in self._on_cancel:
            fn(self)

    def cancel(self) -> None:
        """Stop this owner's handle. The CoAP observation ends with its last handle (the device's next
        notification is then answered with RST, RFC 7641 §3.6)."""
        detach = self._detach
        self._end()
        if detach is not None:
            detach(self)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        return f"<Observation {self.endpoint}{self.path} owner={self.owner} {state} n={self.notifications}>"


class SharedObservation:
    """One CoAP observation (one token on the wire) and the handles of every owner following it."""

    def __init__(
        self,
        endpoint: str,
        path: LwM2MPath,
        reg_id: str,
        address: tuple[str, int],
        content_format: int,
        value: Content,
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.reg_id = reg_id
        self.address = address
        self.content_format = content_format
        self.value = value
        self.handles: list[Observation] = []
        self.ended = False
        self.aiocoap_obs: Any = None  # None: the fast path's alone (coap/fast_observe.py), or ended
        self.arrivals = 0  # notifications received (a notification in blocks is delivered only if still the latest)
        self.on_end: list[Callable[[SharedObservation], None]] = []

    def attach(self, owner: str | None = None, callback: NotifyCallback | None = None, *,
               buffered: bool = True) -> Observation:  # fmt: skip
        obs = Observation(self.endpoint, self.path, self.reg_id, owner=owner, buffered=buffered)
        obs.value = dict(self.value)
        obs.address = self.address
        obs.callback = callback
        obs._detach = self._detach
        self.handles.append(obs)
        return obs

    def _detach(self, obs: Observation) -> None:
        if obs in self.handles:
            self.handles.remove(obs)
        if not self.handles:
            self.end()

    def push(self, content: Content) -> None:
        self.value = content
        for obs in list(self.handles):
            obs._push(content)

    def end(self, error: BaseException | None = None) -> None:
        """Cancel the CoAP observation and end every handle (de-registration, device moved, error, last owner)."""
        if self.ended:
            return
        self.ended = True
        aobs, self.aiocoap_obs = self.aiocoap_obs, None
        if aobs is not None and not aobs.cancelled:
            aobs.cancel()
        handles, self.handles = self.handles, []
        for obs in handles:
            obs._end(error)
        for fn in self.on_end:
            fn(self)

    def __repr__(self) -> str:
        return f"<SharedObservation {self.endpoint}{self.path} cf={self.content_format} owners={len(self.handles)}>"
