"""LwM2M-JSON (OMA 1.0 ``application/vnd.oma.lwm2m+json``, 11543 / 1543) vectors written out by hand."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.protocol.codecs.lwm2m_json import LwM2MJsonCodec
from lwm2m_server.protocol.model import ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

JSON = LwM2MJsonCodec()
P = LwM2MPath.parse


def test_device_instance() -> None:
    content = {
        P("/3/0/0"): "Open Mobile Alliance",
        P("/3/0/6/0"): 1,
        P("/3/0/6/1"): 5,
        P("/3/0/9"): 100,
        P("/3/0/13"): 1367491215,
    }
    payload = (
        b'{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"6/0","v":1},{"n":"6/1","v":5},'
        b'{"n":"9","v":100},{"n":"13","v":1367491215}]}'
    )
    assert JSON.encode(P("/3/0"), content, MODEL) == payload  # type: ignore[arg-type]
    assert JSON.decode(P("/3/0"), payload, MODEL) == content


def test_value_keys_for_every_type() -> None:
    content = {
        P("/40000/0/3"): 1.5,
        P("/40000/0/4"): False,
        P("/40000/0/5"): b"\xfb\xff",
        P("/40000/0/7"): ObjectLink(3, 0),
    }
    payload = (
        b'{"bn":"/40000/0/","e":[{"n":"3","v":1.5},{"n":"4","bv":false},{"n":"5","sv":"+/8="},{"n":"7","ov":"3:0"}]}'
    )
    assert JSON.encode(P("/40000/0"), content, MODEL) == payload  # type: ignore[arg-type]
    assert JSON.decode(P("/40000/0"), payload, MODEL) == content


def test_single_resource_and_missing_bn() -> None:
    assert JSON.encode(P("/3/0/9"), {P("/3/0/9"): 7}, MODEL) == b'{"bn":"/3/0/9","e":[{"v":7}]}'
    assert JSON.decode(P("/3/0/9"), b'{"e":[{"v":7}]}', MODEL) == {P("/3/0/9"): 7}
    assert JSON.decode(P("/3/0"), b'{"e":[{"n":"9","v":7}]}', MODEL) == {P("/3/0/9"): 7}
    assert JSON.decode(P("/30000/0"), b'{"e":[{"n":"1","sv":"x"},{"n":"2","v":2.5}]}', MODEL) == {
        P("/30000/0/1"): "x",
        P("/30000/0/2"): 2.5,
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"bn":"/3/0/","e":[{"n":"9","sv":"1"}]}', "sv does not fit"),
        (b'{"bn":"/3/0/","e":[{"n":"0","v":1}]}', "numeric value does not fit"),
        (b'{"bn":"/3/0/","e":[{"n":"9","v":1,"bv":true}]}', "exactly one"),
        (b'{"bn":"/3/0/","e":{}}', "array 'e'"),
        (b'{"bn":5,"e":[]}', "bn must be a string"),
        (b'[{"n":"9","v":1}]', "JSON object"),
        (b'{"bn":"/4/0/","e":[{"n":"9","v":1}]}', "outside"),
        (b'{"bn":"/3/0/","e":[{"n":"0","sv":"\xc3"}]}', "UTF-8"),
    ],
)
def test_rejections(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        JSON.decode(P("/3/0"), payload, MODEL)


def test_old_number_is_the_same_format() -> None:
    old = codec_for(ContentFormat.OLD_LWM2M_JSON)
    assert (old.content_format, old.name) == (1543, "old-lwm2m-json")
    assert old.decode(P("/3/0/9"), b'{"e":[{"v":7}]}', MODEL) == {P("/3/0/9"): 7}
