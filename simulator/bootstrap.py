"""Client-initiated bootstrap for a simulated device: Bootstrap-Request ``POST /bs?ep=`` to the bootstrap
server (plain, or over DTLS with the factory bootstrap PSK), then serve its Bootstrap-Delete (``/``, ``/0``,
``/1``), Bootstrap-Write (``/0/<i>``, ``/1/<i>`` in TLV) and Bootstrap-Finish (``POST /bs``). Finish checks that
a (non-bootstrap) Security instance and the Server instance with its Short Server ID were written (else 4.06);
the device then registers to the written server URI with the written credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import Any

from aiocoap import POST, Code, Message
from aiocoap.resource import PathCapable, Resource

from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.codecs.tlv import TlvCodec
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.dtls import create_dtls_context
from simulator.site import error_response
from simulator.udp import create_context, response_within

BOOTSTRAP_TIMEOUT_S = 30.0
TLV_FORMATS = (11542, 1542)
PSK, NOSEC = 0, 3


class BootstrapFailed(Exception):
    """The bootstrap server refused, did not finish, or wrote something unusable."""


@dataclass(frozen=True)
class Provisioned:
    server_uri: str
    security_mode: int
    identity: str
    key: bytes
    ssid: int
    lifetime: int
    binding: str


class BootstrapSite(Resource, PathCapable):
    """What a device exposes to the bootstrap server: objects 0 and 1, and ``/bs`` for Finish."""

    def __init__(self, model: ObjectRegistry) -> None:
        super().__init__()
        self.model = model
        self.objects: dict[int, dict[int, Content]] = {0: {}, 1: {}}
        self.finished: asyncio.Future[Provisioned] = asyncio.get_running_loop().create_future()
        self.log: list[tuple[str, str]] = []  # (method, path) in arrival order

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return True

    async def render(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        self.log.append((str(request.code), "/" + "/".join(path)))
        try:
            if request.code == Code.DELETE:
                return self._delete(path)
            if request.code == Code.PUT:
                return self._write(path, request)
            if request.code == Code.POST and path == ("bs",):
                return self._finish()
        except (CodecError, ValueError) as exc:
            return error_response("4.00", str(exc))
        return error_response("4.05", "not a bootstrap operation")

    def _delete(self, path: tuple[str, ...]) -> Message:
        targets = [0, 1] if path in ((), ("",)) else [int(path[0])] if len(path) == 1 else None
        if targets is None or any(t not in self.objects for t in targets):
            return error_response("4.00", "Bootstrap-Delete of / /0 /1 only")
        for t in targets:
            self.objects[t].clear()
        return Message(code=Code.DELETED)

    def _write(self, path: tuple[str, ...], request: Message) -> Message:
        if len(path) != 2 or not path[0].isdigit() or int(path[0]) not in self.objects:
            return error_response("4.00", "Bootstrap-Write of /0/<i> or /1/<i> only")
        if request.opt.content_format not in TLV_FORMATS:
            return error_response("4.15", "TLV only")
        target = LwM2MPath.from_ids(int(path[0]), int(path[1]))
        content = TlvCodec().decode(target, request.payload, self.model)
        assert target.object_instance is not None
        self.objects[target.object_id][target.object_instance] = content
        return Message(code=Code.CHANGED)

    def _finish(self) -> Message:
        try:
            result = self._provisioned()
        except (KeyError, TypeError, ValueError) as exc:
            return error_response("4.06", f"bootstrap incomplete: {exc}")
        if not self.finished.done():
            self.finished.set_result(result)
        return Message(code=Code.CHANGED)

    def _provisioned(self) -> Provisioned:
        def res(obj: int, inst: int, rid: int) -> Any:
            return self.objects[obj][inst][LwM2MPath.from_ids(obj, inst, rid)]

        security = [i for i in self.objects[0] if res(0, i, 1) is False]
        if not security:
            raise ValueError("no LwM2M server Security instance")
        sec = security[0]
        ssid = int(res(0, sec, 10))
        server = [i for i in self.objects[1] if res(1, i, 0) == ssid]
        if not server:
            raise ValueError(f"no Server instance for SSID {ssid}")
        srv = server[0]
        return Provisioned(str(res(0, sec, 0)), int(res(0, sec, 2)), bytes(res(0, sec, 3)).decode(),
                           bytes(res(0, sec, 5)), ssid, int(res(1, srv, 1)), str(res(1, srv, 7)))


async def bootstrap(endpoint: str, bootstrap_uri: str, *, identity: str = "", key: bytes = b"",
                    model: ObjectRegistry | None = None, timeout: float = BOOTSTRAP_TIMEOUT_S) -> Provisioned:
    """Run one client-initiated bootstrap; ``identity``/``key``: the factory bootstrap PSK (needed for coaps)."""
    site = BootstrapSite(model or ObjectRegistry.default())
    if bootstrap_uri.startswith("coaps://"):
        if not (identity and key):
            raise BootstrapFailed(f"{endpoint}: a coaps:// bootstrap server needs the factory bootstrap PSK")
        context = await create_dtls_context(site, bootstrap_uri, identity, key)
    else:
        context = await create_context(site, "127.0.0.1", 0)
    try:
        request = Message(code=POST, uri=bootstrap_uri.rstrip("/"))
        request.opt.uri_path = ("bs",)
        request.opt.uri_query = (f"ep={endpoint}",)
        response = await response_within(context.request(request), timeout)
        session = response.remote  # noqa: F841  # aiocoap's DTLS pool is weak: hold the session until Finish
        if response.code != Code.CHANGED:
            raise BootstrapFailed(f"{endpoint}: Bootstrap-Request answered {response.code}")
        try:
            return await asyncio.wait_for(asyncio.shield(site.finished), timeout)
        except TimeoutError:
            raise BootstrapFailed(f"{endpoint}: no Bootstrap-Finish in {timeout:g}s") from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.shutdown(), 5.0)


async def start_bootstrapped(device: SimulatedDevice, bootstrap_uri: str, *, wait_registered: bool = True,
                             timeout: float = BOOTSTRAP_TIMEOUT_S) -> Provisioned:
    """Bootstrap ``device`` (its config's PSK is the factory bootstrap key), then register where it was told."""
    cfg = device.config
    got = await bootstrap(cfg.endpoint, bootstrap_uri, identity=cfg.psk_identity, key=cfg.psk_key,
                          model=device.model, timeout=timeout)
    if got.binding not in ("U", "UQ"):
        raise BootstrapFailed(f"{cfg.endpoint}: binding {got.binding!r} is not supported by the simulator")
    secure = got.security_mode == PSK
    device.config = replace(cfg, psk_identity=got.identity if secure else "", psk_key=got.key if secure else b"",
                            lifetime=got.lifetime, binding=got.binding)  # type: ignore[arg-type]
    await device.start(got.server_uri, wait_registered=wait_registered)
    return got
