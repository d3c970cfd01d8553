"""Client-initiated bootstrap (LwM2M TS Core 6.1.3, 5.2.7) as a pure state machine: no sockets, no clock.

A device sends Bootstrap-Request ``POST /bs?ep=<name>`` and the server answers 2.04. The server then drives
the device through the steps :func:`plan` returns: Bootstrap-Delete ``/0`` and ``/1`` (when the config says
``delete_first``), Bootstrap-Write of one Security instance ``/0/1`` and one Server instance ``/1/0`` (TLV),
and Bootstrap-Finish ``POST /bs``. :class:`BootstrapSequence` walks those steps by the device's answers.

Resource ids are the OMA ones and are checked against the object model (``objects/0.xml``, ``objects/1.xml``)
when a plan is made, so a wrong id cannot reach a device.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lwm2m_server.protocol.codecs import ContentFormat
from lwm2m_server.protocol.codecs.tlv import TlvCodec
from lwm2m_server.protocol.model import Content, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.protocol.security import SecurityMode

BOOTSTRAP_URI_PATH = ("bs",)
SECURITY_OBJECT = 0
SERVER_OBJECT = 1
SECURITY_INSTANCE = 1  # instance 0 is left to the device's own bootstrap-server account
SERVER_INSTANCE = 0

# Object 0 (Security) resources written
SEC_SERVER_URI = 0
SEC_BOOTSTRAP_SERVER = 1
SEC_MODE = 2
SEC_IDENTITY = 3
SEC_SERVER_PUBLIC_KEY = 4
SEC_SECRET_KEY = 5
SEC_SHORT_SERVER_ID = 10
# Object 1 (Server) resources written
SRV_SHORT_SERVER_ID = 0
SRV_LIFETIME = 1
SRV_BINDING = 7

_EXPECTED_TYPES: dict[tuple[int, int], ResourceType] = {
    (SECURITY_OBJECT, SEC_SERVER_URI): ResourceType.STRING,
    (SECURITY_OBJECT, SEC_BOOTSTRAP_SERVER): ResourceType.BOOLEAN,
    (SECURITY_OBJECT, SEC_MODE): ResourceType.INTEGER,
    (SECURITY_OBJECT, SEC_IDENTITY): ResourceType.OPAQUE,
    (SECURITY_OBJECT, SEC_SERVER_PUBLIC_KEY): ResourceType.OPAQUE,
    (SECURITY_OBJECT, SEC_SECRET_KEY): ResourceType.OPAQUE,
    (SECURITY_OBJECT, SEC_SHORT_SERVER_ID): ResourceType.INTEGER,
    (SERVER_OBJECT, SRV_SHORT_SERVER_ID): ResourceType.INTEGER,
    (SERVER_OBJECT, SRV_LIFETIME): ResourceType.INTEGER,
    (SERVER_OBJECT, SRV_BINDING): ResourceType.STRING,
}

SECURITY_MODES = {"psk": SecurityMode.PSK, "nosec": SecurityMode.NOSEC}
MAX_LIFETIME = 0x7FFFFFFF
_BINDING = re.compile(r"U|UQ|T|TQ|S|SQ|US|UQS")
_ENDPOINT = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
_URI = re.compile(r"(coaps?)://([^/?#\s]+)(/[^?#\s]*)?")


class BootstrapError(ValueError):
    """A bootstrap config or request the server refuses; ``coap_code`` is what a device is answered."""

    def __init__(self, message: str, coap_code: str = "4.00") -> None:
        super().__init__(message)
        self.coap_code = coap_code


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """What the bootstrap server provisions on one endpoint."""

    endpoint: str
    server_uri: str
    security_mode: str = "psk"
    lifetime: int = 300
    binding: str = "U"
    ssid: int = 1
    delete_first: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint, "server_uri": self.server_uri, "security_mode": self.security_mode,
            "lifetime": self.lifetime, "binding": self.binding, "ssid": self.ssid, "delete_first": self.delete_first,
        }


_FIELDS = ("endpoint", "server_uri", "security_mode", "lifetime", "binding", "ssid", "delete_first")


def _int(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BootstrapError(f"{name} must be an integer")
    if not low <= value <= high:
        raise BootstrapError(f"{name} must be {low}..{high}, not {value}")
    return value


def parse_config(data: Mapping[str, Any]) -> BootstrapConfig:
    """A :class:`BootstrapConfig` from JSON-like input; :class:`BootstrapError` says what is wrong."""
    if not isinstance(data, Mapping):
        raise BootstrapError("bootstrap config must be an object")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise BootstrapError(f"unknown bootstrap config field(s): {', '.join(unknown)}")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not _ENDPOINT.fullmatch(endpoint):
        raise BootstrapError("endpoint must be 1..255 printable characters")
    mode = data.get("security_mode", "psk")
    if not isinstance(mode, str) or mode not in SECURITY_MODES:
        raise BootstrapError(f"security_mode must be one of {', '.join(SECURITY_MODES)}")
    uri = data.get("server_uri")
    match = _URI.fullmatch(uri) if isinstance(uri, str) else None
    if match is None:
        raise BootstrapError("server_uri must be coap://host[:port] or coaps://host[:port]")
    if (match.group(1) == "coaps") != (mode == "psk"):
        raise BootstrapError(f"security_mode {mode} needs a {'coaps' if mode == 'psk' else 'coap'}:// server_uri")
    binding = data.get("binding", "U")
    if not isinstance(binding, str) or not _BINDING.fullmatch(binding):
        raise BootstrapError("binding must be one of U, UQ, T, TQ, S, SQ, US, UQS")
    delete_first = data.get("delete_first", True)
    if not isinstance(delete_first, bool):
        raise BootstrapError("delete_first must be true or false")
    return BootstrapConfig(
        endpoint=endpoint, server_uri=str(uri), security_mode=str(mode),
        lifetime=_int(data, "lifetime", 300, 1, MAX_LIFETIME), binding=binding,
        ssid=_int(data, "ssid", 1, 1, 65534), delete_first=delete_first,
    )


def parse_bootstrap_request(query: Sequence[str]) -> str:
    """The endpoint name of a Bootstrap-Request's query (``ep=`` once, ``pct=`` allowed); 4.00 when malformed."""
    endpoint: str | None = None
    for item in query:
        name, sep, value = item.partition("=")
        if name == "ep":
            if endpoint is not None or not sep or not _ENDPOINT.fullmatch(value):
                raise BootstrapError("Bootstrap-Request needs one non-empty ep=")
            endpoint = value
    if endpoint is None:
        raise BootstrapError("Bootstrap-Request without ep=")
    return endpoint


@dataclass(frozen=True, slots=True)
class PskMaterial:
    identity: str
    key: bytes


@dataclass(frozen=True, slots=True)
class BootstrapStep:
    """One server→device request: CoAP ``method`` on ``uri_path`` with an optional TLV payload."""

    name: str  # "delete" | "write" | "finish"
    method: str  # "DELETE" | "PUT" | "POST"
    uri_path: tuple[str, ...]
    payload: bytes = b""
    content_format: int | None = None

    @property
    def success(self) -> frozenset[str]:
        return frozenset({"2.02"}) if self.method == "DELETE" else frozenset({"2.04"})


def _check_model(model: ObjectRegistry, content: Content) -> None:
    for path in content:
        assert path.object_id is not None and path.resource_id is not None
        expected = _EXPECTED_TYPES[(path.object_id, path.resource_id)]
        rdef = model.resource(path)
        if rdef is None or rdef.type is not expected:
            raise BootstrapError(f"object model disagrees on {path}: expected a {expected.value} resource")


def security_content(config: BootstrapConfig, psk: PskMaterial | None) -> Content:
    base = LwM2MPath.from_ids(SECURITY_OBJECT, SECURITY_INSTANCE)
    mode = SECURITY_MODES[config.security_mode]
    if (mode is SecurityMode.PSK) != (psk is not None):
        raise BootstrapError("a psk config needs PSK material and a nosec config none")
    values: dict[int, Value] = {
        SEC_SERVER_URI: config.server_uri,
        SEC_BOOTSTRAP_SERVER: False,
        SEC_MODE: int(mode),
        SEC_IDENTITY: psk.identity.encode() if psk else b"",
        SEC_SERVER_PUBLIC_KEY: b"",
        SEC_SECRET_KEY: psk.key if psk else b"",
        SEC_SHORT_SERVER_ID: config.ssid,
    }
    return {base.child(rid): value for rid, value in values.items()}


def server_content(config: BootstrapConfig) -> Content:
    base = LwM2MPath.from_ids(SERVER_OBJECT, SERVER_INSTANCE)
    values: dict[int, Value] = {
        SRV_SHORT_SERVER_ID: config.ssid, SRV_LIFETIME: config.lifetime, SRV_BINDING: config.binding,
    }
    return {base.child(rid): value for rid, value in values.items()}


def plan(config: BootstrapConfig, psk: PskMaterial | None, model: ObjectRegistry) -> list[BootstrapStep]:
    """The requests that provision ``config`` (with ``psk`` for a psk config) on a device, in order."""
    codec = TlvCodec()
    steps: list[BootstrapStep] = []
    if config.delete_first:
        steps += [BootstrapStep("delete", "DELETE", (str(SECURITY_OBJECT),)),
                  BootstrapStep("delete", "DELETE", (str(SERVER_OBJECT),))]
    for content, obj, inst in ((security_content(config, psk), SECURITY_OBJECT, SECURITY_INSTANCE),
                               (server_content(config), SERVER_OBJECT, SERVER_INSTANCE)):
        _check_model(model, content)
        path = LwM2MPath.from_ids(obj, inst)
        steps.append(BootstrapStep("write", "PUT", path.uri_path, codec.encode(path, content, model),
                                   int(ContentFormat.TLV)))
    steps.append(BootstrapStep("finish", "POST", BOOTSTRAP_URI_PATH))
    return steps


class State(Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BootstrapSequence:
    """Walks a plan: :meth:`current` is the request to send, :meth:`answer` takes the device's response code."""

    def __init__(self, steps: Sequence[BootstrapStep]) -> None:
        if not steps:
            raise ValueError("empty bootstrap plan")
        self._steps = tuple(steps)
        self._index = 0
        self.state = State.RUNNING
        self.error: str | None = None

    @property
    def current(self) -> BootstrapStep | None:
        return self._steps[self._index] if self.state is State.RUNNING else None

    def answer(self, code: str) -> State:
        step = self.current
        if step is None:
            raise RuntimeError(f"bootstrap sequence is {self.state.value}")
        if code in step.success:
            self._index += 1
            if self._index == len(self._steps):
                self.state = State.DONE
        else:
            self.state = State.FAILED
            self.error = f"{step.method} /{'/'.join(step.uri_path)} answered {code}"
        return self.state

    def fail(self, reason: str) -> None:
        """No answer (timeout, session gone): the sequence ends failed."""
        self.state = State.FAILED
        self.error = reason
