"""A simulated LwM2M client: one aiocoap context (one UDP socket on 127.0.0.1) that both registers with
the server and serves the server's requests, so the server reaches it at the address it registered from.

Life cycle: Register -> Updates before the lifetime ends (or when asked) -> De-register on stop.
Queue mode: after each uplink the device listens for ``queue_awake_s`` (extended by every incoming
request), then its radio sleeps (datagrams in and out are lost) until it wakes to send an Update.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from urllib.parse import urlsplit

from aiocoap import POST, Code, Context, Message
from aiocoap.numbers.codes import DELETE

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.protocol.send import SEND_PATH, encode_send
from simulator.dtls import SecureLink, create_dtls_context
from simulator.firmware import Firmware
from simulator.initial import build_store
from simulator.link import Link
from simulator.objects import ObjectStore
from simulator.profiles import DeviceConfig
from simulator.registration import object_links, register_query
from simulator.site import DeviceSite
from simulator.udp import create_context, response_within
from simulator.values import LwM2MError

log = get_logger(__name__)

RETRY_MAX_S = 30.0
SENML_CBOR = 112


class RegistrationFailed(Exception):
    """The server answered a Register with an error code."""


class SimulatedDevice:
    def __init__(self, config: DeviceConfig, *, model: ObjectRegistry | None = None, seed: int | None = None):
        self.config = config
        self.model = model or ObjectRegistry.default()
        self.seed = seed
        self.registered = asyncio.Event()
        self.registration_location: tuple[str, ...] | None = None
        self.server_uri = ""
        self.context: Context | None = None
        self.link: Link | SecureLink | None = None
        self.objects: ObjectStore | None = None
        self.site: DeviceSite | None = None
        self.firmware: Firmware | None = None
        self.registrations = 0
        self.updates = 0
        self.reboots = 0
        self.uplink_failures = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._full_register = False
        self._lifetime_changed = False
        self._last_activity = 0.0
        self._busy = 0
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()

    # ---- public API ----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    @property
    def port(self) -> int:
        if self.link is None:
            raise RuntimeError("device not started")
        return self.link.port

    @property
    def secure(self) -> bool:
        """Registers over DTLS (a coaps:// server)."""
        return self.server_uri.startswith("coaps://")

    @property
    def asleep(self) -> bool:
        return self.link is not None and self.link.asleep

    async def start(self, server_uri: str, *, wait_registered: bool = True) -> None:
        """Bind 127.0.0.1:0, register (retrying until the server answers) and keep the registration alive."""
        if self._task is not None:
            raise RuntimeError("device already started")
        self._prepare(server_uri)
        await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sim-{self.endpoint}")
        if wait_registered:
            await self.registered.wait()

    async def register_once(self, server_uri: str) -> None:
        """Open the socket and send one Register, no retries: raises :class:`RegistrationFailed` with the
        server's code, or the transport's error (e.g. a DTLS handshake that fails). Then ``stop()`` it."""
        if self._task is not None or self.context is not None:
            raise RuntimeError("device already started")
        self._prepare(server_uri)
        await self._open()
        await self.register()

    def _prepare(self, server_uri: str) -> None:
        split = urlsplit(server_uri)
        if split.scheme not in ("coap", "coaps") or not split.hostname:
            raise ValueError(f"server URI must be coap://host:port or coaps://host:port, got {server_uri!r}")
        if split.scheme == "coaps":
            if not (self.config.psk_identity and self.config.psk_key):
                raise ValueError(f"{self.endpoint}: a coaps:// server needs a PSK identity and key")
            if 1 not in self.config.protocols:  # a DTLS device pulls over coaps: list CoAPS in /5/0/8
                self.config = replace(self.config, protocols=(*self.config.protocols, 1))
        self.server_uri = server_uri.rstrip("/")
        if self.objects is None:
            self.objects = build_store(self.config, self.server_uri, self.model)
            self.firmware = Firmware(self)
            self.objects.on_write(1, 1, self._on_lifetime_write, check=_check_lifetime)
            self.objects.on_execute(1, 8, lambda _p, _a: self.trigger_update())
            self.objects.on_execute(3, 4, lambda _p, _a: self._schedule_reboot())
        self._stopping = False

    async def stop(self, *, deregister: bool = True) -> None:
        """De-register (best effort, bounded) and close the socket."""
        self._stopping = True
        for task in list(self._background):
            if task is not asyncio.current_task():
                task.cancel()
        if self._task is not None:
            # Python 3.11's wait_for swallows a cancel that lands as its inner wait completes (an Update
            # triggered just then): cancel again until the task has really ended.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._task.result()
            self._task = None
        if self.firmware is not None:
            await self.firmware.stop()
        if deregister and self.registration_location and self.context is not None:
            if self.link is not None:
                self.link.asleep = False
            with contextlib.suppress(Exception):
                request = Message(code=DELETE, uri=self.server_uri)
                request.opt.uri_path = self.registration_location
                await response_within(self.context.request(request), 5.0)
        self.registered.clear()
        self.registration_location = None
        await self._close()

    def trigger_update(self, *, full: bool = False) -> None:
        """Send an Update now (``full``: a new Register, e.g. after a firmware change)."""
        self._full_register = self._full_register or full
        self._wake.set()

    async def reboot(self, down_s: float = 0.2) -> None:
        """Power-cycle: the socket closes (observations die), RAM state is lost, flash survives; re-register."""
        self.reboots += 1
        log.info("sim.reboot", endpoint=self.endpoint)
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.registered.clear()
        self.registration_location = None
        if self.firmware is not None:
            self.firmware.power_lost()
        await self._close()
        await asyncio.sleep(down_s)
        if self._stopping:
            return
        await self._open()
        self._full_register = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sim-{self.endpoint}")
        if self.firmware is not None:
            self.firmware.power_restored()

    def keep_awake(self) -> contextlib.AbstractContextManager[None]:
        """Keep the radio on while the device itself is busy on the network (a pull download)."""
        return _Busy(self)

    # ---- socket --------------------------------------------------------------------------------
    async def _open(self) -> None:
        assert self.objects is not None
        self.site = DeviceSite(
            self.objects, lwm2m_version=self.config.lwm2m_version, firmware=self.firmware, on_request=self._touch
        )
        faults = self.config.faults
        if self.secure:
            self.link = SecureLink(loss_pct=faults.loss_pct, delay_ms=faults.delay_ms)
            self.context = await create_dtls_context(
                self.site, self.server_uri, self.config.psk_identity, self.config.psk_key
            )
        else:
            self.context = await create_context(self.site, "127.0.0.1", 0)
            self.link = Link(self.context, loss_pct=faults.loss_pct, delay_ms=faults.delay_ms, seed=self.seed)
        self.site.observations.asleep = lambda: self.asleep

    async def _close(self) -> None:
        if self.site is not None:
            self.site.observations.cancel_all()
        context, self.context = self.context, None
        if context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.shutdown(), 5.0)

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    # ---- uplinks -------------------------------------------------------------------------------
    async def _uplink(self, request: Message) -> Message:
        assert self.context is not None and self.link is not None
        self.link.asleep = False
        self._touch()
        response = await response_within(self.context.request(request), self.config.uplink_timeout_s)
        self._touch()
        if isinstance(self.link, SecureLink):
            self.link.session = response.remote  # aiocoap's DTLS pool is weak: hold the session
        return response

    async def register(self) -> None:
        assert self.objects is not None
        request = Message(code=POST, uri=self.server_uri, content_format=40)
        request.opt.uri_path = ("rd",)
        request.opt.uri_query = register_query(self.config_with_lifetime())
        request.payload = object_links(self.objects, self.config.lwm2m_version).encode()
        response = await self._uplink(request)
        if response.code != Code.CREATED:
            raise RegistrationFailed(f"register answered {response.code}")
        self.registration_location = tuple(response.opt.location_path)
        self.registrations += 1
        self._full_register = False
        self._lifetime_changed = False
        self.registered.set()
        log.debug("sim.registered", endpoint=self.endpoint, location="/".join(self.registration_location))

    async def update(self) -> bool:
        """Send an Update; False when the server no longer knows us (then we Register again)."""
        assert self.registration_location is not None
        request = Message(code=POST, uri=self.server_uri)
        request.opt.uri_path = self.registration_location
        if self._lifetime_changed:
            request.opt.uri_query = (f"lt={self.lifetime}",)
        response = await self._uplink(request)
        if response.code == Code.CHANGED:
            self.updates += 1
            self._lifetime_changed = False
            return True
        log.info("sim.update_refused", endpoint=self.endpoint, code=str(response.code))
        return False

    async def send(self, paths: list[LwM2MPath], *, content_format: int = SENML_CBOR, timed: bool = True) -> Code:
        """LwM2M 1.1 Send: POST ``/dp`` with the current values under ``paths`` (each timestamped when ``timed``);
        returns the server's answer code."""
        assert self.objects is not None
        if self.config.lwm2m_version == "1.0":
            raise LwM2MError("4.05", "Send is LwM2M 1.1")
        now = time.time() if timed else None
        values = [TimedValue(p, v, now) for path in paths for p, v in sorted(self.objects.read(path).items())]
        request = Message(code=POST, uri=self.server_uri, content_format=content_format)
        request.opt.uri_path = SEND_PATH
        request.payload = encode_send(content_format, values, self.model)
        response = await self._uplink(request)
        return response.code

    @property
    def lifetime(self) -> int:
        assert self.objects is not None
        return int(self.objects.get(LwM2MPath(1, 0, 1)))

    def config_with_lifetime(self) -> DeviceConfig:
        return replace(self.config, lifetime=self.lifetime)

    # ---- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                if self.registration_location is None or self._full_register:
                    await self.register()
                elif not await self.update():
                    self.registration_location = None
                    continue
                elif self.site is not None:
                    self.site.observations.flush_stored()
                backoff = 1.0
            except Exception as exc:  # timeout, error code, socket trouble: retry with back-off
                self.uplink_failures += 1
                log.info("sim.uplink_failed", endpoint=self.endpoint, error=f"{type(exc).__name__}: {exc}")
                if self.registration_location is None:
                    self.registered.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            await self._wait_next_uplink()

    async def _wait_next_uplink(self) -> None:
        """Sleep until the next Update is due (queue mode: stay awake for the window, then radio off)."""
        self._wake.clear()
        interval = self.config.update_interval
        started = time.monotonic()
        if self.config.queue_mode:
            assert self.link is not None
            while True:
                idle_until = self._last_activity + self.config.queue_awake_s
                remaining = idle_until - time.monotonic()
                if self._busy == 0 and remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.05, remaining))
                if self._wake.is_set():
                    return
            self.link.asleep = True
            log.debug("sim.sleeping", endpoint=self.endpoint)
            interval = min(self.config.queue_sleep_s, interval)
        deadline = started + interval if not self.config.queue_mode else time.monotonic() + interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - time.monotonic()))

    # ---- object hooks --------------------------------------------------------------------------
    def _on_lifetime_write(self, path: LwM2MPath, value: object) -> None:
        assert self.objects is not None
        _check_lifetime(path, value)
        assert isinstance(value, int)
        self.objects.set(path, value)
        self._lifetime_changed = True
        self.trigger_update()

    def _schedule_reboot(self) -> None:
        asyncio.get_running_loop().call_later(0.05, self.spawn_reboot)

    def spawn_reboot(self, down_s: float = 0.2) -> None:
        """Reboot from a callback or another task (the task is referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(self.reboot(down_s), name=f"reboot-{self.endpoint}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class _Busy(contextlib.AbstractContextManager[None]):
    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device

    def __enter__(self) -> None:
        self.device._busy += 1
        if self.device.link is not None:
            self.device.link.asleep = False

    def __exit__(self, *exc: object) -> None:
        self.device._busy -= 1
        self.device._touch()


def _check_lifetime(path: LwM2MPath, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise LwM2MError("4.00", "lifetime must be a positive integer")
