"""The asking node's side of a device-scoped REST call (``/api/devices/{ep}/...``) for a device whose CoAP
session another node holds: after the guard has checked the caller's token, the request goes as it came, with
the caller's identity, to the owning node (:mod:`lwm2m_server.cluster.forwarding`), which replays it through its
own app (:mod:`lwm2m_server.cluster.replay`); its status, headers and body are this node's answer. An owner that
does not answer in time, or is dead, is 504 ``owner_unreachable``; a request too big for one notification is 413.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lwm2m_server.api.errors import ApiError
from lwm2m_server.cluster.forwarding import OwnerUnreachable
from lwm2m_server.cluster.replay import FORWARDED_KEY, KEPT_HEADERS, pack, unpack
from lwm2m_server.services import Services

DEVICE_PATH = re.compile(r"^/api/devices/(?P<endpoint>[^/]+)/(?P<rest>.+)$")
STORE_ONLY = frozenset({"data"})  # sub-resources read from the shared store: any node answers them itself
NODE_HEADER = "X-TinyMLaaS-Node"


class Forwarded(Exception):
    """Carries the owning node's answer out of the dependency (see :func:`install`)."""

    def __init__(self, response: Response) -> None:
        super().__init__("forwarded")
        self.response = response


def install(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forwarded)
        return exc.response

    app.add_exception_handler(Forwarded, answer)


async def forward_if_elsewhere(request: Request) -> None:
    """Router dependency, after the guard: hand a device-scoped call to the node that holds the device."""
    services: Services = request.app.state.services
    forwarder = services.forwarder
    if forwarder is None or FORWARDED_KEY in request.scope:  # one node, or already forwarded: answer here
        return
    match = DEVICE_PATH.match(request.url.path)
    if match is None or match["rest"].split("/", 1)[0] in STORE_ONLY:
        return
    endpoint = match["endpoint"]
    if services.server.registry.get(endpoint) is not None:
        return
    owner = await forwarder.owner_elsewhere(endpoint)
    if owner is None:  # unknown here and everywhere: the route answers (404...)
        return
    principal: Any = getattr(request.state, "principal", None)
    body = await request.body()
    msg = {
        "op": "http", "endpoint": endpoint, "method": request.method, "path": request.url.path,
        "query": request.url.query, "headers": {k: request.headers[k] for k in KEPT_HEADERS if k in request.headers},
        "body_z": pack(body),
        "principal": {"token_id": principal.token_id, "name": principal.name, "role": int(principal.role)}
        if principal is not None else {},
    }  # fmt: skip
    try:
        status, reply = await forwarder.forward(owner, msg)
    except OwnerUnreachable as exc:
        raise ApiError(504, "owner_unreachable", str(exc)) from exc
    except ValueError:
        raise ApiError(413, "too_large", f"the request ({len(body)} bytes of body) is too large to forward to node "
                       f"{owner}, which holds {endpoint!r} (one notification carries about 8000 bytes, the body "
                       "compressed and base64-encoded): send it to that node directly") from None
    headers = {NODE_HEADER: owner}
    if "body_z" not in reply:  # the forwarder's own answer (the owner failed, or its answer was too large)
        raise Forwarded(JSONResponse(status_code=status, content=reply, headers=headers))
    raise Forwarded(Response(content=unpack(str(reply["body_z"])), status_code=status,
                             headers={**dict(reply.get("headers") or {}), **headers}))
