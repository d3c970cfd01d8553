"""Following one device's Object 5 during an OTA job: feed what it reports into the core's tracker, and wait.

State is followed three ways, because notifications get lost and devices reboot: the /5/0/3 and /5/0/5
observations the server sets up on every registration (``notification`` events), a re-read of /5/0 after
``poll_interval_s`` without progress (at most one outstanding, so a sleeping queue-mode device never gets a pile
of reads), and an immediate re-read when the device (re-)registers or wakes up. Every decision (execute now,
confirm, failed, how long silent) is the sans-IO :class:`~lwm2m_server.protocol.fwtracker.FirmwareUpdateTracker`'s;
this module only does the reading and the waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.config import OtaSettings
from lwm2m_server.events import Event, EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.job_state import Cause, JobFailed, JobPhase, JobRetry, failure_cause
from lwm2m_server.ota.object5 import FW, RESULT, STATE, fw_int, values_from_notification
from lwm2m_server.protocol.fwtracker import FirmwareUpdateTracker, Step
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.queue import QueueManager
from lwm2m_server.timers import wait_event

log = get_logger(__name__)

FOLLOW_EVENTS = frozenset({"notification", "registered", "updated", "awake"})


class Follower:
    """One job's view of its device: the tracker, the re-read poller and the silence deadline."""

    def __init__(
        self,
        *,
        endpoint: str,
        client: Any,  # lwm2m_server.coap.device_client.DeviceClient
        registry: Any,  # lwm2m_server.registry.Registry
        events: EventBus,
        settings: OtaSettings,
        tracker: FirmwareUpdateTracker,
        on_news: Callable[[int | None, int | None], None],
        served: Callable[[], tuple[int, int] | None] = lambda: None,
        queue: QueueManager | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client, self.registry, self.events, self.settings = client, registry, events, settings
        self.queue = queue
        self.tracker = tracker
        self._on_news = on_news
        self._served = served
        self._served_bytes = -1
        self._changed = asyncio.Event()
        self._poke = asyncio.Event()

    # ---- input ---------------------------------------------------------------------------------------------
    def alive(self) -> None:
        """Progress other than a new Object 5 value (a block acknowledged, an answer, a registration)."""
        self.tracker.alive(time.monotonic())

    def observe(self, state: int | None, result: int | None) -> None:
        event = self.tracker.feed(state, result, now=time.monotonic())
        if event.news:  # progress, not mere liveness: a device stuck in one state still times out
            self._on_news(self.tracker.reported_state, self.tracker.reported_result)
        if not event.accepted and event.note:
            log.debug("ota.fw_ignored", endpoint=self.endpoint, state=state, result=result, why=event.note)
        self._changed.set()

    async def read_fw(self) -> dict[LwM2MPath, Any]:
        content: dict[LwM2MPath, Any] = await self.client.read(self.endpoint, FW)
        self.observe(fw_int(content, STATE), fw_int(content, RESULT))
        return content

    def on_event(self, ev: Event) -> None:
        """A /5/0/3 or /5/0/5 notification feeds the state in; a (re-)registration or wake-up triggers a re-read."""
        if ev.type == "registered":  # it came back (reboot, new firmware): that is progress
            self.alive()
        if ev.type == "notification":
            st, res = values_from_notification(ev.data)
            if st is not None or res is not None:
                self.observe(st, res)
        else:
            self.poke()

    def poke(self) -> None:
        """Re-read now (and wake whoever waits)."""
        self._changed.set()
        self._poke.set()

    # ---- background tasks ----------------------------------------------------------------------------------
    async def follow_events(self) -> None:
        """Without a dispatcher (see OtaService), subscribe to this device's events directly."""
        with self.events.subscribe(types=FOLLOW_EVENTS, endpoint=self.endpoint) as sub:
            async for ev in sub:
                self.on_event(ev)

    async def poller(self) -> None:
        """Re-read /5/0 once the device has been quiet for a poll interval (and when poked); one read in flight.

        Quiet means no news and no other progress (blocks pushed or served, a registration) since the later of the
        last evidence and the last read: a device visibly progressing is not asked again (at 1,000 pulls these
        reads were ~8% of the server's loop and more of the devices'), a silent one is re-read every interval."""
        interval = self.settings.poll_interval_s
        read_at = time.monotonic()
        while True:
            while not self._poke.is_set():
                self._note_served()
                now = time.monotonic()
                evidence_at = now - self.tracker.silent_for(now)
                due = max(evidence_at, read_at) + interval
                if now >= due:
                    break
                await wait_event(self._poke, due - now)
            self._poke.clear()
            read_at = time.monotonic()
            try:
                await self.read_fw()
            except DeviceError as exc:  # rebooting, re-registering, asleep: the deadline decides
                log.debug("ota.poll_failed", endpoint=self.endpoint, code=exc.coap_code)

    # ---- waiting -------------------------------------------------------------------------------------------
    def silent_too_long(self) -> bool:
        """No progress for ``timeout_s`` while the device is awake (a sleeping queue-mode device is not silent)."""
        return self.tracker.silent_for(time.monotonic()) > self.settings.timeout_s and self.device_awake()

    def device_awake(self) -> bool:
        """A sleeping queue-mode device is not silent: its timeout counts from the next wake-up."""
        reg = self.registry.get(self.endpoint)
        if reg is None or not reg.queue_mode or self.queue is None:
            return True
        if not self.queue.is_awake(reg):
            self.alive()
            return False
        return True

    async def wait_for(self, phase: JobPhase, *, verify: bool = False) -> Step:
        """Until the tracker says execute (``DOWNLOADING``), confirm, or (with ``verify``: the job can check what
        the device runs) verify; JobRetry/JobFailed on a failure result (:func:`failure_cause`) or silence."""
        timeout = self.settings.timeout_s
        while True:
            step = self.tracker.step
            if step is Step.CONFIRM or (step is Step.EXECUTE and phase is JobPhase.DOWNLOADING):
                return step
            if step is Step.VERIFY and verify:
                return step
            if step is Step.FAIL:
                self._raise_for_failure()
            self._note_served()
            if self.silent_too_long():
                raise JobFailed(Cause.TIMEOUT, None, f"no progress for {timeout:g}s while {phase}")
            silent = self.tracker.silent_for(time.monotonic())
            self._changed.clear()
            await wait_event(self._changed, max(0.05, min(timeout - silent, 1.0)))

    def _note_served(self) -> None:
        served = self._served()
        if served is not None and served[0] != self._served_bytes:  # the device is pulling blocks
            self._served_bytes = served[0]
            self.alive()

    def _raise_for_failure(self) -> None:
        cause = self.tracker.cause
        result = None if cause is None else int(cause)
        if self.tracker.failure_class == "retryable":
            raise JobRetry(result or 0, f"update result {result}")
        raise JobFailed(failure_cause(self.tracker.failure_class), result)
