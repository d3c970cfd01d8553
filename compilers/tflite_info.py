"""Read what the compiler needs from a ``.tflite`` flatbuffer (ops, I/O specs, numeric kind) without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from compilers.artifact import TensorSpec

_DTYPES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


class ModelKindError(ValueError):
    """The model cannot run on TFLite Micro (float16 tensors, or a kernel the runtime refuses)."""


@dataclass(frozen=True)
class TfliteInfo:
    ops: list[str]  # distinct op names in first-use order ("CONV_2D", "ethos-u" for custom ops)
    input_spec: TensorSpec
    output_spec: TensorSpec
    activation_dtypes: frozenset[str]  # dtypes of non-constant tensors
    constant_dtypes: frozenset[str]  # dtypes of tensors with data (weights, biases)
    activation_counts: dict[str, int] = field(default_factory=dict)  # non-constant tensors per dtype

    @property
    def kind(self) -> str:
        """The numeric scheme, as TFLite Micro runs it:

        - ``"float32"``: float activations, float (or DEQUANTIZE-d) weights;
        - ``"int8"``: int8 activations (int16/int32 internals allowed, e.g. an LSTM's cell state);
        - ``"int16x8"``: 16x8 quantization, mostly int16 activations with int8 weights (I/O may be
          float32 through QUANTIZE/DEQUANTIZE, or int16);
        - ``"hybrid"``: float activations fed straight to int8 weights (dynamic-range quantization).

        Only float16 tensors raise :class:`ModelKindError` here (TFLM has no float16 kernels); whether
        the runtime accepts a hybrid or mixed graph is its own kernels' call (``finish_artifact`` asks it).
        """
        if "float16" in self.activation_dtypes | self.constant_dtypes:
            raise ModelKindError("float16 tensors present (float16 quantization): not runnable on TFLite Micro")
        counts = self.activation_counts
        ints = counts.get("int8", 0) + counts.get("int16", 0)
        if "float32" in self.activation_dtypes and counts.get("float32", 0) >= ints:
            quantized_weights = self.constant_dtypes & {"int8", "int4"}
            if quantized_weights and "DEQUANTIZE" not in self.ops:
                return "hybrid"
            return "float32"
        if counts.get("int16", 0) > counts.get("int8", 0):
            return "int16x8"
        return "int8"

    @property
    def float_math(self) -> bool:
        """Any float32 activation (float model, float I/O around a quantized graph, hybrid)."""
        return "float32" in self.activation_dtypes


def _op_name(model: schema.Model, index: int) -> str:
    code = model.OperatorCodes(index)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
        return (code.CustomCode() or b"CUSTOM").decode()
    return _OPS.get(builtin, f"OP_{builtin}")


def _spec(sub: schema.SubGraph, tensor_index: int) -> TensorSpec:
    t = sub.Tensors(tensor_index)
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    q = t.Quantization()
    scale, zp = 0.0, 0
    if q is not None and q.ScaleLength():
        scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0))
    return TensorSpec(shape=shape, dtype=_DTYPES.get(t.Type(), str(t.Type())), scale=scale, zero_point=zp)


def inspect_tflite(data: bytes) -> TfliteInfo:
    """Parse the flatbuffer; raises ``ValueError`` if it is not a TFLite model."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (missing TFL3 identifier)")
    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("TFLite model has no subgraph")
    sub = model.Subgraphs(0)
    ops: list[str] = []
    for i in range(sub.OperatorsLength()):
        name = _op_name(model, sub.Operators(i).OpcodeIndex())
        if name not in ops:
            ops.append(name)
    act: dict[str, int] = {}
    const: set[str] = set()
    for g in range(model.SubgraphsLength()):
        s = model.Subgraphs(g)
        intermediates = {  # quantization bookkeeping of LSTM-like kernels, never computed in
            s.Operators(j).Intermediates(k)
            for j in range(s.OperatorsLength())
            for k in range(s.Operators(j).IntermediatesLength())
        }
        for i in range(s.TensorsLength()):
            if i in intermediates:
                continue
            t = s.Tensors(i)
            buf = model.Buffers(t.Buffer())
            has_data = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
            dtype = _DTYPES.get(t.Type(), str(t.Type()))
            if has_data:
                const.add(dtype)
            else:
                act[dtype] = act.get(dtype, 0) + 1
    return TfliteInfo(
        ops=ops,
        input_spec=_spec(sub, sub.Inputs(0)),
        output_spec=_spec(sub, sub.Outputs(0)),
        activation_dtypes=frozenset(act),
        constant_dtypes=frozenset(const),
        activation_counts=act,
    )
