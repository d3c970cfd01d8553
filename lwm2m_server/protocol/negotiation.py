"""Which Content-Format to ask a device for (Accept) or to write with (Content-Format).

Order: an opaque resource written on its own goes raw (42, valid in every version and block-wise
friendly); otherwise the best multi-value format the client announced in its registration ``ct=``
(LwM2M-CBOR for a 1.2 client, then SenML-CBOR, SenML-JSON, TLV, LwM2M-JSON); otherwise the version's
mandatory format: TLV for 1.0, and for 1.1+ text (or opaque for an Opaque resource) for a single value
and TLV for anything larger.
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs import ContentFormat
from lwm2m_server.protocol.model import ObjectRegistry, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath

PREFERENCE: tuple[ContentFormat, ...] = (
    ContentFormat.SENML_CBOR,
    ContentFormat.SENML_JSON,
    ContentFormat.TLV,
    ContentFormat.OLD_TLV,
    ContentFormat.LWM2M_JSON,
    ContentFormat.OLD_LWM2M_JSON,
)
"""Multi-value formats, most preferred first (compact binary before text, current before pre-release)."""


def is_single_value(path: LwM2MPath, model: ObjectRegistry) -> bool:
    """True when ``path`` names exactly one value: a resource instance, or a resource the model says is single.

    A resource the model doesn't know is assumed single (text works for it; a multi-value format would too).
    """
    if path.level == "resource_instance":
        return True
    if path.level != "resource":
        return False
    rdef = model.resource(path)
    return rdef is None or not rdef.multiple


def choose_format(
    path: LwM2MPath,
    lwm2m_version: str,
    supported: frozenset[int],
    model: ObjectRegistry,
    *,
    for_write: bool = False,
) -> int:
    """The Content-Format for a read (Accept) or, with ``for_write``, a write of ``path``."""
    single = is_single_value(path, model)
    opaque = single and model.resource_type(path) is ResourceType.OPAQUE
    if for_write and opaque:
        return ContentFormat.OPAQUE
    if lwm2m_version not in ("1.0", "1.1") and ContentFormat.LWM2M_CBOR in supported:
        return ContentFormat.LWM2M_CBOR  # LwM2M 1.2: the most compact format, absolute paths
    for cf in PREFERENCE:
        if cf in supported:
            return cf
    if lwm2m_version == "1.0":
        return ContentFormat.TLV
    if single:
        return ContentFormat.OPAQUE if opaque else ContentFormat.TEXT
    return ContentFormat.TLV


def choose_composite_format(supported: frozenset[int], candidates: tuple[int, ...]) -> int | None:
    """The first of ``candidates`` (most preferred first) the client announced; None when it announced none."""
    return next((cf for cf in candidates if cf in supported), None)


def choose_composite_answer(lwm2m_version: str, supported: frozenset[int], request_format: int) -> int:
    """The format of composite content (Read/Observe-Composite answers, Write-Composite bodies): LwM2M-CBOR
    for a 1.2 client that announced it, else the SenML format of the path list."""
    if lwm2m_version not in ("1.0", "1.1") and ContentFormat.LWM2M_CBOR in supported:
        return ContentFormat.LWM2M_CBOR
    return request_format
