"""LwM2M-CBOR (content format 11544, LwM2M 1.2 Transport 7.4.7): nested CBOR maps keyed by path ids.

Paths are always absolute (from the Object ID, whatever the request path): ``{3: {0: {0: "ACME", 9: 95}}}``.
A key is an id or an array of ids standing for several levels at once, so ``{[3, 0]: {0: "ACME"}}`` and
``{[3, 0, 0]: "ACME"}`` say the same. A leaf is a resource or resource-instance value as in application/cbor
(objlnk a text ``"3:0"``, opaque a byte string, numbers in any CBOR form incl. tag 4 decimal fractions).
The same path twice is a CodecError; ``null`` (a value deletion, LwM2M 1.2) is not accepted here.

We encode the request path as one array key, then one map level per id (``{[3, 0]: {0: ..., 9: ...}}``);
at the root, one map level per id from the Object ID.
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import (
    MAX_RECORDS,
    CodecError,
    check_path,
    check_payload,
    leaf_items,
)
from lwm2m_server.protocol.codecs.cbor import cbor_dumps, cbor_loads, from_cbor_item, normalize_number, to_cbor_item
from lwm2m_server.protocol.codecs.senml import check_multiplicity
from lwm2m_server.protocol.codecs.values import check_value, resource_type
from lwm2m_server.protocol.model import Content, ObjectRegistry, Value
from lwm2m_server.protocol.paths import MAX_ID, LwM2MPath


def _key_ids(key: object) -> tuple[int, ...]:
    items = list(key) if isinstance(key, tuple | list) else [key]  # cbor2 gives array keys as tuples
    if not items:
        raise CodecError("LwM2M-CBOR: an empty array is not a path key")
    ids: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= MAX_ID:
            raise CodecError(f"LwM2M-CBOR: map key {str(key)[:40]} is not a path id (0..{MAX_ID})")
        ids.append(item)
    return tuple(ids)


def _walk(node: dict[object, object], prefix: tuple[int, ...], out: list[tuple[LwM2MPath, object]]) -> None:
    if not node and prefix:  # an empty top-level map is empty content
        raise CodecError(f"LwM2M-CBOR: empty map under /{'/'.join(map(str, prefix))}")
    for key, value in node.items():
        ids = prefix + _key_ids(key)
        if len(ids) > 4:
            raise CodecError(f"LwM2M-CBOR: path /{'/'.join(map(str, ids))} is deeper than a resource instance")
        if isinstance(value, dict):
            _walk(value, ids, out)
            continue
        if len(ids) < 3:
            raise CodecError(f"LwM2M-CBOR: a value at /{'/'.join(map(str, ids))}, not at a resource")
        out.append((LwM2MPath.from_ids(*ids), value))
        if len(out) > MAX_RECORDS:
            raise CodecError(f"LwM2M-CBOR payload has more than {MAX_RECORDS} values")


def _decode(path: LwM2MPath | None, payload: bytes, model: ObjectRegistry) -> Content:
    item = cbor_loads(check_payload(payload))
    if not isinstance(item, dict):
        raise CodecError("LwM2M-CBOR payload must be a CBOR map")
    leaves: list[tuple[LwM2MPath, object]] = []
    _walk(item, (), leaves)
    out: Content = {}
    for key, raw in leaves:
        if path is not None and not path.is_prefix_of(key):
            raise CodecError(f"LwM2M-CBOR: {key} is outside the request path {path}")
        if key in out:
            raise CodecError(f"LwM2M-CBOR: duplicate path {key}")
        if raw is None:
            raise CodecError(f"{key}: null (value deletion) is not supported")
        out[key] = from_cbor_item(resource_type(model, key), normalize_number(raw, str(key)), key)
    return out


def _encode(path: LwM2MPath | None, content: Content, model: ObjectRegistry) -> bytes:
    items: list[tuple[LwM2MPath, Value]] = leaf_items(path, content)
    prefix = path.ids if path is not None else ()
    tree: dict[int, object] = {}
    leaf: object = None
    for key, value in items:
        check_multiplicity(model, key)
        rtype, checked = check_value(resource_type(model, key), value, key)
        rest = key.ids[len(prefix) :]
        if not rest:
            leaf = to_cbor_item(rtype, checked)
            continue
        node = tree
        for ident in rest[:-1]:
            child = node.setdefault(ident, {})
            assert isinstance(child, dict)
            node = child
        node[rest[-1]] = to_cbor_item(rtype, checked)
    if not prefix:
        return cbor_dumps(tree)
    body = leaf if leaf is not None and not tree else tree
    top: object = prefix[0] if len(prefix) == 1 else tuple(prefix)  # a tuple is written as a CBOR array
    return cbor_dumps({top: body} if items else {})


class LwM2MCborCodec:
    content_format = 11544
    name = "lwm2m-cbor"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        check_path(path)
        return _encode(path, content, model)

    def encode_root(self, content: Content, model: ObjectRegistry) -> bytes:
        return _encode(None, content, model)

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        return _decode(path, payload, model)

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content:
        return _decode(None, payload, model)
