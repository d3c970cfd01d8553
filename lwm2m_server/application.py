"""The composition root: one LwM2M server with its services (OTA, rollouts) and surfaces (HTTP, MQTT).

``tinymlaas serve`` and ``tinymlaas demo`` both run an :class:`Application`; tests use it to get the real
thing on ephemeral ports. Start order matters: ``/fw`` must be on the CoAP site before the socket opens,
and OTA jobs resume before rollouts re-attach to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from typing import Any

from lwm2m_server.auth.tokens import TokenService
from lwm2m_server.cluster import remote_ota
from lwm2m_server.cluster.events import EventRelay
from lwm2m_server.cluster.forwarding import DeviceForwarder
from lwm2m_server.cluster.identity import resolve_node_id
from lwm2m_server.cluster.membership import ClusterMembership
from lwm2m_server.cluster.remote_ota import RemoteOta
from lwm2m_server.cluster.replay import replay
from lwm2m_server.cluster.secrets import SecretsMismatch, check_shared_secrets
from lwm2m_server.compiling import Compiling
from lwm2m_server.config import Settings
from lwm2m_server.logging import get_logger
from lwm2m_server.models_catalog import ModelCatalog
from lwm2m_server.ota.builds import server_public_key
from lwm2m_server.ota.ownership import JobOwnership
from lwm2m_server.ota.service import OtaService
from lwm2m_server.rollouts.deployer import FleetDeployer
from lwm2m_server.rollouts.leadership import RolloutLeadership
from lwm2m_server.rollouts.model import RolloutSpec
from lwm2m_server.rollouts.repository import RolloutRepository
from lwm2m_server.rollouts.service import RolloutService
from lwm2m_server.server import LwM2MServer
from lwm2m_server.services import Services
from lwm2m_server.store.factory import notifier_for

log = get_logger(__name__)


class Application:
    def __init__(self, settings: Settings, *, http: bool = True, compile_service: Any | None = None) -> None:
        self.settings = settings
        self.server = LwM2MServer(settings)
        store = self.server.store
        self.compiling = Compiling(settings, compile_service)
        self.catalog = ModelCatalog(settings.server.data_dir)
        cl = settings.cluster
        node_id = resolve_node_id(settings)
        ownership = (JobOwnership(node_id, store.ota_jobs, store.nodes, cl.node_timeout_s)
                     if settings.store.backend == "postgres" else None)  # several nodes may share the store
        self.ota = OtaService(self.server, compiling=self.compiling, catalog=self.catalog, ownership=ownership)
        self.audit = store.audit
        self.tokens = TokenService(store.tokens)
        self.cluster = ClusterMembership(store.nodes, store.leases, node_id,
                                         heartbeat_s=cl.heartbeat_s, node_timeout_s=cl.node_timeout_s,
                                         grace_s=settings.server.registration_grace_s, info=self._node_info)
        notifier = notifier_for(settings)
        self.forwarder: DeviceForwarder | None = None
        remote: RemoteOta | None = None
        leadership: RolloutLeadership | None = None
        if notifier is not None:  # several nodes: REST calls and OTA ops for devices other nodes hold go there
            self.forwarder = DeviceForwarder(notifier, store.nodes, self.cluster.node_id, self._forwarded,
                                             timeout_s=cl.forward_timeout_s, node_timeout_s=cl.node_timeout_s)
            remote = RemoteOta(self.forwarder, store.ota_jobs)
            leadership = RolloutLeadership(store.leases, self.cluster.node_id, cl.lease_ttl_s)
        self.deployer = FleetDeployer(self.server, self.ota, self.compiling, self.catalog, remote)
        repo = RolloutRepository(store.rollouts, self.audit, store.flush, cache_running=leadership is None)
        self.rollouts = RolloutService(repo, self.deployer, self._publish, leadership)
        relay_notifier = notifier_for(settings) if cl.relay_events else None  # its own connection
        self.relay = None if relay_notifier is None else EventRelay(
            self.server.events, relay_notifier, self.cluster.node_id, batch_ms=cl.relay_batch_ms,
            buffer=cl.relay_buffer)
        self.services = Services(server=self.server, tokens=self.tokens, audit=self.audit, catalog=self.catalog,
                                 compiling=self.compiling, ota=self.ota, rollouts=self.rollouts,
                                 deployer=self.deployer, cluster=self.cluster, forwarder=self.forwarder)
        self._http = http
        from lwm2m_server.api.app import create_app

        # Built even without --http: it replays the REST calls other nodes forward here.
        self.asgi_app = create_app(self.server, services=self.services)
        self.api: Any = None
        self.mqtt: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.public_key = b""
        self.initial_admin_token: str | None = None  # set on the first start only: print it, it is not stored

    async def _forwarded(self, msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A request another node forwarded here (:mod:`lwm2m_server.cluster.forwarding`): OTA ops of its
        rollouts (:mod:`lwm2m_server.cluster.remote_ota`), or a REST call replayed through this node's app."""
        reply = await remote_ota.serve(self.ota, self.deployer.installed_sha, msg)
        if reply is not None:
            return reply
        if msg.get("op") == "http":
            return await replay(self.asgi_app, msg)
        return 400, {"error": "bad_request", "message": f"unknown forwarded operation {msg.get('op')!r}"}

    async def _publish(self, event_type: str, data: dict[str, Any]) -> None:
        self.server.events.emit(event_type, None, **data)

    def _node_info(self) -> dict[str, Any]:
        """What ``GET /api/cluster`` shows of this node besides its heartbeat."""
        return {"coap_port": self.coap_port, "http_port": self.http_port, "host": socket.gethostname(),
                "pid": os.getpid(),
                "registered": len(self.server.registry),
                **({"event_relay": dataclasses.asdict(self.relay.stats)} if self.relay is not None else {})}

    @property
    def coap_port(self) -> int:
        return self.server.coap_port

    @property
    def http_port(self) -> int:
        return int(self.api.port) if self.api is not None else 0

    async def start(self) -> None:
        # The package signing key exists from the first start; devices are given its public half.
        self.public_key = await asyncio.to_thread(server_public_key, self.settings.secrets_dir)
        await self.server.start()
        await self.cluster.start()  # first: a second process on this node id is refused for that reason
        if self.settings.store.backend == "postgres":  # a shared store: every node must hold the same secrets
            try:
                await check_shared_secrets(self.server.store.key_fingerprints, self.cluster.node_id,
                                           self.settings.secrets_dir, self.public_key, self.server.credentials.box)
            except SecretsMismatch:
                await self.cluster.stop()
                await self.server.stop()
                raise
        if self.forwarder is not None:
            await self.forwarder.start()
        if self.relay is not None:
            await self.relay.start()
        # The first start (no token ever made) creates an admin token; only its hash is stored.
        self.initial_admin_token = await self.tokens.ensure_initial_admin()
        if self.initial_admin_token is not None:
            await self.audit.record("auth.token.created", actor="system",
                                    detail={"name": "initial-admin", "role": "admin", "reason": "first start"})
        await self.ota.start()
        self.deployer.watch()
        await self.rollouts.start()
        inventory = self.server.events.subscribe(types={"inventory"})
        self._tasks.append(asyncio.create_task(self._dynamic_membership(inventory), name="rollout-membership"))
        if self.settings.mqtt.enabled:
            from lwm2m_server.mqtt_bridge import MqttBridge

            events: Any = self.server.events.subscribe(remote=self.settings.cluster.relay_mqtt)
            if self.forwarder is None:
                self.mqtt = MqttBridge(self.settings.mqtt, events, self.mqtt_command)  # commands only if allowed
            else:  # one of several nodes: its own client id, and each command reaches one node only
                self.mqtt = MqttBridge(self.settings.mqtt, events, self.mqtt_command,
                                       client_id=f"tinymlaas-server-{self.cluster.node_id}",
                                       share_group=f"{self.settings.mqtt.topic_prefix}-servers")
            self._tasks.append(asyncio.create_task(self.mqtt.run(), name="mqtt-bridge"))
        if self._http:
            from lwm2m_server.api.runner import ApiRunner

            http = self.settings.server
            self.api = ApiRunner(self.asgi_app, http.http_host, http.http_port)
            await self.api.start()
        log.info("application_started", coap_port=self.coap_port, http_port=self.http_port,
                 mqtt=self.settings.mqtt.enabled, mqtt_commands=self.settings.mqtt.allow_commands,
                 package_public_key=self.public_key.hex(), first_start=self.initial_admin_token is not None)

    async def _dynamic_membership(self, sub: Any) -> None:
        async for event in sub:
            if event.endpoint:
                try:
                    await self.rollouts.device_registered(event.endpoint)
                except Exception as exc:  # membership is best effort; never kill the listener
                    log.warning("rollout_membership_failed", endpoint=event.endpoint, error=repr(exc))

    async def mqtt_command(self, action: str, rollout_id: str | None, body: Any) -> dict[str, Any]:
        """MQTT commands: ``create`` (body = RolloutSpec fields + optional ``start``) or a rollout action."""
        if action == "create":
            fields = {k: v for k, v in dict(body).items() if k not in ("correlation_id", "start")}
            spec = RolloutSpec.model_validate(fields)
            rollout = await self.rollouts.create(spec, start=bool(body.get("start", False)), actor="mqtt")
            return {"rollout_id": rollout.id, "state": rollout.state.value}
        assert rollout_id is not None
        try:
            rollout = await self.rollouts.action(rollout_id, action, actor="mqtt")
        except KeyError:
            raise ValueError(f"unknown rollout {rollout_id}") from None
        return {"rollout_id": rollout.id, "state": rollout.state.value}

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
            self.api = None
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.rollouts.stop()
        await self.cluster.stop()
        if self.forwarder is not None:
            await self.forwarder.stop()
        if self.relay is not None:
            await self.relay.stop()
        await self.deployer.stop()
        await self.ota.stop()
        await self.server.stop()
        await self.compiling.close()

    async def __aenter__(self) -> Application:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
