"""application/octet-stream (content format 42): the raw bytes of one Opaque resource."""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import CodecError, check_payload, leaf_path, single_item
from lwm2m_server.protocol.codecs.values import check_value, resource_type
from lwm2m_server.protocol.model import Content, ObjectRegistry, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath


def _check_opaque(model: ObjectRegistry, path: LwM2MPath) -> None:
    rtype = resource_type(model, path)
    if rtype is not None and rtype is not ResourceType.OPAQUE:
        raise CodecError(f"{path}: the opaque format carries Opaque resources only, this one is {rtype.value}")


class OpaqueCodec:
    content_format = 42
    name = "opaque"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        value = single_item(path, content, "opaque")
        _check_opaque(model, path)
        _, checked = check_value(ResourceType.OPAQUE, value, path)
        assert isinstance(checked, bytes)
        return checked

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        leaf_path(path)
        payload = check_payload(payload)
        _check_opaque(model, path)
        return {path: payload}
