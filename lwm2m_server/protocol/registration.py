"""Register / Update request parsing (LwM2M TS Core 6.2; DESIGN §4). Pure: no sockets, no clock.

Each rejection carries the CoAP code the server answers with: 4.00 for anything malformed (missing or empty
``ep``, duplicate or valueless parameters, bad ``lt``/``b``/``ver``/``ct``, non-UTF-8 or oversized or
non-link-format payloads) and 4.12 for an ``lwm2m`` version the server does not support.

Queue mode is ``Q`` in the binding (1.0: ``b=UQ``) or the valueless ``Q`` parameter (1.1); ``binding`` is
stored without the ``Q``. Unknown query parameters are ignored, as the CoRE Resource Directory requires.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from lwm2m_server.protocol.linkformat import Link, LinkFormatError, parse_link_format
from lwm2m_server.protocol.paths import LwM2MPath

SUPPORTED_VERSIONS = frozenset({"1.0", "1.1", "1.2"})
DEFAULT_LIFETIME = 86400
DEFAULT_BINDING = "U"
DEFAULT_VERSION = "1.0"  # LwM2M 1.0 clients may omit lwm2m=
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_QUERY_PARAMS = 32
MAX_ENDPOINT_LENGTH = 255
MAX_LIFETIME = 0xFFFFFFFF  # 32-bit, as Object 1 / the RD allow
LWM2M_RT = "oma.lwm2m"

BAD_REQUEST = "4.00"
PRECONDITION_FAILED = "4.12"

_BINDING = re.compile(r"[UTSNQ]{1,5}")
_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
_DIGITS = re.compile(r"[0-9]{1,10}")
T = TypeVar("T")


class RegistrationError(ValueError):
    """A Register/Update request the server must refuse with ``coap_code``."""

    def __init__(self, message: str, coap_code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.coap_code = coap_code


# ---- shared immutable link sets -------------------------------------------------------------------
# A fleet registers with a handful of distinct link sets: every registration with the same objects, instances or
# content formats shares one immutable value (memory per device), and a payload parsed once is not parsed again.
INTERN_MAX = 4096  # distinct values kept per kind; beyond that, values are simply not shared
PARSE_CACHE_MAX = 1024
PARSE_CACHE_PAYLOAD_BYTES = 2048
_objects_interned: dict[tuple[tuple[int, str | None], ...], Mapping[int, str | None]] = {}
_sets_interned: dict[frozenset[Any], frozenset[Any]] = {}


def intern_objects(objects: Mapping[int, str | None]) -> Mapping[int, str | None]:
    """A read-only object-id -> version mapping in id order, shared between equal ones."""
    key = tuple(sorted(objects.items()))
    shared = _objects_interned.get(key)
    if shared is None:
        shared = MappingProxyType(dict(key))
        if len(_objects_interned) < INTERN_MAX:
            _objects_interned[key] = shared
    return shared


def intern_set(values: frozenset[T]) -> frozenset[T]:
    """``values`` or an equal frozenset already held (instances, content formats)."""
    shared = _sets_interned.get(values)
    if shared is None:
        if len(_sets_interned) < INTERN_MAX:
            _sets_interned[values] = values
        return values
    return shared


_frozen_objects = intern_objects


@dataclass(frozen=True)
class RegistrationRequest:
    endpoint: str
    lifetime: int = DEFAULT_LIFETIME
    lwm2m_version: str = DEFAULT_VERSION
    binding: str = DEFAULT_BINDING
    queue_mode: bool = False
    sms: str | None = None
    root_path: str = "/"
    content_formats: frozenset[int] = frozenset()
    objects: Mapping[int, str | None] = field(default_factory=dict)
    """Object id -> version from ``ver=`` (None when the client did not say, i.e. the object's 1.0)."""
    instances: frozenset[LwM2MPath] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", _frozen_objects(self.objects))


@dataclass(frozen=True)
class UpdateRequest:
    """Only what the Update carried; None means "unchanged"."""

    lifetime: int | None = None
    binding: str | None = None
    queue_mode: bool | None = None
    sms: str | None = None
    objects: Mapping[int, str | None] | None = None
    instances: frozenset[LwM2MPath] | None = None
    root_path: str | None = None
    content_formats: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.objects is not None:
            object.__setattr__(self, "objects", _frozen_objects(self.objects))


# ---- query ------------------------------------------------------------------------------------------
def _split_query(query: Sequence[str]) -> dict[str, str | None]:
    if isinstance(query, str | bytes):
        raise RegistrationError("query must be a sequence of parameters")
    if len(query) > MAX_QUERY_PARAMS:
        raise RegistrationError(f"more than {MAX_QUERY_PARAMS} query parameters")
    params: dict[str, str | None] = {}
    for item in query:
        if not isinstance(item, str):
            raise RegistrationError("query parameters must be text")
        name, sep, value = item.partition("=")
        if not name:
            raise RegistrationError(f"query parameter without a name: {item[:40]!r}")
        if name in params:
            raise RegistrationError(f"duplicate query parameter {name!r}")
        if not item.isprintable():
            raise RegistrationError(f"control character in query parameter {name[:40]!r}")
        params[name] = value if sep else None
    return params


def _required_value(params: Mapping[str, str | None], name: str) -> str | None:
    """The value of ``name``; absent -> None; present but valueless or empty -> 4.00."""
    if name not in params:
        return None
    value = params[name]
    if not value:
        raise RegistrationError(f"query parameter {name!r} needs a value")
    return value


def _lifetime(params: Mapping[str, str | None]) -> int | None:
    raw = _required_value(params, "lt")
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise RegistrationError(f"lifetime {raw[:20]!r} is not a positive integer")
    value = int(raw)
    if not 1 <= value <= MAX_LIFETIME:
        raise RegistrationError(f"lifetime {value} out of range 1..{MAX_LIFETIME}")
    return value


def _binding(params: Mapping[str, str | None]) -> tuple[str, bool] | None:
    """(binding without Q, queue flag from the binding) or None if ``b`` is absent."""
    raw = _required_value(params, "b")
    if raw is None:
        return None
    if not _BINDING.fullmatch(raw) or len(set(raw)) != len(raw):
        raise RegistrationError(f"invalid binding {raw[:20]!r}")
    transports = raw.replace("Q", "")
    if not transports:
        raise RegistrationError("binding has no transport")
    return transports, "Q" in raw


def _queue_param(params: Mapping[str, str | None]) -> bool:
    if "Q" not in params:
        return False
    if params["Q"] is not None:
        raise RegistrationError("Q is a valueless parameter")
    return True


def _sms(params: Mapping[str, str | None]) -> str | None:
    return _required_value(params, "sms")


# ---- payload ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Payload:
    root_path: str
    content_formats: frozenset[int]
    objects: Mapping[int, str | None]
    instances: frozenset[LwM2MPath]
    has_root_link: bool


def _decode(payload: bytes) -> str:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise RegistrationError("payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RegistrationError(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise RegistrationError("payload is not UTF-8") from None


def _content_formats(link: Link) -> frozenset[int]:
    out: set[int] = set()
    for token in link.values("ct"):
        if not _DIGITS.fullmatch(token) or int(token) > 0xFFFF:
            raise RegistrationError(f"invalid content format {token[:20]!r}")
        out.add(int(token))
    if link.has("ct") and not out:
        raise RegistrationError("empty ct attribute")
    return frozenset(out)


def _normalise_root(target: str) -> str:
    if not target.startswith("/"):
        raise RegistrationError(f"root path {target[:40]!r} must be absolute")
    stripped = target.rstrip("/")
    return stripped or "/"


def _relative_segments(target: str, root: str) -> list[str] | None:
    """Segments of ``target`` below ``root``; None when the link is not under the root."""
    prefix = "" if root == "/" else root
    if prefix and not (target == prefix or target.startswith(prefix + "/")):
        return None
    rest = target[len(prefix) :]
    if not rest.startswith("/"):
        return None
    rest = rest[1:]
    if rest.endswith("/"):
        rest = rest[:-1]
    return rest.split("/") if rest else []


def _parse_payload(payload: bytes) -> _Payload:
    if type(payload) is bytes and len(payload) <= PARSE_CACHE_PAYLOAD_BYTES:
        return _parse_payload_cached(payload)  # errors are not cached: a bad payload raises every time
    return _parse_payload_uncached(payload)


def _parse_payload_uncached(payload: bytes) -> _Payload:
    text = _decode(payload)
    try:
        links = parse_link_format(text)
    except LinkFormatError as exc:
        raise RegistrationError(f"payload is not link format: {exc}") from None

    root_link = next((lk for lk in links if LWM2M_RT in lk.values("rt")), None)
    if root_link is None:
        root_link = next((lk for lk in links if lk.target == "/"), None)
    root = _normalise_root(root_link.target) if root_link is not None else "/"
    formats = _content_formats(root_link) if root_link is not None else frozenset()

    objects: dict[int, str | None] = {}
    instances: set[LwM2MPath] = set()
    for link in links:
        if link is root_link:
            continue
        segments = _relative_segments(link.target, root)
        if not segments or not all(s.isascii() and s.isdigit() for s in segments):
            continue  # not an LwM2M object link (another resource the client hosts): ignore it
        try:
            path = LwM2MPath.parse("/" + "/".join(segments))
        except ValueError as exc:
            raise RegistrationError(f"invalid object link <{link.target[:60]}>: {exc}") from None
        version = link.get("ver")
        if link.has("ver") and (version is None or not _VERSION.fullmatch(version)):
            raise RegistrationError(f"invalid object version on <{link.target[:60]}>")
        if path.depth > 2:
            continue  # resource-level links are not part of a registration
        if objects.get(path.object_id) is None:
            objects[path.object_id] = version
        if path.depth == 2:
            instances.add(path)
    return _Payload(
        root, intern_set(formats), intern_objects(objects), intern_set(frozenset(instances)), root_link is not None
    )


_parse_payload_cached = functools.lru_cache(maxsize=PARSE_CACHE_MAX)(_parse_payload_uncached)


# ---- public API -------------------------------------------------------------------------------------
def parse_register(query: Sequence[str], payload: bytes) -> RegistrationRequest:
    """Parse a Register (``POST /rd?ep=..``) into a RegistrationRequest, or raise RegistrationError."""
    params = _split_query(query)
    endpoint = _required_value(params, "ep")
    if endpoint is None:
        raise RegistrationError("missing endpoint name (ep)")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise RegistrationError(f"endpoint name longer than {MAX_ENDPOINT_LENGTH} characters")
    version = DEFAULT_VERSION
    if "lwm2m" in params:
        raw_version = _required_value(params, "lwm2m")
        assert raw_version is not None
        if raw_version not in SUPPORTED_VERSIONS:
            raise RegistrationError(f"unsupported LwM2M version {raw_version[:20]!r}", PRECONDITION_FAILED)
        version = raw_version
    lifetime = _lifetime(params)
    binding = _binding(params)
    queue = _queue_param(params) or (binding is not None and binding[1])
    sms = _sms(params)
    body = _parse_payload(payload)
    return RegistrationRequest(
        endpoint=endpoint,
        lifetime=DEFAULT_LIFETIME if lifetime is None else lifetime,
        lwm2m_version=version,
        binding=DEFAULT_BINDING if binding is None else binding[0],
        queue_mode=queue,
        sms=sms,
        root_path=body.root_path,
        content_formats=body.content_formats,
        objects=body.objects,
        instances=body.instances,
    )


def parse_update(query: Sequence[str], payload: bytes) -> UpdateRequest:
    """Parse an Update (``POST /rd/<id>``); fields the client did not send are None."""
    params = _split_query(query)
    lifetime = _lifetime(params)
    binding = _binding(params)
    q_param = _queue_param(params)
    # None = unchanged; an explicit b= restates the mode, a bare Q switches queue mode on.
    queue: bool | None = (binding[1] or q_param) if binding is not None else (True if q_param else None)
    sms = _sms(params)
    if not _decode(payload):
        return UpdateRequest(lifetime=lifetime, binding=None if binding is None else binding[0],
                             queue_mode=queue, sms=sms)
    body = _parse_payload(payload)
    return UpdateRequest(
        lifetime=lifetime,
        binding=None if binding is None else binding[0],
        queue_mode=queue,
        sms=sms,
        objects=body.objects,
        instances=body.instances,
        root_path=body.root_path if body.has_root_link else None,
        content_formats=body.content_formats if body.has_root_link else None,
    )
