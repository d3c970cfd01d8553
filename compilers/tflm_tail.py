"""Model of TFLite Micro's persistent ("tail") arena allocations and its init-time peaks.

Calibrated against the ``tflite-micro`` PyPI wheel (0.dev20261023, reference kernels, x86-64 host:
8-byte pointers). On a 32-bit MCU the structs are smaller, so these figures are an upper bound there.

Sequence simulated (micro_allocator.cc / micro_interpreter.cc):
fixed allocator objects -> TfLiteEvalTensor[T] -> NodeAndRegistration[N] -> builtin option structs
-> kernel Init/Prepare persistent buffers (16-byte aligned) -> scratch buffer handles -> variable
tensors (LSTM states, 16-byte aligned) -> per graph input and output: pointer array + persistent
TfLiteTensor + quantization params.
Constants measured with single-op models built by TensorFlow (bench/arena.py and
tests/unit/compilers/test_arena*.py compare against the runtime); an op
not in the tables is charged a conservative default and listed in ``ArenaPlan.unmodeled_ops``.

32-bit MCUs (``pointer_size=4``: Cortex-M, RISC-V rv32, Xtensa): the runtime structs are re-derived
from their definitions in tensorflow/lite/core/c/common.h (TF_LITE_STATIC_MEMORY) and TFLM's
allocator headers, each field at its natural 4-byte alignment:

===========================  =======================================  ==========  ==========
struct                       fields                                   64-bit      32-bit
===========================  =======================================  ==========  ==========
TfLiteEvalTensor             data*, dims*, type                       24          12
NodeAndRegistration          TfLiteNode (6 pointers + int) + reg*     64          32
TfLiteTensor (static)        quantization{type, params*}, params{f,i},
                             data*, dims*, size_t bytes, type,
                             allocation_type, bool is_variable        64          40
TfLiteAffineQuantization     scale*, zero_point*, int32 dim           24          12
ScratchBufferRequest         size_t bytes, int node_idx               16          8
ScratchBufferHandle          uint8_t* data                            8           4
AllocationInfo               size_t, void**, 3 int, bool              32          24
I/O pointer arrays           one pointer per tensor                   8/tensor    4/tensor
GreedyMemoryPlanner buffer   ints only                                40          40
===========================  =======================================  ==========  ==========

The fixed allocator/interpreter objects (488 B measured on the host) are mostly pointers and vtable
pointers: charged as half, 248 B (8-aligned), on 32-bit. Kernel OpData and builtin option structs are
mostly int32 fields and keep their host sizes (an upper bound where they hold pointers; BATCH_MATMUL's
OpData, three pointers, and its transposed-operand TfLiteEvalTensors are sized per ABI), and 16-byte
persistent-buffer alignment does not depend on the pointer size. No 32-bit runtime runs here, so the
32-bit figure is a derivation, not a measurement; the host figure (pointer_size=8) is the one tests
compare with the Python runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from compilers.tflite_schema import ModelInfo, OperatorInfo, SubgraphInfo, TensorInfo

PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size() (ints only: same on 32-bit)
MAX_SCRATCH_PER_OP = 12
DEFAULT_KERNEL_BYTES = 96  # conservative charge for an op we have not measured


@dataclass(frozen=True)
class Abi:
    """Sizes of the runtime structs for one pointer width (table in the module docstring)."""

    pointer: int
    fixed_tail: int  # allocator, planner, interpreter objects (host: a 1-op RELU model minus its parts)
    eval_tensor: int
    node_and_registration: int
    tflite_tensor: int  # persistent/temp TfLiteTensor
    affine_quantization: int
    allocation_info: int  # per tensor + scratch buffer during planning (temp)
    scratch_request: int  # internal::ScratchBufferRequest
    scratch_handle: int

    @property
    def align(self) -> int:
        """alignof of the pointer-holding structs."""
        return self.pointer


HOST_ABI = Abi(8, 488, 24, 64, 64, 24, 32, 16, 8)
MCU32_ABI = Abi(4, 248, 12, 32, 40, 12, 24, 8, 4)


def abi_for(pointer_size: int) -> Abi:
    if pointer_size == 8:
        return HOST_ABI
    if pointer_size == 4:
        return MCU32_ABI
    raise ValueError(f"pointer size must be 4 (32-bit MCU) or 8 (64-bit host), not {pointer_size}")


# Host constants under their historical names (tests and the offline planner use them).
FIXED_TAIL = HOST_ABI.fixed_tail
EVAL_TENSOR = HOST_ABI.eval_tensor
NODE_AND_REGISTRATION = HOST_ABI.node_and_registration
TFLITE_TENSOR = HOST_ABI.tflite_tensor
AFFINE_QUANTIZATION = HOST_ABI.affine_quantization
ALLOCATION_INFO = HOST_ABI.allocation_info
SCRATCH_REQUEST = HOST_ABI.scratch_request
SCRATCH_HANDLE = HOST_ABI.scratch_handle

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
    "STRIDED_SLICE": (24, 4),
    "GATHER": (8, 4),
    "BATCH_MATMUL": (3, 1),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (16, 4),
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
    # Measured on one-op graphs built here (tests/support/tflm_models.py and bench/arena.py):
    "QUANTIZE": 32,  # OpDataQuantizeReference (a double: sizeof rounds to 32)
    "DEQUANTIZE": 32,  # DequantizeOpData
    "STRIDED_SLICE": 84,
    "GATHER": 0,  # no Init (registered with init=nullptr): its Prepare copies the output dims
    "BATCH_MATMUL": 0,  # pointer-sized OpData and Prepare's buffers: _batch_matmul below
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 688,  # OpDataLSTM (gate parameters for the 4 gates), float32 and int8
}
# Ops whose Prepare always relocates the output dims into the arena (CreateWritableTensorDimsWithCopy:
# TfLiteIntArray of the output rank, 16-aligned like any persistent buffer). RESHAPE does it only for a
# -1 or scalar shape, not seen in the models measured here, so it is not listed.
WRITABLE_OUTPUT_DIMS = frozenset({"GATHER"})
# Further persistent buffers a kernel's Prepare takes, keyed by (op, input dtype); "*" = any dtype.
KERNEL_PREPARE: dict[tuple[str, str], list[int]] = {
    ("SOFTMAX", "int16"): [1026, 1026],  # exp and 1/(1+x) lookup tables, kInt16LUTArraySize int16 each
}
# Extra temp bytes some Prepare functions hold beyond their input/output TfLiteTensors, measured
# (smallest accepted arena minus this model) on one-op graphs; keyed by (op, input dtype).
PREPARE_EXTRA: dict[tuple[str, str], int] = {
    ("TANH", "int8"): 88,
    ("TANH", "float32"): 56,
    ("MUL", "float32"): 48,
    ("FULLY_CONNECTED", "int8/per-channel"): -24,
    ("FULLY_CONNECTED", "int16/per-channel"): -24,
    ("CONV_2D", "int16"): -8,
    ("SOFTMAX", "int16"): -16,
    ("BATCH_MATMUL", "int8"): -24,
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", "float32"): -8,
}
_PER_CHANNEL_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "TRANSPOSE_CONV": 0}  # channel dim of the filter


def align_up(n: int, a: int = 16) -> int:
    return -(-n // a) * a


class _TailSim:
    """Persistent allocations grow down from the arena end; track the offset from it.

    ``residue`` is the arena size modulo 16 (the arena start is 16-aligned): an allocation aligned to
    ``a`` lands at an offset ``o`` from the end with ``(size - o) % a == 0``, so an arena 8 bytes off a
    multiple of 16 can save the padding of 8-aligned structs."""

    def __init__(self, start: int, residue: int = 0) -> None:
        self.residue = residue
        self.offset = start

    def alloc(self, size: int, alignment: int) -> None:
        if size > 0:
            end = self.offset + size
            self.offset = end + (self.residue - end) % alignment


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


def _int_array(rank: int) -> int:
    return 4 + 4 * rank  # TfLiteIntArrayGetSizeInBytes


def _batch_matmul(sg: SubgraphInfo, op: OperatorInfo, abi: Abi) -> tuple[int, list[int]]:
    """kernels/batch_matmul.cc: Init takes OpDataBatchMatmul (3 pointers + 3 bools); Prepare takes the
    int8/int16 QuantizationOpDataBatchMatmul (7 int32), a transposed copy of LHS when adj_x and of RHS
    unless adj_y (TfLiteEvalTensor + dims + data each: AllocInitTransposeTensorFromTfLiteTensor), then
    ReshapeOutputTensor copies the output dims into the arena (CreateWritableTensorDimsWithCopy). That
    copy is what an earlier fixed 8-byte buffer stood for: it is 4 + 4 x output rank, on every model."""
    prepare = []
    lhs, rhs = (sg.tensors[i] for i in op.inputs[:2])
    if lhs.dtype in ("int8", "int16"):
        prepare.append(28)
    for tensor, transposed in ((lhs, op.adjoint[0]), (rhs, not op.adjoint[1])):
        if transposed:
            prepare += [abi.eval_tensor, _int_array(len(tensor.shape)), tensor.nbytes]
    prepare.append(_int_array(len(sg.tensors[op.outputs[0]].shape)))
    return align_up(3 * abi.pointer + 3, abi.pointer), prepare


def kernel_allocations(sg: SubgraphInfo, op: OperatorInfo, abi: Abi = HOST_ABI) -> tuple[int, list[int]]:
    """Requested persistent buffers of one kernel: (Init's OpData or 0, Prepare's buffers in order)."""
    if op.opcode == "BATCH_MATMUL" and len(op.inputs) >= 2 and op.outputs:
        return _batch_matmul(sg, op, abi)
    init = KERNEL_DATA.get(op.opcode, DEFAULT_KERNEL_BYTES)
    prepare: list[int] = []
    channels = _channels(sg, op)
    if channels:
        prepare += [4 * channels, 4 * channels]  # per-channel output multiplier and shift
    dtype = sg.tensors[op.inputs[0]].dtype if op.inputs and op.inputs[0] >= 0 else ""
    prepare += KERNEL_PREPARE.get((op.opcode, dtype), KERNEL_PREPARE.get((op.opcode, "*"), []))
    if op.opcode in WRITABLE_OUTPUT_DIMS and op.outputs:
        prepare.append(_int_array(len(sg.tensors[op.outputs[0]].shape)))
    return init, prepare


def _quant_bytes(t: TensorInfo, abi: Abi = HOST_ABI) -> int:
    """TfLiteAffineQuantization + zero-point TfLiteIntArray copied for a TfLiteTensor."""
    if t.scales == 0 or t.zero_points == 0:
        return 0
    return abi.affine_quantization + align_up(4 + 4 * t.scales, abi.align)


def _temp_tensor_bytes(t: TensorInfo, abi: Abi = HOST_ABI) -> int:
    return abi.tflite_tensor + _quant_bytes(t, abi)


def _prepare_temps(sg: SubgraphInfo, op: OperatorInfo, abi: Abi = HOST_ABI) -> int:
    """Temp TfLiteTensors a kernel's Prepare holds at its peak (freed after each node)."""

    def tensors(idx: tuple[int, ...]) -> int:
        return sum(_temp_tensor_bytes(sg.tensors[i], abi) for i in idx if i >= 0)

    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) >= 2:
        # ConvPrepare holds input, filter, output while CalculateOpDataConv takes all of them again.
        first = (op.inputs[0], op.inputs[1], *op.outputs)
        extra = PREPARE_EXTRA.get((op.opcode, sg.tensors[op.inputs[0]].dtype), 0)
        return tensors(first) + tensors(op.inputs) + tensors(op.outputs) + extra
    if op.opcode in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return tensors(op.inputs[:1]) + tensors(op.outputs)  # the shape operand is not taken
    dtype = sg.tensors[op.inputs[0]].dtype if op.inputs and op.inputs[0] >= 0 else ""
    if op.opcode == "FULLY_CONNECTED" and _channels(sg, op):
        dtype += "/per-channel"
    return tensors(op.inputs) + tensors(op.outputs) + PREPARE_EXTRA.get((op.opcode, dtype), 0)


def model_tail(
    model: ModelInfo, scratch_per_op: dict[tuple[int, int], int], abi: Abi = HOST_ABI, residue: int = 0
) -> TailModel:
    """Simulate the tail allocations and return the final size, the size at planning and the
    Prepare-phase peak (tail + temp head), for an arena whose size is ``residue`` modulo 16."""
    sim = _TailSim(abi.fixed_tail, residue)
    unmodeled: set[str] = set()
    for sg in model.subgraphs:
        sim.alloc(abi.eval_tensor * len(sg.tensors), abi.align)
    for sg in model.subgraphs:
        sim.alloc(abi.node_and_registration * len(sg.operators), abi.align)
    for sg in model.subgraphs:
        for op in sg.operators:
            size, alignment = BUILTIN_DATA.get(op.opcode, (0, 4))
            sim.alloc(size, min(alignment, abi.align))
            if op.opcode not in KERNEL_DATA:
                unmodeled.add(op.opcode)
    for sg in model.subgraphs:  # Init: OpData
        for op in sg.operators:
            sim.alloc(kernel_allocations(sg, op, abi)[0], 16)
    prepare_peak = 0
    requests = 0
    for s, sg in enumerate(model.subgraphs):  # Prepare: per-channel arrays, temp tensors
        for op in sg.operators:
            for size in kernel_allocations(sg, op, abi)[1]:
                sim.alloc(size, 16)
            resizable = abi.scratch_request * (requests + MAX_SCRATCH_PER_OP)
            peak = sim.offset + align_up(resizable, abi.align) + _prepare_temps(sg, op, abi)
            prepare_peak = max(prepare_peak, peak)
            requests += scratch_per_op.get((s, op.index), 0)
    sim.alloc(abi.scratch_handle * requests, abi.align)  # FinishModelAllocation: one handle per scratch buffer
    tail_at_plan = sim.offset
    for sg in model.subgraphs:  # FinishModelAllocation: variable tensors (LSTM states), after the plan
        for t in sg.tensors:
            if t.is_variable and not t.has_data:
                sim.alloc(t.nbytes, 16)
    main = model.main
    for group in (main.inputs, main.outputs):
        sim.alloc(abi.pointer * len(group), 16)
        for i in group:
            sim.alloc(abi.tflite_tensor, abi.align)
            t = main.tensors[i]
            if _quant_bytes(t, abi):
                sim.alloc(abi.affine_quantization, abi.align)
                sim.alloc(4 + 4 * t.scales, 4)
    return TailModel(sim.offset, tail_at_plan, align_up(prepare_peak, abi.align), tuple(sorted(unmodeled)))


def planning_peak(
    model: ModelInfo, tail_at_plan: int, scratch_count: int, planned_buffers: int, abi: Abi = HOST_ABI, residue: int = 0
) -> int:
    """Arena needed while CommitStaticMemoryPlan runs: temp AllocationInfo array plus the
    planner's working arrays, all between the head and the tail. Exact on the MLPerf models;
    graphs with scratch buffers need 8 more bytes per buffer than this model explains (measured
    on MEAN int8), which is added as is."""
    head = align_up(abi.scratch_request * (scratch_count + MAX_SCRATCH_PER_OP), abi.align)
    head = align_up(head + abi.pointer * len(model.subgraphs), abi.align)
    head = align_up(head + abi.allocation_info * (model.tensor_count + scratch_count), 16)
    # GetAvailableMemory(16) measures up to the tail aligned down to 16 bytes (absolute addresses).
    below_tail = tail_at_plan + (residue - tail_at_plan) % 16
    return below_tail + head + PLANNER_PER_BUFFER * planned_buffers + abi.pointer * scratch_count
