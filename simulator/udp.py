"""Helpers for the simulator's aiocoap requests (the exclusive-port context lives in lwm2m_server.coap.udp)."""

from __future__ import annotations

import asyncio
from typing import Any

from lwm2m_server.coap.udp import create_context, exclusive_socket

__all__ = ["create_context", "exclusive_socket", "response_within"]


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
