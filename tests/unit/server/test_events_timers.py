"""EventBus (filters, bounded drop-oldest queues, sinks) and TimerHeap (re-arm, cancel, one task for many)."""

from __future__ import annotations

import asyncio

from lwm2m_server.events import Event, EventBus
from lwm2m_server.timers import TimerHeap


async def test_bus_filters_and_drops_oldest_for_slow_subscribers() -> None:
    bus = EventBus(queue_size=3)
    seen: list[Event] = []
    bus.add_sink(seen.append)
    everything = bus.subscribe()
    only_a = bus.subscribe(types={"registered"}, endpoint="a")
    for i in range(5):
        bus.emit("registered", "a", i=i)
    bus.emit("updated", "a")
    bus.emit("registered", "b")
    assert len(seen) == 7  # sinks see everything, in order
    assert [(await only_a.get(1)).data["i"] for _ in range(3)] == [2, 3, 4]
    assert only_a.dropped == 2
    got = [await everything.get(1) for _ in range(3)]
    assert [(e.type, e.endpoint) for e in got] == [("registered", "a"), ("updated", "a"), ("registered", "b")]
    everything.close()
    assert bus.subscriber_count == 1
    only_a.close()
    async for _ in only_a:
        raise AssertionError("closed subscription yields nothing")


async def test_timer_heap_rearm_cancel_and_order() -> None:
    fired: list[tuple[str, object]] = []
    now = [1000.0]
    heap = TimerHeap(lambda kind, key: fired.append((kind, key)), clock=lambda: now[0])
    for i in range(1000):
        heap.arm("expiry", f"ep{i}", 1000.0 + i)
    heap.arm("expiry", "ep5", 5000.0)  # re-armed later: its old deadline must not fire
    heap.cancel("expiry", "ep6")
    now[0] = 1010.0
    assert heap.fire_due() == 9
    assert [k for _, k in fired] == [f"ep{i}" for i in range(11) if i not in (5, 6)]
    assert heap.deadline("expiry", "ep5") == 5000.0 and len(heap) == 1000 - 11 + 1


async def test_timer_heap_task_wakes_for_earlier_deadline() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    heap = TimerHeap(lambda kind, key: done.set(), clock=loop.time)
    heap.start()
    heap.arm("x", 1, loop.time() + 3600)
    heap.arm("x", 2, loop.time() + 0.05)
    await asyncio.wait_for(done.wait(), 2)
    await heap.stop()
