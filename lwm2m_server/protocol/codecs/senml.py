"""SenML records (RFC 8428) <-> flat content, shared by SenML-JSON (110) and SenML-CBOR (112).

Records here use the JSON label names (``bn``, ``n``, ``v``, ``vs``, ``vb``, ``vd``, ``vlo``, ...) with
``vd`` already as bytes; the JSON and CBOR modules only map labels and the serialisation. A record's name
is the current base name (which persists until a later record changes it) plus its own ``n``; its time is
the current base time (which persists likewise) plus its own ``t``.

A request path of ``None`` is the root ``/`` (Read-Composite and Observe-Composite answers, Send): every
record then names its own absolute path. The same path twice is a CodecError (never a silent overwrite);
:func:`records_to_timed` allows one path at several *different* times, as Send carries historical values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lwm2m_server.protocol.codecs.base import LEAF_LEVELS, MAX_RECORDS, CodecError, check_path, leaf_items
from lwm2m_server.protocol.codecs.values import check_value, number_value, parse_objlnk, resource_type
from lwm2m_server.protocol.model import Content, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath

VALUE_LABELS = ("v", "vs", "vb", "vd", "vlo")
"""The value labels LwM2M uses (``vlo`` is the LwM2M objlnk extension)."""

NUMBER_LABELS = frozenset({"bt", "t", "bv", "bs", "s", "ut", "bver"})
IGNORED_LABELS = frozenset({"bu", "u", "bs", "s", "ut", "bver"})
"""Valid RFC 8428 labels that carry nothing LwM2M content needs."""

KNOWN_LABELS = frozenset({"bn", "bt", "n", "t", "bv", *VALUE_LABELS, *IGNORED_LABELS})

CBOR_LABELS: Mapping[int, str] = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}
"""RFC 8428 Table 6 integer labels for SenML-CBOR; ``vlo`` stays the text key ``"vlo"``."""

CBOR_KEYS: Mapping[str, int | str] = {**{name: label for label, name in CBOR_LABELS.items()}, "vlo": "vlo"}

_LABEL_FOR_TYPE: Mapping[ResourceType, str] = {
    ResourceType.INTEGER: "v",
    ResourceType.UNSIGNED: "v",
    ResourceType.TIME: "v",
    ResourceType.FLOAT: "v",
    ResourceType.STRING: "vs",
    ResourceType.CORELNK: "vs",
    ResourceType.BOOLEAN: "vb",
    ResourceType.OPAQUE: "vd",
    ResourceType.OBJLNK: "vlo",
}


def check_text_label(label: str, index: int) -> str | None:
    """The label if known, None if it may be ignored; must-understand labels (``..._``) are rejected."""
    if label in KNOWN_LABELS:
        return label
    if label.endswith("_"):
        raise CodecError(f"record {index}: unsupported must-understand label {label[:32]!r}")
    return None


RELATIVE_TIME_LIMIT = 2**28
"""RFC 8428 4.5.3: a resolved time below 2**28 is relative to now (seconds), otherwise seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class TimedValue:
    """One resolved SenML record: absolute path, typed value, and its time (bt + t) if the record had one."""

    path: LwM2MPath
    value: Value
    time: float | None = None

    def epoch_time(self, now: float) -> float:
        """The record's time as seconds since the epoch: ``now`` when it had none, RFC 8428 relative times added."""
        if self.time is None:
            return now
        return now + self.time if self.time < RELATIVE_TIME_LIMIT else self.time


def base_name(path: LwM2MPath | None, items: list[tuple[LwM2MPath, Value]]) -> str:
    """``/3/0/0`` for a single value at the request path, else the request path with a trailing ``/``.

    At the root (``path`` None) there is no base name: every record carries its absolute name in ``n``.
    """
    if path is None:
        return ""
    if len(items) == 1 and items[0][0] == path:
        return str(path)
    return str(path) + "/"


def content_to_records(path: LwM2MPath | None, content: Content, model: ObjectRegistry) -> list[dict[str, object]]:
    """One record per leaf, sorted by path; the first record carries ``bn``, the rest only ``n``.

    At the root (``path`` None) no record has ``bn`` and each ``n`` is the absolute path.
    """
    items = leaf_items(path, content)
    base = base_name(path, items)
    records: list[dict[str, object]] = []
    for key, value in items:
        check_multiplicity(model, key)
        rtype, checked = check_value(resource_type(model, key), value, key)
        record: dict[str, object] = {"bn": base} if not records and base else {}
        name = str(key)[len(base) :]
        if name:
            record["n"] = name
        label = _LABEL_FOR_TYPE[rtype]
        record[label] = str(checked) if label == "vlo" else checked
        records.append(record)
    return records


def timed_to_records(values: list[TimedValue], model: ObjectRegistry) -> list[dict[str, object]]:
    """One record per value in the given order, absolute name in ``n``, ``t`` when the value has a time."""
    records: list[dict[str, object]] = []
    for item in values:
        (record,) = content_to_records(None, {item.path: item.value}, model)
        if item.time is not None:
            record["t"] = item.time
        records.append(record)
    return records


def check_multiplicity(model: ObjectRegistry, key: LwM2MPath) -> None:
    """Encoders refuse content whose shape contradicts the model (instances of a single resource...)."""
    rdef = model.resource(key)
    if rdef is None:
        return
    if rdef.multiple and key.resource_instance is None:
        raise CodecError(f"{key}: multiple resource needs resource-instance paths")
    if not rdef.multiple and key.resource_instance is not None:
        raise CodecError(f"{key.truncate('resource')}: single resource given resource instances")


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def records_to_content(path: LwM2MPath | None, records: list[dict[str, object]], model: ObjectRegistry) -> Content:
    """Resolves names (bn + n) and types each value by the model; the same path twice is a CodecError."""
    out: Content = {}
    for index, item in enumerate(records_to_timed(path, records, model)):
        if item.path in out:
            raise CodecError(f"record {index}: duplicate path {item.path}")
        out[item.path] = item.value
    return out


def records_to_timed(
    path: LwM2MPath | None, records: list[dict[str, object]], model: ObjectRegistry
) -> list[TimedValue]:
    """Every value record resolved to (absolute path, typed value, bt + t); base-only records are dropped.

    One path may appear at several different times; the same path at the same time is a CodecError.
    """
    if len(records) > MAX_RECORDS:
        raise CodecError(f"SenML pack has {len(records)} records, more than {MAX_RECORDS}")
    out: list[TimedValue] = []
    seen: set[tuple[LwM2MPath, float | None]] = set()
    bn = ""
    bt: int | float | None = None
    bv: int | float = 0
    for index, record in enumerate(records):
        for label in NUMBER_LABELS & record.keys():
            if not _is_number(record[label]):
                raise CodecError(f"record {index}: {label} must be a number")
        if "bn" in record:
            if not isinstance(record["bn"], str):
                raise CodecError(f"record {index}: bn must be a string")
            bn = record["bn"]
        if "bv" in record:
            bv = record["bv"]  # type: ignore[assignment]  # checked numeric above
        if "bt" in record:
            bt = record["bt"]  # type: ignore[assignment]  # checked numeric above
        n = record.get("n", "")
        if not isinstance(n, str):
            raise CodecError(f"record {index}: n must be a string")
        labels = [label for label in VALUE_LABELS if label in record]
        if not labels:
            if "n" in record:
                raise CodecError(f"record {index} ({bn + n}) has no value")
            continue  # a record carrying only base fields
        if len(labels) > 1:
            raise CodecError(f"record {index}: more than one value label ({', '.join(labels)})")
        key = resolve_name(path, bn + n, index)
        t = record.get("t")
        time = None if bt is None and t is None else (bt or 0) + (t or 0)  # type: ignore[operator]  # numeric
        if (key, time) in seen:
            raise CodecError(f"record {index}: duplicate path {key}" + ("" if time is None else f" at time {time}"))
        seen.add((key, time))
        value = typed_value(resource_type(model, key), labels[0], record[labels[0]], key, bv)
        out.append(TimedValue(key, value, None if time is None else float(time)))
    return out


def resolve_name(path: LwM2MPath | None, name: str, index: int, item: str = "record") -> LwM2MPath:
    """A record's full name (bn + n) as a leaf path under the request path (any path at the root, ``None``),
    or a CodecError naming ``item index``."""
    try:
        key = LwM2MPath.parse(name)
    except ValueError as exc:
        raise CodecError(f"{item} {index}: bad name {name[:64]!r}: {exc}") from None
    if key.level not in LEAF_LEVELS:
        raise CodecError(f"{item} {index}: {key} is not a resource or resource-instance path")
    if path is not None and not path.is_prefix_of(key):
        raise CodecError(f"{item} {index}: {key} is outside the request path {path}")
    return key


def typed_value(rtype: ResourceType | None, label: str, raw: object, path: LwM2MPath, bv: int | float = 0) -> Value:
    """Checks the value label fits the model's type (any label for unknown resources) and types the value."""
    expected = None if rtype is None else _LABEL_FOR_TYPE.get(rtype)
    if rtype is not None and label != expected:
        raise CodecError(f"{path}: value label {label} does not fit a {rtype.value} resource")
    if label == "v":
        if not _is_number(raw):
            raise CodecError(f"{path}: v must be a number")
        number = raw + bv if bv else raw  # type: ignore[operator]  # both numeric
        return number_value(rtype, number, path)
    if label == "vs":
        if not isinstance(raw, str):
            raise CodecError(f"{path}: vs must be a string")
        return raw
    if label == "vb":
        if not isinstance(raw, bool):
            raise CodecError(f"{path}: vb must be a boolean")
        return raw
    if label == "vd":
        if not isinstance(raw, bytes):
            raise CodecError(f"{path}: vd must be binary data")
        return raw
    if not isinstance(raw, str):
        raise CodecError(f"{path}: vlo must be a string 'object:instance'")
    return parse_objlnk(raw, path)


# ---- the pack, for both serialisations ------------------------------------------------------------------------
def pack_records(
    pack: object,
    *,
    serialisation: str,
    record_kind: str,
    label_of: Callable[[object, int], str | None],
    value_of: Callable[[object, int, str], object] = lambda value, index, label: value,
) -> list[dict[str, object]]:
    """A decoded pack as records with JSON label names: ``label_of(key, index)`` maps (or rejects, CodecError)
    each key, None drops it; ``value_of(value, index, label)`` normalises each value. ``serialisation`` ("JSON",
    "CBOR") and ``record_kind`` ("JSON object", "CBOR map") name the container in errors."""
    if not isinstance(pack, list):
        raise CodecError(f"SenML-{serialisation} payload must be a {serialisation} array of records")
    if len(pack) > MAX_RECORDS:
        raise CodecError(f"SenML pack has {len(pack)} records, more than {MAX_RECORDS}")
    records: list[dict[str, object]] = []
    for index, raw in enumerate(pack):
        if not isinstance(raw, dict):
            raise CodecError(f"record {index} is not a {record_kind}")
        record: dict[str, object] = {}
        for key, value in raw.items():
            label = label_of(key, index)
            if label is not None:
                record[label] = value_of(value, index, label)
        records.append(record)
    return records


class SenmlPackCodec:
    """The operations of a SenML codec over records; a serialisation gives ``_dumps`` and ``records``."""

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        check_path(path)
        return self._dumps(content_to_records(path, content, model))

    def encode_root(self, content: Content, model: ObjectRegistry) -> bytes:
        return self._dumps(content_to_records(None, content, model))

    def encode_timed(self, values: list[TimedValue], model: ObjectRegistry) -> bytes:
        """A root pack of timestamped values (Send)."""
        return self._dumps(timed_to_records(values, model))

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        return records_to_content(path, self.records(payload, path), model)

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content:
        return records_to_content(None, self.records(payload), model)

    def decode_timed(self, payload: bytes, model: ObjectRegistry) -> list[TimedValue]:
        """A root pack (Send) as timestamped values; one path may repeat at different times."""
        return records_to_timed(None, self.records(payload), model)

    @staticmethod
    def _dumps(records: list[dict[str, object]]) -> bytes:
        raise NotImplementedError

    @staticmethod
    def records(payload: bytes, path: LwM2MPath | None = None) -> list[dict[str, object]]:
        raise NotImplementedError
