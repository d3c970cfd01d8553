"""An aiocoap context on a UDP socket that owns its port exclusively.

aiocoap's server transport sets SO_REUSEPORT before binding. With port 0, Linux then may hand out a port
that another SO_REUSEPORT socket of the same user already has (measured: 143 duplicates in 3,000 binds),
and datagrams for one device land on another. A fleet binds thousands of port-0 sockets, so each device
binds its own socket without SO_REUSEPORT and gives it to aiocoap's udp6 transport.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiocoap import Context
from aiocoap.transports.udp6 import MessageInterfaceUDP6


def exclusive_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A dual-stack UDP socket bound to ``host:port`` without SO_REUSEPORT."""
    sock = socket.socket(family=socket.AF_INET6, type=socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = f"::ffff:{host}" if ":" not in host else host
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


async def create_context(site: Any, host: str = "127.0.0.1", port: int = 0) -> Context:
    """Like ``Context.create_server_context(site, bind=(host, port), transports=["udp6"])``, exclusive port."""
    loop = asyncio.get_running_loop()
    sock = exclusive_socket(host, port)
    context = Context(loop=loop, serversite=site, loggername="coap-sim")
    try:
        await context._append_tokenmanaged_messagemanaged_transport(
            lambda mman: MessageInterfaceUDP6._create_transport_endpoint(sock, mman, log=context.log, loop=loop)
        )
    except Exception:
        sock.close()
        raise
    return context


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark retrieved: a late ConRetransmitsExceeded is expected after our timeout


async def response_within(request: Any, timeout: float) -> Any:
    """The response of an aiocoap request, or TimeoutError after ``timeout`` s.

    The response future is shielded: cancelling it directly makes aiocoap's request runner fail later
    with InvalidStateError when the response (or the give-up error) finally arrives.
    """
    future = request.response
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except BaseException:  # timeout or our own cancellation: aiocoap still owns the future
        future.add_done_callback(_consume)
        raise
