"""text/plain (content format 0): one resource value as UTF-8 text.

Numbers are decimal, booleans ``0``/``1``, objlnk ``3:0``, opaque base64 (LwM2M 1.0 rule), time seconds.
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import check_payload, leaf_path, single_item
from lwm2m_server.protocol.codecs.values import check_value, from_text, resource_type, to_text, utf8
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath


class TextCodec:
    content_format = 0
    name = "text"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        value = single_item(path, content, "text/plain")
        rtype, checked = check_value(resource_type(model, path), value, path)
        return to_text(rtype, checked, path).encode("utf-8")

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        leaf_path(path)
        text = utf8(check_payload(payload), path)
        return {path: from_text(resource_type(model, path), text, path)}
