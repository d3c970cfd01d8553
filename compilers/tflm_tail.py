"""Model of TFLite Micro's persistent ("tail") arena allocations and its init-time peaks.

Calibrated against the ``tflite-micro`` PyPI wheel (0.dev20261023, reference kernels, x86-64 host:
8-byte pointers). On a 32-bit MCU the structs are smaller, so these figures are an upper bound there.

Sequence simulated (micro_allocator.cc / micro_interpreter.cc):
fixed allocator objects -> TfLiteEvalTensor[T] -> NodeAndRegistration[N] -> builtin option structs
-> kernel Init/Prepare persistent buffers (16-byte aligned) -> scratch buffer handles -> per graph
input and output: pointer array + persistent TfLiteTensor + quantization params.
Constants measured with single-op models built by TensorFlow (bench/arena.py and
tests/unit/compilers/test_arena*.py compare against the runtime); an op
not in the tables is charged a conservative default and listed in ``ArenaPlan.unmodeled_ops``.
"""

from __future__ import annotations

from dataclasses import dataclass

from compilers.tflite_schema import ModelInfo, OperatorInfo, SubgraphInfo, TensorInfo

FIXED_TAIL = 488  # allocator, planner, interpreter objects (measured: a 1-op RELU model minus its parts)
EVAL_TENSOR = 24  # sizeof(TfLiteEvalTensor)
NODE_AND_REGISTRATION = 64
TFLITE_TENSOR = 64  # persistent/temp TfLiteTensor
AFFINE_QUANTIZATION = 24
ALLOCATION_INFO = 32  # per tensor + scratch buffer during planning (temp)
PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size()
SCRATCH_REQUEST = 16  # internal::ScratchBufferRequest
MAX_SCRATCH_PER_OP = 12
SCRATCH_HANDLE = 8
DEFAULT_KERNEL_BYTES = 96  # conservative charge for an op we have not measured

# Builtin option struct (size, alignment) parsed into the tail, per op.
BUILTIN_DATA: dict[str, tuple[int, int]] = {
    "CONV_2D": (28, 4),
    "DEPTHWISE_CONV_2D": (28, 4),
    "TRANSPOSE_CONV": (20, 4),
    "FULLY_CONNECTED": (32, 8),
    "AVERAGE_POOL_2D": (40, 4),
    "MAX_POOL_2D": (40, 4),
    "L2_POOL_2D": (40, 4),
    "SOFTMAX": (4, 4),
    "RESHAPE": (36, 4),
    "ADD": (8, 4),
    "SUB": (8, 4),
    "MUL": (4, 4),
    "CONCATENATION": (8, 4),
    "MEAN": (1, 1),
    "SUM": (1, 1),
    "REDUCE_MAX": (1, 1),
}
# Kernel OpData persistent buffers (requested bytes, each 16-byte aligned), per op.
KERNEL_DATA: dict[str, int] = {
    "CONV_2D": 80,
    "DEPTHWISE_CONV_2D": 80,
    "TRANSPOSE_CONV": 88,
    "FULLY_CONNECTED": 72,
    "AVERAGE_POOL_2D": 32,
    "MAX_POOL_2D": 32,
    "SOFTMAX": 80,
    "ADD": 60,
    "SUB": 60,
    "MUL": 36,
    "CONCATENATION": 80,
    "MEAN": 44,
    "SUM": 44,
    "REDUCE_MAX": 44,
    "RELU": 28,
    "RELU6": 28,
    "LOGISTIC": 16,
    "TANH": 16,
    "RESHAPE": 0,
    "SQUEEZE": 0,
    "EXPAND_DIMS": 0,
}
# Extra temp bytes some Prepare functions hold beyond their input/output TfLiteTensors, measured
# (smallest accepted arena minus this model) on one-op graphs; keyed by (op, input dtype).
PREPARE_EXTRA: dict[tuple[str, str], int] = {
    ("TANH", "int8"): 88,
    ("TANH", "float32"): 56,
    ("MUL", "float32"): 48,
    ("FULLY_CONNECTED", "int8/per-channel"): -24,
}
_PER_CHANNEL_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "TRANSPOSE_CONV": 0}  # channel dim of the filter


def align_up(n: int, a: int = 16) -> int:
    return -(-n // a) * a


class _TailSim:
    """Persistent allocations grow down from the 16-aligned arena end; track the offset from it."""

    def __init__(self, start: int) -> None:
        self.offset = start

    def alloc(self, size: int, alignment: int) -> None:
        if size > 0:
            self.offset = align_up(self.offset + size, alignment)


@dataclass(frozen=True)
class TailModel:
    tail_bytes: int  # final persistent tail
    tail_at_plan: int  # tail when the memory plan is committed (before graph input/output tensors)
    prepare_peak: int  # highest head+tail during kernel Prepare (temp tensors)
    unmodeled_ops: tuple[str, ...]


def _channels(sg: SubgraphInfo, op: OperatorInfo) -> int:
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        return 0
    filt = sg.tensors[op.inputs[1]]
    if op.opcode in _PER_CHANNEL_OPS:
        dim = _PER_CHANNEL_OPS[op.opcode]
        return filt.shape[dim] if len(filt.shape) > dim else 0
    if op.opcode == "FULLY_CONNECTED" and filt.scales > 1:
        return filt.scales
    return 0


def kernel_allocations(sg: SubgraphInfo, op: OperatorInfo) -> list[int]:
    """Requested persistent buffers of one kernel (Init then Prepare)."""
    base = KERNEL_DATA.get(op.opcode, DEFAULT_KERNEL_BYTES)
    sizes = [base] if base else []
    channels = _channels(sg, op)
    if channels:
        sizes += [4 * channels, 4 * channels]  # per-channel output multiplier and shift
    return sizes


def _quant_bytes(t: TensorInfo) -> int:
    """TfLiteAffineQuantization + zero-point TfLiteIntArray copied for a TfLiteTensor."""
    if t.scales == 0 or t.zero_points == 0:
        return 0
    return AFFINE_QUANTIZATION + align_up(4 + 4 * t.scales, 8)


def _temp_tensor_bytes(t: TensorInfo) -> int:
    return TFLITE_TENSOR + _quant_bytes(t)


def _prepare_temps(sg: SubgraphInfo, op: OperatorInfo) -> int:
    """Temp TfLiteTensors a kernel's Prepare holds at its peak (freed after each node)."""

    def tensors(idx: tuple[int, ...]) -> int:
        return sum(_temp_tensor_bytes(sg.tensors[i]) for i in idx if i >= 0)

    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) >= 2:
        # ConvPrepare holds input, filter, output while CalculateOpDataConv takes all of them again.
        first = (op.inputs[0], op.inputs[1], *op.outputs)
        return tensors(first) + tensors(op.inputs) + tensors(op.outputs)
    if op.opcode in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return tensors(op.inputs[:1]) + tensors(op.outputs)  # the shape operand is not taken
    dtype = sg.tensors[op.inputs[0]].dtype if op.inputs and op.inputs[0] >= 0 else ""
    if op.opcode == "FULLY_CONNECTED" and _channels(sg, op):
        dtype += "/per-channel"
    return tensors(op.inputs) + tensors(op.outputs) + PREPARE_EXTRA.get((op.opcode, dtype), 0)


def model_tail(model: ModelInfo, scratch_per_op: dict[tuple[int, int], int]) -> TailModel:
    """Simulate the tail allocations and return the final size, the size at planning and the
    Prepare-phase peak (tail + temp head)."""
    sim = _TailSim(FIXED_TAIL)
    unmodeled: set[str] = set()
    for sg in model.subgraphs:
        sim.alloc(EVAL_TENSOR * len(sg.tensors), 8)
    for sg in model.subgraphs:
        sim.alloc(NODE_AND_REGISTRATION * len(sg.operators), 8)
    for sg in model.subgraphs:
        for op in sg.operators:
            size, alignment = BUILTIN_DATA.get(op.opcode, (0, 4))
            sim.alloc(size, alignment)
            if op.opcode not in KERNEL_DATA:
                unmodeled.add(op.opcode)
    for sg in model.subgraphs:  # Init: OpData
        for op in sg.operators:
            sizes = kernel_allocations(sg, op)
            if sizes:
                sim.alloc(sizes[0], 16)
    prepare_peak = 0
    requests = 0
    for s, sg in enumerate(model.subgraphs):  # Prepare: per-channel arrays, temp tensors
        for op in sg.operators:
            for size in kernel_allocations(sg, op)[1:]:
                sim.alloc(size, 16)
            resizable = SCRATCH_REQUEST * (requests + MAX_SCRATCH_PER_OP)
            prepare_peak = max(prepare_peak, sim.offset + align_up(resizable, 8) + _prepare_temps(sg, op))
            requests += scratch_per_op.get((s, op.index), 0)
    sim.alloc(SCRATCH_HANDLE * requests, 8)  # FinishModelAllocation: one handle per scratch buffer
    tail_at_plan = sim.offset
    main = model.main
    for group in (main.inputs, main.outputs):
        sim.alloc(8 * len(group), 16)
        for i in group:
            sim.alloc(TFLITE_TENSOR, 8)
            t = main.tensors[i]
            if _quant_bytes(t):
                sim.alloc(AFFINE_QUANTIZATION, 8)
                sim.alloc(4 + 4 * t.scales, 4)
    return TailModel(sim.offset, tail_at_plan, align_up(prepare_peak, 8), tuple(sorted(unmodeled)))


def planning_peak(model: ModelInfo, tail_at_plan: int, scratch_count: int, planned_buffers: int) -> int:
    """Arena needed while CommitStaticMemoryPlan runs: temp AllocationInfo array plus the
    planner's working arrays, all between the head and the tail. Exact on the MLPerf models;
    graphs with scratch buffers need 8 more bytes per buffer than this model explains (measured
    on MEAN int8), which is added as is."""
    head = align_up(SCRATCH_REQUEST * (scratch_count + MAX_SCRATCH_PER_OP), 8)
    head = align_up(head + 8 * len(model.subgraphs), 8)
    head = align_up(head + ALLOCATION_INFO * (model.tensor_count + scratch_count), 16)
    # GetAvailableMemory(16) measures up to the tail aligned down to 16 bytes.
    return align_up(tail_at_plan, 16) + head + PLANNER_PER_BUFFER * planned_buffers + 8 * scratch_count
