"""NSTART across the socket's two CoAP stacks: one turn per peer, handed on in FIFO order, also past waiters
that were cancelled (and by one cancelled just as it was handed the turn)."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m_server.coap.turns import PeerTurns, covered, covering, socket_peer

P, Q = socket_peer("127.0.0.1", 5700), socket_peer("127.0.0.1", 5701)


async def _take(turns: PeerTurns, peer: tuple[str, int], log: list[str], name: str, release: asyncio.Event) -> None:
    async with turns.turn(peer):
        log.append(name)
        await release.wait()


async def test_one_turn_per_peer_in_fifo_order() -> None:
    turns, log = PeerTurns(), []
    gates = {n: asyncio.Event() for n in "abcq"}
    tasks = [asyncio.create_task(_take(turns, P, log, n, gates[n])) for n in "abc"]
    tasks.append(asyncio.create_task(_take(turns, Q, log, "q", gates["q"])))
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["a", "q"] and turns.busy(P) and turns.busy(Q)  # another peer has its own turn
    gates["a"].set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["a", "q", "b"]
    gates["b"].set()
    gates["c"].set()
    gates["q"].set()
    await asyncio.gather(*tasks)
    assert log == ["a", "q", "b", "c"] and not turns.busy(P) and not turns.busy(Q)


async def test_a_cancelled_waiter_is_skipped() -> None:
    turns, log = PeerTurns(), []
    gates = {n: asyncio.Event() for n in "abc"}
    a, b, c = (asyncio.create_task(_take(turns, P, log, n, gates[n])) for n in "abc")
    await asyncio.sleep(0)
    b.cancel()
    gates["a"].set()
    gates["c"].set()
    await asyncio.gather(a, c)
    with pytest.raises(asyncio.CancelledError):
        await b
    assert log == ["a", "c"] and not turns.busy(P)


async def test_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    turns, log = PeerTurns(), []
    gates = {n: asyncio.Event() for n in "bc"}
    async with turns.turn(P):
        b, c = (asyncio.create_task(_take(turns, P, log, n, gates[n])) for n in "bc")
        await asyncio.sleep(0)
    b.cancel()  # its future already holds the turn, it has not run yet
    gates["c"].set()
    await asyncio.wait_for(c, 5)  # a turn lost with b would hang here
    with pytest.raises(asyncio.CancelledError):
        await b
    assert log == ["c"] and not turns.busy(P)


def test_peer_key_is_the_dual_stack_socket_name() -> None:
    assert socket_peer("10.0.0.1", 5683) == ("::ffff:10.0.0.1", 5683)
    assert socket_peer("fe80::1", 5683) == ("fe80::1", 5683)


async def test_try_acquire_takes_a_free_turn_only() -> None:
    turns, log = PeerTurns(), []
    assert turns.try_acquire(P) and turns.busy(P)
    assert not turns.try_acquire(P)  # taken: the caller waits with acquire() instead
    gate = asyncio.Event()
    waiter = asyncio.create_task(_take(turns, P, log, "w", gate))
    await asyncio.sleep(0)
    assert log == []
    turns.release(P)  # handed on to the waiter, not freed
    await asyncio.sleep(0)
    assert log == ["w"] and not turns.try_acquire(P)
    gate.set()
    await waiter
    assert not turns.busy(P) and turns.try_acquire(P)
    turns.release(P)


async def test_covering_reaches_tasks_started_inside_it_while_it_lasts() -> None:
    seen: list[bool] = []
    go = asyncio.Event()

    async def outliving() -> None:  # as an observation's task: started under the turn, runs on after it
        seen.append(covered(P))
        await go.wait()
        seen.append(covered(P))

    assert not covered(P)
    with covering(P):
        assert covered(P) and not covered(Q)  # another peer's turn is not this one
        task = asyncio.create_task(outliving())
        await asyncio.sleep(0)
    assert not covered(P)
    go.set()
    await task
    assert seen == [True, False]
