"""The :class:`LwM2MServer` facade: one object wiring store, registry, queue mode, device client, inventory and
the CoAP endpoint, used by every surface (REST API, CLI, OTA, rollouts, tests).

One aiocoap server context holds the plain CoAP socket and (``[coap] secure``) the coaps one; each is used for
the devices' requests *and* for the server's requests to them (so NAT bindings created by the device's uplink
also carry our downlink, and a DTLS-registered device is reached over its own DTLS session).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiocoap
import aiocoap.resource as resource

from lwm2m_server.bootstrap_configs import BootstrapConfigs
from lwm2m_server.coap.bootstrap import BootstrapResource, add_bootstrap_resource
from lwm2m_server.coap.device_client import DeviceClient
from lwm2m_server.coap.dtls import DtlsLimits, DtlsStats, SecureSessions, add_secure_transport
from lwm2m_server.coap.fast_client import FastClient
from lwm2m_server.coap.fast_notifications import FastNotifications
from lwm2m_server.coap.fastpath import FastHandler, FastPath, RegistrationFastHandler
from lwm2m_server.coap.rd import RegistrationInterface, add_rd_resources
from lwm2m_server.coap.send import SendResource
from lwm2m_server.coap.turns import PeerTurns
from lwm2m_server.coap.udp import create_context
from lwm2m_server.config import Settings
from lwm2m_server.credentials import CredentialService
from lwm2m_server.events import Event, EventBus
from lwm2m_server.inventory import DeviceProfile, Inventory
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.send import SEND_PATH
from lwm2m_server.queue import QueueManager
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Listener, Registry
from lwm2m_server.send_values import SendService
from lwm2m_server.store.base import Store
from lwm2m_server.store.factory import store_for
from lwm2m_server.store.retention import DAY_S, RetentionPolicy

log = get_logger(__name__)

RCVBUF_BYTES = 4 * 1024 * 1024  # a registration storm arrives faster than one loop drains it (kernel-capped)


class LwM2MServer:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        model: ObjectRegistry | None = None,
        inventory: bool = True,
        persist_events: Sequence[str] | None = None,
    ) -> None:
        """``inventory=False`` skips the reads/observes after Register (benchmarks of the bare registration path).
        ``persist_events``: event types appended to the store's event log (default: ``[store] event_log_types``
        less ``event_log_skip``)."""
        self.settings = settings
        s = settings.server
        self.events = EventBus()
        st = settings.store
        retention = RetentionPolicy(st.event_retention_days * DAY_S, st.event_max_rows, st.event_prune_interval_s)
        self.store: Store = store or store_for(settings, retention)
        self.registry = Registry(self.store, self.events, grace_s=s.registration_grace_s)
        self.audit = self.store.audit
        self.credentials = CredentialService(self.store.credentials, self.audit, settings.secrets_dir)
        self.sessions = SecureSessions()
        self.dtls_stats = DtlsStats()
        turns = PeerTurns()  # NSTART per device across aiocoap and the fast client on the socket
        fast_client = FastClient(turns=turns) if s.coap_fast_path and s.coap_fast_push else None
        notifications = FastNotifications() if s.coap_fast_path else None
        self.client = DeviceClient(self.registry, self.events, model=model, default_timeout=s.request_timeout_s,
                                   sessions=self.sessions, fast=fast_client, turns=turns,
                                   notifications=notifications)
        self.queue = QueueManager(
            self.registry,
            self.store.queue,
            self.events,
            self.client.send_now,
            window_s=s.queue_mode_window_s,
            max_queued=s.max_queued_requests,
        )
        self.client.queue = self.queue
        self.inventory: Inventory | None = (
            Inventory(self.client, self.registry, self.store, self.events, concurrency=s.inventory_concurrency)
            if inventory
            else None
        )
        self.site = resource.Site()
        self.counters: Counter[str] = Counter()
        self.rd = RegistrationInterface(self.registry, self._count, self.client.stats.count_in, self.credentials)
        add_rd_resources(self.site, self.rd)
        self.bootstrap_configs = BootstrapConfigs(self.store.bootstrap, self.audit, self.credentials, self.client.model)
        self.bootstrap = BootstrapResource(self.bootstrap_configs, self.client)
        add_bootstrap_resource(self.site, self.bootstrap)
        self.fast_path = (FastPath({"rd": RegistrationFastHandler(self.rd)}, client=fast_client,
                                   notifications=notifications)
                          if s.coap_fast_path else None)  # fmt: skip
        self.send = SendService(self.store.send_values, self.events)  # pruned with the store's retention
        self.site.add_resource(
            SEND_PATH, SendResource(self.registry, self.client.model, self._on_send, self.client.stats.count_in)
        )
        self.site.add_resource((".well-known", "core"), resource.WKCResource(self.site.get_resources_as_linkheader))
        self.coap_context: aiocoap.Context | None = None
        self.coap_port: int = 0  # the plain listener's bound port (0: plain CoAP is off)
        self.coaps_port: int = 0  # the coaps listener's bound port (0: off)
        self.started_at: float | None = None
        self._persist = frozenset(persist_events) if persist_events is not None else None
        self._logged: dict[str, bool] = {}  # event type -> appended to the event log (the settings, memoized)
        self.events.add_sink(self._log_event)

    async def _on_send(self, reg: Registration, values: list[TimedValue]) -> None:
        """A Send is an uplink: a queue-mode device listens now, so its queued requests go out."""
        self.queue.on_uplink(reg.endpoint)
        await self.send.on_send(reg, values)

    def _count(self, key: str) -> None:
        self.counters[key] += 1

    def _log_event(self, event: Event) -> None:
        logged = self._logged.get(event.type)
        if logged is None:
            logged = self._logged[event.type] = (event.type in self._persist if self._persist is not None
                                                 else self.settings.store.event_logged(event.type))
        if not logged:
            return
        # dropped once closed; plain JSON data is encoded once, for this row and the SSE/relay frames alike
        shared = event.shared_data_json()
        written = self.store.append_event_nowait(event.type, event.endpoint, event.data, event.ts, encoded=shared)
        if written is not None and shared is None:
            event.offer_data_json(written)

    # -- extension points -------------------------------------------------------------------------------------
    def add_resource(self, path: tuple[str, ...], res: Any) -> None:
        """Serve another CoAP resource on the same socket (e.g. OTA's ``("fw",)``); call before :meth:`start`.
        A one-segment resource that is a :class:`FastHandler` also answers its hot requests on the fast path."""
        self.site.add_resource(path, res)
        if self.fast_path is not None and len(path) == 1 and isinstance(res, FastHandler):
            self.fast_path.add_handler(path[0], res)

    add_coap_resource = add_resource

    def add_registration_listener(self, listener: Listener) -> None:
        """``async fn(reg, kind)`` with kind in registered/updated/deregistered/expired, run as a task."""
        self.registry.add_listener(listener)

    async def profile(self, endpoint: str) -> DeviceProfile | None:
        return await self.inventory.profile(endpoint) if self.inventory is not None else None

    def is_awake(self, endpoint: str) -> bool | None:
        reg = self.registry.get(endpoint)
        return None if reg is None else self.queue.is_awake(reg)

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        s, c = self.settings.server, self.settings.coap
        if not c.plain and not c.secure:
            raise ValueError("[coap] plain and secure are both off: no listener for devices")
        await self.store.open()
        await self.credentials.open()
        await self.registry.start()
        if self.inventory is not None:
            await self.inventory.start()
        await self.queue.start()
        # Our own sockets, without SO_REUSEPORT: a busy port is an error, never two servers sharing one.
        if c.plain:
            ctx = await create_context(self.site, s.coap_host, s.coap_port, loggername="coap-server",
                                       rcvbuf=RCVBUF_BYTES, fast=self.fast_path,
                                       turns=self.client.fast.turns if self.client.fast is not None else None)
            self.coap_port = self._bound_port(ctx)
        else:
            ctx = aiocoap.Context(serversite=self.site, loggername="coap-server")
        self.coap_context = ctx
        try:
            if c.secure:
                limits = DtlsLimits(c.max_handshakes, c.handshake_timeout_s, c.max_sessions)
                self.coaps_port = await add_secure_transport(
                    ctx, c.coaps_host or s.coap_host, c.coaps_port, self.credentials.psk_for,
                    sessions=self.sessions, limits=limits, stats=self.dtls_stats)
        except Exception:
            await ctx.shutdown()
            self.coap_context = None
            raise
        self.client.context = ctx
        self.started_at = time.time()
        log.info("coap_listening", host=s.coap_host, port=self.coap_port, coaps_port=self.coaps_port,
                 registrations=len(self.registry))

    @staticmethod
    def _bound_port(ctx: aiocoap.Context) -> int:
        for iface in ctx.request_interfaces:
            mi = getattr(getattr(iface, "token_interface", None), "message_interface", None)
            port = getattr(mi, "_local_port", None)
            if port is not None:
                return int(port())
        raise RuntimeError("cannot determine the bound CoAP port")

    async def stop(self) -> None:
        self.client.cancel_all()
        self.bootstrap.cancel_all()
        await self.registry.stop()
        await self.queue.stop()
        if self.coap_context is not None:
            await self.coap_context.shutdown()
            self.coap_context = None
            self.client.context = None
        await self.store.close()
        log.info("server_stopped")

    async def __aenter__(self) -> LwM2MServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
