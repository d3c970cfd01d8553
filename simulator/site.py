"""The device's CoAP face: maps LwM2M requests (read, write, execute, discover, create, delete,
write-attributes, observe, read-composite, write-composite) onto the ObjectStore, with content-format negotiation.

One aiocoap resource sits at the root of the device's context and parses every Uri-Path itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiocoap import Code, Message, error, interfaces
from aiocoap.resource import PathCapable, Resource

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol import codecs
from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.composite import decode_composite_content, decode_composite_paths, encode_composite
from simulator.objects import ObjectStore
from simulator.observe import Observations, parse_attributes
from simulator.values import LwM2MError

if TYPE_CHECKING:
    from simulator.firmware import Firmware

log = get_logger(__name__)

TEXT, LINK, OPAQUE, SENML_JSON, SENML_CBOR, TLV, LWM2M_CBOR = 0, 40, 42, 110, 112, 11542, 11544

FORMATS_1_0 = frozenset({TEXT, LINK, OPAQUE, TLV})
FORMATS_1_1 = frozenset({TEXT, LINK, OPAQUE, SENML_JSON, SENML_CBOR, TLV})
FORMATS_1_2 = FORMATS_1_1 | {LWM2M_CBOR}
COMPOSITE_ANSWERS = frozenset({SENML_JSON, SENML_CBOR, LWM2M_CBOR})


def coap_code(code: str) -> Code:
    """Map "4.04" to Code.NOT_FOUND."""
    klass, _, detail = code.partition(".")
    return Code((int(klass) << 5) | int(detail))


def error_response(code: str, message: str = "") -> Message:
    return Message(code=coap_code(code), payload=message.encode()[:128])


class DeviceSite(Resource, interfaces.ObservableResource, PathCapable):
    """Root resource of a simulated device."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        lwm2m_version: str,
        firmware: Firmware | None = None,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.lwm2m_version = lwm2m_version
        self.formats = {"1.0": FORMATS_1_0, "1.2": FORMATS_1_2}.get(lwm2m_version, FORMATS_1_1)
        self.default_format = TLV if lwm2m_version == "1.0" else SENML_CBOR
        self.firmware = firmware
        self.observations = Observations(store)
        self._on_request = on_request
        self.requests = 0

    # ---- aiocoap plumbing ----------------------------------------------------------------------
    async def needs_blockwise_assembly(self, request: Message) -> bool:
        # Object 5 Package writes do their own Block1 handling (SZX step-down, 4.13, progress state).
        return not (self.firmware is not None and tuple(request.opt.uri_path) == ("5", "0", "0"))

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        if request.code == Code.FETCH and tuple(request.opt.uri_path) in ((), ("",)):
            self._observe_composite(request, serverobservation)
            return
        if request.code != Code.GET or request.opt.accept == LINK:
            return
        try:
            path = LwM2MPath.parse("/" + "/".join(request.opt.uri_path))
            self.store.read(path)
        except (ValueError, LwM2MError):
            return
        self.observations.add(path, serverobservation)

    async def render(self, request: Message) -> Message:
        self.requests += 1
        if self._on_request is not None:
            self._on_request()
        try:
            return await self._dispatch(request)
        except LwM2MError as exc:
            return error_response(exc.code, exc.message)
        except CodecError as exc:
            return error_response("4.00", str(exc))
        except error.RenderableError:
            raise
        except Exception as exc:  # a bug must not kill the device; answer 5.00 like firmware would
            log.exception("device.render_failed", path=list(request.opt.uri_path))
            return error_response("5.00", type(exc).__name__)

    # ---- dispatch ------------------------------------------------------------------------------
    async def _dispatch(self, request: Message) -> Message:
        segments = tuple(request.opt.uri_path)
        if not segments or segments == ("",):
            return await self._root(request)
        try:
            path = LwM2MPath.parse("/" + "/".join(segments))
        except ValueError:
            return error_response("4.04", "not an LwM2M path")
        code = request.code
        if code == Code.GET:
            if request.opt.accept == LINK:
                return self._discover(path)
            return self._read(path, request.opt.accept)
        if code == Code.PUT:
            if self._is_attribute_write(request):
                self.observations.set_attributes(path, parse_attributes(request.opt.uri_query))
                return Message(code=Code.CHANGED)
            if self.firmware is not None and path == LwM2MPath(5, 0, 0):
                return await self.firmware.handle_push(request)
            return await self._write(path, request, replace=True)
        if code == Code.POST:
            return await self._post(path, request)
        if code == Code.DELETE:
            self.store.delete(path)
            return Message(code=Code.DELETED)
        return error_response("4.05", f"{code} not allowed on {path}")

    async def _root(self, request: Message) -> Message:
        if request.code == Code.FETCH:
            return self._read_composite(request)
        if request.code == Code.iPATCH:
            return await self._write_composite(request)
        if request.code == Code.GET and request.opt.accept == LINK:
            links = [f"</{oid}>" for oid in self.store.objects() if oid != 0]
            return Message(code=Code.CONTENT, payload=",".join(links).encode(), content_format=LINK)
        return error_response("4.05", "operation not allowed on /")

    @staticmethod
    def _is_attribute_write(request: Message) -> bool:
        return bool(request.opt.uri_query) and not request.payload and request.opt.content_format is None

    async def _post(self, path: LwM2MPath, request: Message) -> Message:
        if path.object_instance is None:
            content = self._decode(path, request)
            iid = self.store.create(path, content)
            return Message(code=Code.CREATED, location_path=(str(path.object_id), str(iid)))
        if path.resource_id is None:
            return await self._write(path, request, replace=False)
        res = self.store.model.resource(path)
        if res is not None and res.executable:
            arguments = request.payload.decode("utf-8", errors="replace")
            await self.store.execute(path, arguments)
            return Message(code=Code.CHANGED)
        if res is not None and res.multiple and path.resource_instance is None and res.writable:
            return await self._write(path, request, replace=False)
        if res is None:
            raise LwM2MError("4.04", f"{path} is not defined")
        raise LwM2MError("4.05", f"POST not allowed on {path}")

    # ---- operations ----------------------------------------------------------------------------
    def _negotiate(self, path: LwM2MPath, accept: int | None) -> int:
        if accept is None:
            return self.default_format
        if accept not in self.formats or accept == LINK:
            raise LwM2MError("4.06", f"content format {accept} not supported")
        return int(accept)

    def _read(self, path: LwM2MPath, accept: int | None) -> Message:
        content_format = self._negotiate(path, accept)
        content = self.store.read(path)
        try:
            payload = codecs.encode(content_format, path, content, self.store.model)
        except CodecError as exc:
            raise LwM2MError("4.06", f"cannot represent {path} as {content_format}: {exc}") from exc
        return Message(code=Code.CONTENT, payload=payload, content_format=content_format)

    def _decode(self, path: LwM2MPath, request: Message) -> Content:
        content_format = request.opt.content_format
        if content_format is None:
            content_format = TEXT if path.resource_id is not None and self.lwm2m_version != "1.0" else TLV
        if int(content_format) not in self.formats or int(content_format) == LINK:
            raise LwM2MError("4.15", f"content format {int(content_format)} not supported")
        return codecs.decode(int(content_format), path, request.payload, self.store.model)

    async def _write(self, path: LwM2MPath, request: Message, *, replace: bool) -> Message:
        content = self._decode(path, request)
        self.store.write(path, content, replace=replace)
        return Message(code=Code.CHANGED)

    def _discover(self, path: LwM2MPath) -> Message:
        links = self.observations.discover_links(path)
        return Message(code=Code.CONTENT, payload=",".join(links).encode(), content_format=LINK)

    def _read_composite(self, request: Message) -> Message:
        if self.lwm2m_version == "1.0":
            raise LwM2MError("4.05", "read-composite is LwM2M 1.1")
        in_format = request.opt.content_format
        if in_format is None or int(in_format) not in (SENML_JSON, SENML_CBOR):
            raise LwM2MError("4.15", "read-composite needs a SenML request")
        out_format = int(request.opt.accept) if request.opt.accept is not None else int(in_format)
        if out_format not in COMPOSITE_ANSWERS & self.formats:
            raise LwM2MError("4.06", "read-composite answers in SenML (or LwM2M-CBOR for 1.2)")
        paths = decode_composite_paths(int(in_format), request.payload)
        parts: list[tuple[LwM2MPath, Content]] = []
        for p in paths:
            try:
                parts.append((p, self.store.read(p)))
            except LwM2MError as exc:
                if exc.code != "4.04":
                    raise
        payload = encode_composite(out_format, parts, self.store.model)
        return Message(code=Code.CONTENT, payload=payload, content_format=out_format)

    def _observe_composite(self, request: Message, serverobservation: Any) -> None:
        """Observe-Composite: aiocoap re-renders the FETCH (a Read-Composite) for every notification."""
        in_format = request.opt.content_format
        if self.lwm2m_version == "1.0" or in_format is None or int(in_format) not in (SENML_JSON, SENML_CBOR):
            return
        try:
            paths = decode_composite_paths(int(in_format), request.payload)
        except LwM2MError:
            return
        self.observations.add_composite(tuple(paths), serverobservation)

    async def _write_composite(self, request: Message) -> Message:
        """Partial-update writes of every instance the content names, atomically (4.00 bad payload, 4.04 absent,
        4.05 read-only: nothing is written)."""
        if self.lwm2m_version == "1.0":
            raise LwM2MError("4.05", "write-composite is LwM2M 1.1")
        in_format = request.opt.content_format
        if in_format is None or int(in_format) not in COMPOSITE_ANSWERS & self.formats:
            raise LwM2MError("4.15", "write-composite needs a SenML (or LwM2M-CBOR for 1.2) request")
        content = decode_composite_content(int(in_format), request.payload, self.store.model)
        if not content:
            raise LwM2MError("4.00", "write-composite without values")
        self.store.write_composite(content)  # all or nothing: one bad path and the device is untouched
        return Message(code=Code.CHANGED)


__all__ = ["FORMATS_1_0", "FORMATS_1_1", "DeviceSite", "coap_code", "error_response"]
