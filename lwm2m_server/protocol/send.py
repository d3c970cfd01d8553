"""The LwM2M 1.1 Send operation (TS Core 6.4.1 / Transport 6.4): a client POSTs ``/dp`` with a SenML pack
(SenML-CBOR or SenML-JSON) of values at absolute paths, each optionally timestamped. Sans-IO: the payload
becomes :class:`TimedValue` records; the clock is the caller's (``TimedValue.epoch_time(now)``).
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs import CodecError, ContentFormat
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.codecs.senml_cbor import SenmlCborCodec
from lwm2m_server.protocol.codecs.senml_json import SenmlJsonCodec
from lwm2m_server.protocol.model import ObjectRegistry

SEND_PATH = ("dp",)
"""The Uri-Path a client sends to."""

SEND_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON)
"""Content formats a Send may carry."""

_CODECS: dict[int, SenmlCborCodec | SenmlJsonCodec] = {
    ContentFormat.SENML_CBOR: SenmlCborCodec(),
    ContentFormat.SENML_JSON: SenmlJsonCodec(),
}


def _codec(content_format: int) -> SenmlCborCodec | SenmlJsonCodec:
    codec = _CODECS.get(content_format)
    if codec is None:
        raise CodecError(f"a Send carries SenML-CBOR or SenML-JSON, not content format {content_format}")
    return codec


def decode_send(content_format: int | None, payload: bytes, model: ObjectRegistry) -> list[TimedValue]:
    """The values of a Send; CodecError (answered 4.00 / 4.15) for anything else."""
    if content_format is None:
        raise CodecError("a Send needs a Content-Format (SenML-CBOR 112 or SenML-JSON 110)")
    values = _codec(content_format).decode_timed(payload, model)
    if not values:
        raise CodecError("a Send without values")
    return values


def encode_send(content_format: int, values: list[TimedValue], model: ObjectRegistry) -> bytes:
    """A Send payload (the simulator's side): one record per value, absolute names, ``t`` when timed."""
    return _codec(content_format).encode_timed(values, model)
