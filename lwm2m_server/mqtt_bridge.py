"""MQTT bridge (aiomqtt): server events out, rollout commands in.

Out: each server event becomes a JSON message on ``{prefix}/devices/{ep}/{kind}`` (registered, updated,
deregistered, expired, notify, send, ota) or ``{prefix}/rollouts/{id}/progress``.
In: ``{prefix}/commands/rollouts/create`` and ``{prefix}/commands/rollouts/{id}/{action}``; the reply goes to
``<command topic>/reply`` carrying the request's ``correlation_id``.

Commands are accepted only with ``[mqtt] allow_commands = true`` (default off: whoever may publish on the
broker could otherwise start a fleet rollout); without it the bridge only publishes. The connection uses
``username``/``password`` and TLS (``tls``, ``ca_file``, ``cert_file``/``key_file`` for mutual TLS) from config.

The broker is optional to the server's work: events wait in a bounded buffer (oldest dropped first, and
counted) while the broker is away, and the bridge reconnects with capped exponential back-off.

Several nodes on one broker (a cluster) each connect under their own client id and subscribe to the commands
through one shared subscription (``$share/<group>/...``): the broker hands each command to one node only, so
a ``create`` makes one rollout, not one per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt

from lwm2m_server.config import MqttSettings
from lwm2m_server.events import Event
from lwm2m_server.logging import get_logger

log = get_logger(__name__)

CommandHandler = Callable[[str, str | None, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
"""``handler(action, rollout_id, body) -> reply``; action is "create" or a rollout action; raises ValueError."""

_DEVICE_TOPICS = {
    "registered": "registered",
    "updated": "updated",
    "deregistered": "deregistered",
    "expired": "deregistered",
    "notification": "notify",
    "send": "send",
    "sleeping": "presence",
    "awake": "presence",
}


class EventLike(Protocol):
    type: str
    endpoint: str | None
    data: Mapping[str, Any]


def topic_for(prefix: str, event: EventLike) -> str | None:
    """The MQTT topic for a server event, or None for events the bridge does not publish."""
    if event.type.startswith("rollout."):
        rollout_id = event.data.get("rollout_id") or event.data.get("id")
        return f"{prefix}/rollouts/{rollout_id}/progress" if rollout_id is not None else None
    if not event.endpoint:
        return None
    if event.type in _DEVICE_TOPICS:
        return f"{prefix}/devices/{event.endpoint}/{_DEVICE_TOPICS[event.type]}"
    if event.type.startswith("ota."):
        return f"{prefix}/devices/{event.endpoint}/ota"
    return None


def parse_command_topic(prefix: str, topic: str) -> tuple[str, str | None] | None:
    """``(action, rollout_id)`` for a command topic, or None if it is not one we serve."""
    parts = topic.split("/")
    base = prefix.split("/")
    if parts[: len(base)] != base or parts[len(base) : len(base) + 2] != ["commands", "rollouts"]:
        return None
    rest = parts[len(base) + 2 :]
    if rest == ["create"]:
        return "create", None
    if len(rest) == 2 and rest[0] and rest[1] in {"start", "pause", "resume", "cancel", "retry"}:
        return rest[1], rest[0]
    return None


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context for the broker connection, or None for plain TCP (``tls`` off and no files given)."""
    if not (settings.tls or settings.ca_file or settings.cert_file):
        return None
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.cert_file:
        context.load_cert_chain(settings.cert_file, settings.key_file or None)
    return context


def client_options(settings: MqttSettings) -> dict[str, Any]:
    """``aiomqtt.Client`` keyword arguments for the login and TLS settings."""
    options: dict[str, Any] = {}
    if settings.username:
        options["username"] = settings.username
        options["password"] = settings.password.get_secret_value() or None
    context = tls_context(settings)
    if context is not None:
        options["tls_context"] = context
    return options


@dataclass
class BridgeStats:
    published: int = 0
    dropped: int = 0
    connects: int = 0
    commands: int = 0
    connected: bool = False
    buffered: int = 0
    last_error: str | None = field(default=None)


class MqttBridge:
    def __init__(
        self,
        settings: MqttSettings,
        events: AsyncIterator[EventLike],
        commands: CommandHandler | None = None,
        *,
        client_id: str = "tinymlaas-server",
        max_backoff_s: float = 10.0,
        share_group: str | None = None,
    ) -> None:
        self.settings = settings
        self._share_group = share_group
        self._events = events
        self._commands = commands if settings.allow_commands else None
        self._client_id = client_id
        self._max_backoff = max_backoff_s
        self._buffer: deque[tuple[str, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self.stats = BridgeStats()
        self.connected = asyncio.Event()

    # --- events in, buffered -------------------------------------------------------------------------
    def enqueue(self, topic: str, payload: Mapping[str, Any]) -> None:
        if len(self._buffer) >= self.settings.max_buffer:
            self._buffer.popleft()
            self.stats.dropped += 1
        self._buffer.append((topic, json.dumps(payload, default=str, separators=(",", ":")).encode()))
        self.stats.buffered = len(self._buffer)
        self._wakeup.set()

    async def _pump_events(self) -> None:
        async for event in self._events:
            topic = topic_for(self.settings.topic_prefix, event)
            if topic is not None:
                origin: dict[str, str] = {"node": event.node} if isinstance(event, Event) and event.node else {}
                self.enqueue(topic, {"type": event.type, "endpoint": event.endpoint, **dict(event.data), **origin})

    # --- connection loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled: pump events into the buffer and keep a broker session alive."""
        pump = asyncio.create_task(self._pump_events(), name="mqtt-event-pump")
        backoff = 0.2
        try:
            while True:
                connects = self.stats.connects
                try:
                    await self._session()
                except aiomqtt.MqttError as exc:
                    self.stats.last_error = str(exc)
                    log.warning("mqtt.disconnected", error=str(exc), retry_in_s=round(backoff, 2))
                finally:
                    self.stats.connected = False
                    self.connected.clear()
                if self.stats.connects > connects:  # the session had been up: start back-off afresh
                    backoff = 0.2
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _session(self) -> None:
        async with aiomqtt.Client(
            self.settings.host, self.settings.port, identifier=self._client_id, timeout=5.0, keepalive=10,
            **client_options(self.settings),
        ) as client:
            self.stats.connects += 1
            self.stats.connected = True
            self.connected.set()
            log.info("mqtt.connected", host=self.settings.host, port=self.settings.port)
            prefix = self.settings.topic_prefix
            if self._commands is not None:
                share = f"$share/{self._share_group}/" if self._share_group else ""
                await client.subscribe(f"{share}{prefix}/commands/rollouts/#", qos=1)
            # The message loop runs even without commands: it is what notices a lost connection.
            tasks = [asyncio.create_task(self._publisher(client)), asyncio.create_task(self._command_loop(client))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for t in done:
                    t.result()
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await t

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            while self._buffer:
                topic, payload = self._buffer[0]
                await client.publish(topic, payload, qos=1)
                self._buffer.popleft()  # only after the broker took it: nothing lost on a disconnect
                self.stats.published += 1
                self.stats.buffered = len(self._buffer)
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _command_loop(self, client: aiomqtt.Client) -> None:
        prefix = self.settings.topic_prefix
        async for message in client.messages:
            topic = str(message.topic)
            if self._commands is None or topic.endswith("/reply"):
                continue
            parsed = parse_command_topic(prefix, topic)
            reply_topic = f"{topic}/reply"
            body: Mapping[str, Any] = {}
            try:
                raw = message.payload if isinstance(message.payload, bytes | bytearray) else b""
                loaded = json.loads(raw or b"{}")
                if not isinstance(loaded, dict):
                    raise ValueError("command payload must be a JSON object")
                body = loaded
                if parsed is None:
                    raise ValueError(f"unknown command topic {topic}")
                self.stats.commands += 1
                result = await self._commands(parsed[0], parsed[1], body)
                reply: dict[str, Any] = {"ok": True, **dict(result)}
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": str(exc)}
            reply["correlation_id"] = body.get("correlation_id") if isinstance(body, Mapping) else None
            await client.publish(reply_topic, json.dumps(reply, default=str).encode(), qos=1)
