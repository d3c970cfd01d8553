"""Exact TFLite Micro tensor-arena planning from the flatbuffer alone (no TensorFlow import).

The head (non-persistent, planned) area follows TFLM's own rules, ported from
micro_allocation_info.cc and greedy_memory_planner.cc:

- every tensor of every subgraph gets an AllocationInfo; it needs arena space unless it has
  flatbuffer data (a constant), is a variable, or is empty;
- lifetimes are allocation scopes: graph inputs are created at scope 0 and live to their last
  consumer; graph outputs live until the end of the subgraph; an op output is created at its op,
  an op input is last used at its op; IF/WHILE/CALL_ONCE open new scopes for their subgraphs;
- kernel scratch buffers follow the tensors and live for their op only;
- sizes are rounded up to 16 bytes; an "OfflineMemoryAllocation" metadata plan is honoured;
- the greedy planner places the largest buffers first (ties: last added first) into the first gap.

The persistent tail and the init-time peaks come from ``compilers.tflm_tail`` (modelled, calibrated
against the real runtime). ``total_bytes`` is the smallest arena the runtime should accept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from compilers.greedy_planner import ONLINE, Buffer, max_memory, plan_offsets
from compilers.tflite_schema import ModelFormatError, ModelInfo, OperatorInfo, metadata_buffer, parse_model
from compilers.tflm_tail import abi_for, align_up, model_tail, planning_peak

OFFLINE_METADATA = "OfflineMemoryAllocation"
ALIGNMENT = 16  # MicroArenaBufferAlignment()
LSTM_CELL_STATE = 19  # kLstmCellStateTensor (lstm_shared.h)


@dataclass(frozen=True, slots=True)
class PlannedBuffer:
    """One entry of the memory plan (a tensor or a kernel scratch buffer)."""

    kind: str  # "tensor" | "scratch"
    subgraph: int
    index: int  # tensor index, or op index for scratch buffers
    name: str
    size: int  # aligned bytes
    first: int  # allocation scope of creation
    last: int  # allocation scope of last use
    offset: int


@dataclass(frozen=True)
class ArenaPlan:
    head_bytes: int  # planned non-persistent area (== TFLM's reported head)
    tail_bytes: int  # persistent allocations (modelled for the host runtime)
    total_bytes: int  # smallest arena the runtime accepts (max of head+tail and init peaks)
    buffers: tuple[PlannedBuffer, ...]
    planning_peak_bytes: int
    prepare_peak_bytes: int
    offline_plan: bool  # the model carried an OfflineMemoryAllocation plan
    unmodeled_ops: tuple[str, ...]  # ops whose tail cost is a conservative default

    @property
    def lower_bound(self) -> int:
        """Peak of live tensor bytes at any scope: no plan can beat it."""
        scopes = {b.first for b in self.buffers} | {b.last for b in self.buffers}
        return max(
            (sum(b.size for b in self.buffers if b.first <= s <= b.last) for s in scopes),
            default=0,
        )


def scratch_requests(model: ModelInfo) -> list[tuple[int, int, int]]:
    """(subgraph, op index, bytes) scratch buffers the reference kernels request, in Prepare order."""
    out: list[tuple[int, int, int]] = []
    for s, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            out.extend((s, op.index, n) for n in _op_scratch(model, s, op))
    return out


def _op_scratch(model: ModelInfo, s: int, op: OperatorInfo) -> list[int]:
    sg = model.subgraphs[s]

    def t(i: int) -> int | None:
        return i if 0 <= i < len(sg.tensors) else None

    if op.opcode == "TRANSPOSE_CONV" and len(op.inputs) >= 3 and op.outputs:
        inp, out = sg.tensors[op.inputs[2]], sg.tensors[op.outputs[0]]
        elems = 1
        for d in out.shape:
            elems *= d
        sizes = []
        if inp.dtype == "int8":
            sizes.append(4 * elems)
        elif inp.dtype == "int16":
            sizes.append(8 * elems)
            bias = t(op.inputs[3]) if len(op.inputs) > 3 else None
            if bias is not None and sg.tensors[bias].dtype == "int16":
                sizes.append(8 * (sg.tensors[bias].nbytes // 2))
        return sizes
    if op.opcode in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN") and len(op.inputs) >= 2 and op.outputs:
        inp, axis, out = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]]
        axis_elems = 1
        for d in axis.shape:
            axis_elems *= d
        sizes = []
        if op.opcode in ("MEAN", "SUM") and inp.dtype in ("int8", "int16"):
            sizes.append(4 * (out.nbytes // (1 if out.dtype == "int8" else 2)))  # int32 accumulator
        return [*sizes, 4 * len(inp.shape), 4 * axis_elems]  # temp index, resolved axis
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(op.inputs) > LSTM_CELL_STATE:
        cell = t(op.inputs[LSTM_CELL_STATE])
        if cell is not None:  # four gate buffers of batch x state cells, in the cell state's type
            return [sg.tensors[cell].nbytes] * 4
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(op.inputs) >= 2:
        filt = t(op.inputs[1])
        if filt is not None and sg.tensors[filt].dtype == "int4":
            return [sg.tensors[filt].nbytes]  # unpacked int4 weights
    return []


def _offline_offsets(tflite: bytes, tensor_count: int) -> list[int] | None:
    raw = metadata_buffer(tflite, OFFLINE_METADATA)
    if raw is None:
        return None
    if len(raw) < 12 or len(raw) % 4:
        raise ModelFormatError("malformed OfflineMemoryAllocation metadata")
    words = struct.unpack(f"<{len(raw) // 4}i", raw)
    count = words[2]
    if count != tensor_count or len(words) < 3 + count:
        raise ModelFormatError(f"offline plan covers {count} tensors, model has {tensor_count} (TFLM rejects it)")
    return list(words[3 : 3 + count])


class _Lifetimes:
    """MarkAllocationLifetimes: allocation scopes per tensor (flattened over subgraphs)."""

    def __init__(self, model: ModelInfo, scratch: list[tuple[int, int, int]]) -> None:
        self.model = model
        self.scratch = scratch
        self.base = []
        n = 0
        for sg in model.subgraphs:
            self.base.append(n)
            n += len(sg.tensors)
        self.first = [-1] * n
        self.last = [-1] * n
        self.scratch_first = [-1] * len(scratch)
        self.scratch_last = [-1] * len(scratch)
        self.scope = 0

    def _created(self, i: int) -> None:
        self.first[i] = self.scope
        self.last[i] = self.scope

    def mark(self, s: int) -> None:
        sg = self.model.subgraphs[s]
        base = self.base[s]
        for i in (*sg.inputs, *sg.outputs):
            self._created(base + i)
        for op in sg.operators:
            self.scope += 1
            for i in op.outputs:
                self._created(base + i)
            start = self.scope
            for sub in op.subgraph_calls:
                self.scope += 1
                self.mark(sub)
            for i in op.inputs:
                if i >= 0:
                    self.last[base + i] = self.scope
            for i in op.outputs:
                self.last[base + i] = self.scope
            for k, (rs, node, _) in enumerate(self.scratch):
                if rs == s and node == op.index:
                    self.scratch_first[k] = start
                    self.scratch_last[k] = self.scope
        for i in sg.outputs:
            self.last[base + i] = self.scope


def plan_model(model: ModelInfo, offline: list[int] | None = None) -> tuple[list[PlannedBuffer], list[Buffer]]:
    """The buffers TFLM hands its planner, in its order, with their planned offsets."""
    scratch = scratch_requests(model)
    life = _Lifetimes(model, scratch)
    life.mark(0)
    meta: list[tuple[str, int, int, str]] = []
    buffers: list[Buffer] = []
    for s, sg in enumerate(model.subgraphs):
        for t in sg.tensors:
            flat = life.base[s] + t.index
            if t.has_data or t.is_variable or t.nbytes == 0:
                continue
            off = offline[flat] if offline is not None else ONLINE
            buffers.append(Buffer(align_up(t.nbytes, ALIGNMENT), life.first[flat], life.last[flat], off))
            meta.append(("tensor", s, t.index, t.name))
    for k, (s, node, nbytes) in enumerate(scratch):
        buffers.append(Buffer(align_up(nbytes, ALIGNMENT), life.scratch_first[k], life.scratch_last[k]))
        meta.append(("scratch", s, node, f"scratch[{model.subgraphs[s].operators[node].opcode}#{node}]"))
    offsets = plan_offsets(buffers)
    planned = [
        PlannedBuffer(kind, s, idx, name, b.size, b.first, b.last, off)
        for (kind, s, idx, name), b, off in zip(meta, buffers, offsets, strict=True)
    ]
    return planned, buffers


def plan_arena(tflite: bytes, pointer_size: int = 8) -> ArenaPlan:
    """Plan the TFLM arena of a .tflite model. Raises ModelFormatError on unreadable input.

    ``pointer_size`` 8 is the 64-bit host build (what the Python runtime uses; exact), 4 a 32-bit MCU
    (the tail's structs re-derived for 4-byte pointers, see ``compilers.tflm_tail``; the planned head
    does not depend on it)."""
    abi = abi_for(pointer_size)
    model = parse_model(bytes(tflite))
    offline = _offline_offsets(tflite, model.tensor_count)
    planned, buffers = plan_model(model, offline)
    head = max_memory(buffers, [p.offset for p in planned])
    scratch = scratch_requests(model)
    per_op: dict[tuple[int, int], int] = {}
    for s, node, _ in scratch:
        per_op[(s, node)] = per_op.get((s, node), 0) + 1
    # The smallest arena: for each size residue modulo 16 (alignment of the tail's structs depends on
    # it), the smallest size of that residue that holds head + tail and every init-time peak.
    best: tuple[int, int, int, int] | None = None
    for residue in range(0, ALIGNMENT, 4):
        tail = model_tail(model, per_op, abi, residue)
        plan_peak = planning_peak(model, tail.tail_at_plan, len(scratch), len(buffers), abi, residue)
        need = max(head + tail.tail_bytes, plan_peak, tail.prepare_peak)
        size = need + (residue - need) % ALIGNMENT
        if best is None or size < best[0]:
            best = (size, residue, plan_peak, tail.prepare_peak)
    assert best is not None
    total, _, plan_peak, _ = best
    tail = model_tail(model, per_op, abi)  # the reported tail: a 16-aligned arena, as the runtime reports it
    return ArenaPlan(
        head_bytes=head,
        tail_bytes=tail.tail_bytes,
        total_bytes=total,
        buffers=tuple(planned),
        planning_peak_bytes=plan_peak,
        prepare_peak_bytes=tail.prepare_peak,
        offline_plan=offline is not None,
        unmodeled_ops=tail.unmodeled_ops,
    )
