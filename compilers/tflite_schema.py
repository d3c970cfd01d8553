"""A small, typed view of a ``.tflite`` flatbuffer: just what memory planning needs.

Parsed with the schema module that the ``tflite-micro`` wheel ships (generated flatbuffers code),
so no TensorFlow import. Weight data is never copied: only buffer lengths are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

# Bytes per element, as TfLiteTypeSizeOf in TFLM. INT4/UINT4/INT2 activations are rare; TFLM
# sizes them as one byte per element unless packed, which planning cannot see (noted in the report).
_TYPE_BYTES: dict[int, int] = {
    fb.TensorType.FLOAT32: 4,
    fb.TensorType.FLOAT16: 2,
    fb.TensorType.INT32: 4,
    fb.TensorType.UINT8: 1,
    fb.TensorType.INT64: 8,
    fb.TensorType.STRING: 1,
    fb.TensorType.BOOL: 1,
    fb.TensorType.INT16: 2,
    fb.TensorType.COMPLEX64: 8,
    fb.TensorType.INT8: 1,
    fb.TensorType.FLOAT64: 8,
    fb.TensorType.COMPLEX128: 16,
    fb.TensorType.UINT64: 8,
    fb.TensorType.RESOURCE: 1,
    fb.TensorType.VARIANT: 1,
    fb.TensorType.UINT32: 4,
    fb.TensorType.UINT16: 2,
    fb.TensorType.INT4: 1,
    fb.TensorType.BFLOAT16: 2,
}


class ModelFormatError(ValueError):
    """The bytes are not a TFLite flatbuffer this planner understands."""


@cache
def _type_names() -> dict[int, str]:
    return {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


@cache
def _op_names() -> dict[int, str]:
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


@dataclass(frozen=True, slots=True)
class TensorInfo:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int  # unaligned, as TfLiteEvalTensorByteLength
    has_data: bool  # constant: lives in the flatbuffer, not the arena
    is_variable: bool
    scales: int  # number of quantization scales (0 = not quantized)
    zero_points: int
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    index: int
    opcode: str  # builtin operator name ("CONV_2D") or "CUSTOM:<name>"
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    subgraph_calls: tuple[int, ...]  # IF / WHILE / CALL_ONCE subgraph indices, in TFLM's order
    adjoint: tuple[bool, bool] = (False, False)  # BATCH_MATMUL adj_x, adj_y (BatchMatMulOptions)


@dataclass(frozen=True, slots=True)
class SubgraphInfo:
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    subgraphs: tuple[SubgraphInfo, ...]
    metadata: tuple[tuple[str, int], ...]  # (name, buffer index)
    buffer_count: int

    @property
    def main(self) -> SubgraphInfo:
        return self.subgraphs[0]

    @property
    def tensor_count(self) -> int:
        return sum(len(sg.tensors) for sg in self.subgraphs)


def _ints(getter_len: Any, getter: Any) -> tuple[int, ...]:
    return tuple(int(getter(i)) for i in range(getter_len()))


def _subgraph_calls(op: Any, name: str) -> tuple[int, ...]:
    table = op.BuiltinOptions()
    if table is None:
        return ()
    if name == "IF":
        opts = fb.IfOptions()
        opts.Init(table.Bytes, table.Pos)
        return (int(opts.ThenSubgraphIndex()), int(opts.ElseSubgraphIndex()))
    if name == "WHILE":
        w = fb.WhileOptions()
        w.Init(table.Bytes, table.Pos)
        return (int(w.CondSubgraphIndex()), int(w.BodySubgraphIndex()))
    if name == "CALL_ONCE":
        c = fb.CallOnceOptions()
        c.Init(table.Bytes, table.Pos)
        return (int(c.InitSubgraphIndex()),)
    return ()


def _adjoint(op: Any, name: str) -> tuple[bool, bool]:
    table = op.BuiltinOptions() if name == "BATCH_MATMUL" else None
    if table is None:
        return (False, False)
    opts = fb.BatchMatMulOptions()
    opts.Init(table.Bytes, table.Pos)
    return (bool(opts.AdjX()), bool(opts.AdjY()))


def _tensor(model: Any, t: Any, index: int) -> TensorInfo:
    shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else ()))
    elements = 1
    for d in shape:
        elements *= max(d, 0)
    ttype = int(t.Type())
    if ttype not in _TYPE_BYTES:
        raise ModelFormatError(f"tensor {index}: unsupported tensor type {ttype}")
    buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    has_data = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
    q = t.Quantization()
    scales = int(q.ScaleLength()) if q is not None else 0
    zps = int(q.ZeroPointLength()) if q is not None else 0
    name = t.Name()
    return TensorInfo(
        index=index,
        name=name.decode("utf-8", "replace") if name else "",
        dtype=_type_names().get(ttype, str(ttype)).lower(),
        shape=shape,
        nbytes=elements * _TYPE_BYTES[ttype],
        has_data=has_data,
        is_variable=bool(t.IsVariable()),
        scales=scales,
        zero_points=zps,
        scale=float(q.Scale(0)) if scales else None,
        zero_point=int(q.ZeroPoint(0)) if zps else None,
    )


def parse_model(data: bytes) -> ModelInfo:
    """Parse the flatbuffer; raise ModelFormatError on anything unreadable."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFormatError("not a TFLite flatbuffer (missing TFL3 identifier)")
    try:
        model = fb.Model.GetRootAs(data, 0)
        codes: list[str] = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            name = _op_names().get(code, f"BUILTIN_{code}")
            if name == "CUSTOM":
                custom = oc.CustomCode()
                name = "CUSTOM:" + (custom.decode() if custom else "")
            codes.append(name)
        subgraphs = []
        for s in range(model.SubgraphsLength()):
            sg = model.Subgraphs(s)
            tensors = tuple(_tensor(model, sg.Tensors(i), i) for i in range(sg.TensorsLength()))
            ops = []
            for k in range(sg.OperatorsLength()):
                op = sg.Operators(k)
                opcode = codes[op.OpcodeIndex()]
                ops.append(
                    OperatorInfo(
                        index=k,
                        opcode=opcode,
                        inputs=_ints(op.InputsLength, op.Inputs),
                        outputs=_ints(op.OutputsLength, op.Outputs),
                        intermediates=_ints(op.IntermediatesLength, op.Intermediates),
                        subgraph_calls=_subgraph_calls(op, opcode),
                        adjoint=_adjoint(op, opcode),
                    )
                )
            subgraphs.append(
                SubgraphInfo(
                    tensors=tensors,
                    operators=tuple(ops),
                    inputs=_ints(sg.InputsLength, sg.Inputs),
                    outputs=_ints(sg.OutputsLength, sg.Outputs),
                )
            )
        metadata = []
        for i in range(model.MetadataLength()):
            md = model.Metadata(i)
            raw = md.Name()
            metadata.append((raw.decode("utf-8", "replace") if raw else "", int(md.Buffer())))
        if not subgraphs:
            raise ModelFormatError("model has no subgraphs")
        return ModelInfo(tuple(subgraphs), tuple(metadata), int(model.BuffersLength()))
    except ModelFormatError:
        raise
    except Exception as exc:  # flatbuffers raises IndexError/struct.error etc. on garbage
        raise ModelFormatError(f"unreadable TFLite flatbuffer: {exc}") from exc


def metadata_buffer(data: bytes, name: str) -> bytes | None:
    """Raw bytes of the model metadata entry called ``name`` (e.g. "OfflineMemoryAllocation")."""
    try:
        model = fb.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            md = model.Metadata(i)
            raw = md.Name()
            if raw is not None and raw.decode("utf-8", "replace") == name:
                buf = model.Buffers(md.Buffer())
                if buf is None or buf.DataLength() == 0:
                    return b""
                return bytes(buf.DataAsNumpy().tobytes())
    except Exception as exc:
        raise ModelFormatError(f"unreadable metadata: {exc}") from exc
    return None
