"""One Observe-Composite (LwM2M 1.1: FETCH ``/`` with Observe, the body naming several paths): its paths,
the latest root content, and notifications as a :class:`~lwm2m_server.coap.notifications.NotificationStream`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lwm2m_server.coap.notifications import NotificationStream
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath


class CompositeObservation(NotificationStream):
    def __init__(
        self,
        endpoint: str,
        paths: tuple[LwM2MPath, ...],
        reg_id: str,
        address: tuple[str, int],
        content_format: int,
        value: Content,
        *,
        owner: str | None = None,
        maxsize: int = 64,
    ) -> None:
        super().__init__(maxsize)
        self.endpoint = endpoint
        self.paths = paths
        self.reg_id = reg_id
        self.address = address
        self.content_format = content_format
        self.value = value
        self.owner = owner
        self.aiocoap_obs: Any = None
        self.on_end: list[Callable[[CompositeObservation], None]] = []

    def push(self, content: Content) -> None:
        self._enqueue(content)

    def end(self, error: BaseException | None = None) -> None:
        """Cancel on the wire (the device's next notification gets RST) and end the iterator."""
        if not self._close(error):
            return
        aobs, self.aiocoap_obs = self.aiocoap_obs, None
        if aobs is not None and not aobs.cancelled:
            aobs.cancel()
        for fn in self.on_end:
            fn(self)

    cancel = end

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        paths = ",".join(str(p) for p in self.paths)
        return f"<CompositeObservation {self.endpoint} [{paths}] {state} n={self.notifications}>"
