"""An aiocoap context on a UDP socket that owns its port exclusively.

aiocoap's server transport sets SO_REUSEPORT before binding. With port 0, Linux then may hand out a port
that another SO_REUSEPORT socket of the same user already has (measured: 143 duplicates in 3,000 binds),
and datagrams for one endpoint land on another; with a fixed port, a second server on 5683 would silently
share the first one's traffic. So the server and every simulated device bind their own socket without
SO_REUSEPORT (a busy port is then a clear ``OSError``) and hand it to aiocoap's udp6 transport.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiocoap import Context
from aiocoap.transports.udp6 import MessageInterfaceUDP6

from lwm2m_server.coap.fastpath import FastPath, FastPathUDP6
from lwm2m_server.coap.messages import add_transport
from lwm2m_server.coap.turns import PeerTurns


def exclusive_socket(host: str = "127.0.0.1", port: int = 0, *, rcvbuf: int | None = None) -> socket.socket:
    """A dual-stack UDP socket bound to ``host:port`` without SO_REUSEPORT."""
    sock = socket.socket(family=socket.AF_INET6, type=socket.SOCK_DGRAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = f"::ffff:{host}" if ":" not in host else host
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


async def create_context(
    site: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    loggername: str = "coap",
    rcvbuf: int | None = None,
    fast: FastPath | None = None,
    turns: PeerTurns | None = None,
) -> Context:
    """Like ``Context.create_server_context(site, bind=(host, port), transports=["udp6"])``, exclusive port.
    With ``fast``, the socket's datagrams are offered to the fast path before aiocoap. Message IDs are counted
    per peer (:mod:`lwm2m_server.coap.messages`). ``turns``: NSTART shared with the fast client, which the
    socket's CON responses take too."""
    loop = asyncio.get_running_loop()
    sock = exclusive_socket(host, port, rcvbuf=rcvbuf)
    context = Context(loop=loop, serversite=site, loggername=loggername)
    try:
        if fast is not None:
            await add_transport(context, lambda mman: FastPathUDP6.create(sock, mman, fast, log=context.log, loop=loop),
                                turns=turns)  # fmt: skip
        else:
            await add_transport(
                context,
                lambda mman: MessageInterfaceUDP6._create_transport_endpoint(sock, mman, log=context.log, loop=loop),
            )
    except Exception:
        sock.close()
        raise
    return context
