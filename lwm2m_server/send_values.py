"""Send (LwM2M 1.1): what the server does with values a device pushed. Each value is stored with its own time
(the store's ``send_values`` repository) and the whole Send goes out as one ``send`` event (SSE, MQTT
``{prefix}/devices/{ep}/send``) with ``values: [{"path", "ts", "value"}]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.jsonvalues import value_to_json
from lwm2m_server.registration import Registration
from lwm2m_server.store.repositories import SendValueRepository, SentValue

log = get_logger(__name__)


class SendService:
    def __init__(
        self, values: SendValueRepository, events: EventBus, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.values = values
        self.events = events
        self._clock = clock
        self.received = 0

    async def on_send(self, reg: Registration, values: list[TimedValue]) -> None:
        now = self._clock()
        rows = [SentValue(str(v.path), v.epoch_time(now), value_to_json(v.value)) for v in values]
        await self.values.add(reg.endpoint, rows, now)
        self.received += 1
        log.debug("send_received", endpoint=reg.endpoint, values=len(rows))
        self.events.emit("send", reg.endpoint, values=[{"path": r.path, "ts": r.ts, "value": r.value} for r in rows])
