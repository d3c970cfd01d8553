"""Read what the compiler needs from a ``.tflite`` flatbuffer (ops, I/O specs, numeric kind) without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from compilers.artifact import TensorSpec

_DTYPES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


class ModelKindError(ValueError):
    """The model is neither fully int8 nor fully float32 (e.g. dynamic-range or float16): TFLM must not get it."""


@dataclass(frozen=True)
class TfliteInfo:
    ops: list[str]  # distinct op names in first-use order ("CONV_2D", "ethos-u" for custom ops)
    input_spec: TensorSpec
    output_spec: TensorSpec
    activation_dtypes: frozenset[str]  # dtypes of non-constant tensors
    constant_dtypes: frozenset[str]  # dtypes of tensors with data (weights, biases)

    @property
    def kind(self) -> str:
        """``"int8"`` or ``"float32"``; raises :class:`ModelKindError` for anything TFLM should not be sent."""
        io = {self.input_spec.dtype, self.output_spec.dtype}
        if "float16" in self.activation_dtypes | self.constant_dtypes:
            raise ModelKindError("float16 tensors present (float16 quantization): not runnable on TFLite Micro")
        if io == {"int8"} and "float32" not in self.activation_dtypes:
            return "int8"
        if io == {"float32"} and self.activation_dtypes <= {"float32", "int32", "bool"}:
            if "int8" in self.constant_dtypes or "DEQUANTIZE" in self.ops:
                raise ModelKindError("dynamic-range quantized (int8 weights, float activations): not for TFLite Micro")
            return "float32"
        raise ModelKindError(
            f"mixed numeric model (io {sorted(io)}, activations {sorted(self.activation_dtypes)}): "
            "only fully int8 or fully float32 models are accepted"
        )


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
    act: set[str] = set()
    const: set[str] = set()
    for g in range(model.SubgraphsLength()):
        s = model.Subgraphs(g)
        for i in range(s.TensorsLength()):
            t = s.Tensors(i)
            buf = model.Buffers(t.Buffer())
            has_data = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
            (const if has_data else act).add(_DTYPES.get(t.Type(), str(t.Type())))
    return TfliteInfo(
        ops=ops,
        input_spec=_spec(sub, sub.Inputs(0)),
        output_spec=_spec(sub, sub.Outputs(0)),
        activation_dtypes=frozenset(act),
        constant_dtypes=frozenset(const),
    )
