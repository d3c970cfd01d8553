"""The batched recvmsg transport bounds how long one wake-up runs: other ready callbacks get the loop between
slow datagrams (real UDP on loopback), and after every datagram the protocol did not finish itself (one handed
to aiocoap, whose woken tasks must run before the next one)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from lwm2m_server.coap.fastpath_transport import BATCH_BUDGET_S, READ_BATCH, create_batched_endpoint


class SlowProtocol:
    """Each datagram costs ``cost_s`` of CPU; the first one schedules a marker callback with ``call_soon``."""

    def __init__(self, cost_s: float, finished: bool = True) -> None:
        self.cost_s = cost_s
        self.finished = finished
        self.order: list[str] = []
        self.done = asyncio.Event()
        self.expected = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_msg_received(self, data: bytes, anc: Any, flags: int, addr: Any) -> bool:
        if not self.order:
            asyncio.get_running_loop().call_soon(self.order.append, "marker")
        self.order.append(data.decode())
        end = time.perf_counter() + self.cost_s
        while time.perf_counter() < end:
            pass
        if sum(1 for o in self.order if o != "marker") == self.expected:
            self.done.set()
        return self.finished  # True: handled here (the fast path); False: went on (to aiocoap)

    def datagram_errqueue_received(self, *args: Any) -> None:
        pass

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


async def _run(count: int, cost_s: float, finished: bool = True) -> list[str]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):  # queued in the socket before the transport reads anything: one readiness event
        client.sendto(str(i).encode(), server.getsockname())
    protocol = SlowProtocol(cost_s, finished)
    protocol.expected = count
    transport = await create_batched_endpoint(asyncio.get_running_loop(), protocol, server)
    try:
        await asyncio.wait_for(protocol.done.wait(), 10)
    finally:
        transport.close()
        client.close()
    return protocol.order


async def test_slow_datagrams_yield_the_loop_within_the_budget() -> None:
    cost = BATCH_BUDGET_S / 2  # two slow datagrams use up one wake-up's budget
    order = await _run(20, cost)
    assert [o for o in order if o != "marker"] == [str(i) for i in range(20)]  # all read, in order
    assert order.index("marker") <= 4  # the marker ran after the first wake-up, not after all 20


async def test_fast_datagrams_still_come_in_full_batches() -> None:
    order = await _run(READ_BATCH, 0.0)
    assert order.index("marker") >= 8  # cheap datagrams: one wake-up reads many (64 in ~1 ms, unless preempted)


async def test_a_datagram_left_to_aiocoap_ends_the_wake_up() -> None:
    order = await _run(8, 0.0, finished=False)
    assert order[:3] == ["0", "marker", "1"]  # what the first datagram scheduled ran before the second was read
