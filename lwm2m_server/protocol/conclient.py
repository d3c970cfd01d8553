"""A sans-IO client for the server's own confirmable requests (RFC 7252 §4.2, §4.7, §5.3.2).

The fast path pushes firmware blocks without aiocoap's token and message layers (a future, a pipe and a
retransmission handle per block). This is the state machine it drives: no sockets, no clock of its own. The
driver calls :meth:`ConClient.request`, :meth:`ConClient.receive` for each datagram from a remote and
:meth:`ConClient.tick` at :meth:`ConClient.next_deadline`, then sends :meth:`ConClient.take_outgoing` and
resolves :meth:`ConClient.take_completions`.

Rules: a CON is retransmitted after ACK_TIMEOUT x a random factor in [1, ACK_RANDOM_FACTOR), the timeout
doubling each time, at most MAX_RETRANSMIT times, then it fails with ``timeout``. NSTART = 1: one outstanding
request per remote (one awaiting its ACK or its separate response); the next waits in a FIFO. A piggybacked ACK
must carry the request's token; an empty ACK means a separate response follows (matched by token; a CON one is
acknowledged, also when it is retransmitted). RST fails the request with ``reset``. ACKs and RSTs for a message
id already finished are swallowed (duplicates), for EXCHANGE_LIFETIME. Message ids (``next_mid(remote)``: the
caller must not reuse one with the same remote within EXCHANGE_LIFETIME, RFC 7252 §4.4, or a duplicate ACK
is taken for another request's) and tokens come from the caller, so they can be shared with another CoAP
stack on the same socket.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

from lwm2m_server.protocol import coapmsg as m


class Completion(NamedTuple):
    """A finished request: the response, or ``error`` in ``timeout`` / ``reset`` / ``cancelled``."""

    handle: int
    response: m.CoapMessage | None
    error: str | None = None


@dataclass(slots=True)
class _Exchange:
    handle: int
    remote: Hashable
    data: bytes  # the encoded CON request (mid and token already in it)
    mid: int
    token: bytes
    timeout: float = 0.0  # current retransmission timeout
    retransmits: int = 0
    deadline: float | None = None  # next retransmission, or None once ACKed (awaiting the separate response)


@dataclass(slots=True)
class _Remote:
    active: _Exchange | None = None
    waiting: deque[_Exchange] = field(default_factory=deque)


class ConClient:
    def __init__(
        self,
        next_mid: Callable[[Hashable], int],
        next_token: Callable[[], bytes],
        *,
        rand: Callable[[], float] = random.random,
        ack_timeout: float = m.ACK_TIMEOUT,
        ack_random_factor: float = m.ACK_RANDOM_FACTOR,
        max_retransmit: int = m.MAX_RETRANSMIT,
        lifetime: float = m.EXCHANGE_LIFETIME,
    ) -> None:
        self._next_mid, self._next_token, self._rand = next_mid, next_token, rand
        self.ack_timeout, self.ack_random_factor, self.max_retransmit = ack_timeout, ack_random_factor, max_retransmit
        self.lifetime = lifetime
        self._remotes: dict[Hashable, _Remote] = {}
        self._by_handle: dict[int, _Exchange] = {}
        self._finished: dict[tuple[Hashable, int], float] = {}  # (remote, mid) of done exchanges -> forget at
        self._finished_order: deque[tuple[float, tuple[Hashable, int]]] = deque()
        self._acked: dict[tuple[Hashable, int], float] = {}  # separate CON responses we acknowledged
        self._timers: list[tuple[float, int]] = []  # (deadline, handle); stale entries skipped when popped
        self._out: list[tuple[Hashable, bytes]] = []
        self._done: list[Completion] = []
        self._handles = 0
        self.retransmissions = 0

    def __len__(self) -> int:
        """Requests not finished (outstanding or waiting for their turn)."""
        return len(self._by_handle)

    # -- driver interface ------------------------------------------------------------------------------------
    def request(self, remote: Hashable, code: int, options: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]],
                payload: bytes, now: float) -> int:  # fmt: skip
        """Queue a CON request to ``remote``; sent now unless another one to it is outstanding. Returns a handle."""
        self._handles += 1
        mid, token = self._next_mid(remote) & 0xFFFF, self._next_token()
        ex = _Exchange(self._handles, remote, m.encode(m.CON, code, mid, token, options, payload), mid, token)
        self._by_handle[ex.handle] = ex
        state = self._remotes.get(remote)
        if state is None:
            state = self._remotes[remote] = _Remote()
        if state.active is None:
            self._start(state, ex, now)
        else:
            state.waiting.append(ex)
        return ex.handle

    def cancel(self, handle: int, now: float) -> None:
        """Stop a request nobody waits for any more (no completion is reported); its turn passes on."""
        ex = self._by_handle.get(handle)
        if ex is not None:
            self._finish(ex, None, "cancelled", now, report=False)

    def claims(self, remote: Hashable, mtype: int, code: int, mid: int, token: bytes) -> bool:
        """Whether :meth:`receive` would take a message with this header and token (:func:`coapmsg.peek`),
        without changing any state: the driver decodes only the datagrams that are ours."""
        if mtype == m.ACK or mtype == m.RST:
            state = self._remotes.get(remote)
            ex = state.active if state is not None else None
            return (ex is not None and ex.mid == mid) or (remote, mid) in self._finished
        if 1 <= code < 32 or code == m.EMPTY:
            return False
        state = self._remotes.get(remote)
        ex = state.active if state is not None else None
        return (ex is not None and token == ex.token) or (mtype == m.CON and (remote, mid) in self._acked)

    def receive(self, remote: Hashable, msg: m.CoapMessage, now: float) -> bool:
        """A datagram from ``remote``; True when it belonged to one of our exchanges (or was a duplicate of one)."""
        mtype = msg.mtype
        if mtype == m.ACK or mtype == m.RST:
            state = self._remotes.get(remote)
            ex = state.active if state is not None else None
            if ex is not None and ex.mid == msg.mid:
                if mtype == m.RST:
                    self._finish(ex, None, "reset", now)
                elif msg.code == m.EMPTY:
                    ex.deadline = None  # acknowledged: the response comes separately
                elif msg.token == ex.token:
                    self._finish(ex, msg, None, now)
                return True
            return (remote, msg.mid) in self._finished
        if msg.is_request or msg.code == m.EMPTY:
            return False
        # a separate response (CON or NON), matched by token
        key = (remote, msg.mid)
        state = self._remotes.get(remote)
        ex = state.active if state is not None else None
        if ex is not None and msg.token == ex.token:
            if mtype == m.CON:
                self._ack(remote, msg.mid, now)
            self._finish(ex, msg, None, now)
            return True
        if mtype == m.CON and key in self._acked:  # our ACK to it was lost: acknowledge the retransmission
            self._out.append((remote, m.empty_ack(msg.mid)))
            return True
        return False

    def tick(self, now: float) -> None:
        """Retransmit what is due and fail what has used up its retransmissions."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, handle = heapq.heappop(timers)
            ex = self._by_handle.get(handle)
            if ex is None or ex.deadline != deadline:
                continue
            if ex.retransmits >= self.max_retransmit:
                self._finish(ex, None, "timeout", now)
                continue
            ex.retransmits += 1
            self.retransmissions += 1
            ex.timeout *= 2
            self._arm(ex, now + ex.timeout)
            self._out.append((ex.remote, ex.data))
        self._expire(now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` is next due (None: nothing to retransmit)."""
        timers = self._timers
        while timers:
            deadline, handle = timers[0]
            ex = self._by_handle.get(handle)
            if ex is not None and ex.deadline == deadline:
                return deadline
            heapq.heappop(timers)
        return None

    def take_outgoing(self) -> list[tuple[Hashable, bytes]]:
        out, self._out = self._out, []
        return out

    def take_completions(self) -> list[Completion]:
        done, self._done = self._done, []
        return done

    # -- internals -------------------------------------------------------------------------------------------
    def _start(self, state: _Remote, ex: _Exchange, now: float) -> None:
        state.active = ex
        ex.timeout = self.ack_timeout * (1.0 + self._rand() * (self.ack_random_factor - 1.0))
        self._arm(ex, now + ex.timeout)
        self._out.append((ex.remote, ex.data))

    def _arm(self, ex: _Exchange, deadline: float) -> None:
        ex.deadline = deadline
        heapq.heappush(self._timers, (deadline, ex.handle))

    def _finish(self, ex: _Exchange, response: m.CoapMessage | None, error: str | None, now: float, *,
                report: bool = True) -> None:  # fmt: skip
        self._by_handle.pop(ex.handle, None)
        ex.deadline = None
        key = (ex.remote, ex.mid)
        self._finished[key] = now + self.lifetime
        self._finished_order.append((now + self.lifetime, key))
        if report:
            self._done.append(Completion(ex.handle, response, error))
        state = self._remotes.get(ex.remote)
        if state is None:
            return
        if state.active is ex:
            state.active = None
            if state.waiting:
                self._start(state, state.waiting.popleft(), now)
            else:
                del self._remotes[ex.remote]
        else:
            with contextlib.suppress(ValueError):
                state.waiting.remove(ex)

    def _ack(self, remote: Hashable, mid: int, now: float) -> None:
        self._out.append((remote, m.empty_ack(mid)))
        key = (remote, mid)
        self._acked[key] = now + self.lifetime
        self._finished_order.append((now + self.lifetime, key))

    def _expire(self, now: float) -> None:
        order = self._finished_order
        while order and order[0][0] <= now:
            _, key = order.popleft()
            for table in (self._finished, self._acked):
                if table.get(key, now + 1) <= now:
                    del table[key]
