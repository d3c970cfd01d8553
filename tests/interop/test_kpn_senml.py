"""SenML cross-check against an independent implementation: PyPI ``kpn-senml`` (KPN's SenML JSON/CBOR library).

Their encoder -> our Send/root decoder (names bn + n, base time bt + t, numbers, strings, booleans), and our
root encoder -> their parser (absolute names in ``n``, values). Their parser ignores times, and their JSON
encoder cannot write opaque values (base64 bytes into json.dumps), so those are not checked. Its record module
still names Python 2's ``basestring``; the test gives that module ``str`` under that name.
"""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import ContentFormat, decode_root, encode_root
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.protocol.send import decode_send

kpn = pytest.importorskip("kpn_senml")
kpn.senml_record.basestring = str  # their Python 2 leftover (NameError on any string value otherwise)

MODEL = ObjectRegistry.default()
P = LwM2MPath.parse


def their_pack() -> object:
    pack = kpn.SenmlPack("/3/0/")
    pack.base_time = 1_700_000_000
    for name, value, time in (("9", 80, 1_700_000_000), ("0", "ACME", 1_700_000_030), ("10", 256, 1_700_000_060)):
        pack.add(kpn.SenmlRecord(name, value=value, time=time))
    return pack


EXPECTED = [
    TimedValue(P("/3/0/9"), 80, 1_700_000_000.0),
    TimedValue(P("/3/0/0"), "ACME", 1_700_000_030.0),
    TimedValue(P("/3/0/10"), 256, 1_700_000_060.0),
]


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
def test_their_pack_decodes_as_a_send(cf: int) -> None:
    pack = their_pack()
    payload = pack.to_json().encode() if cf == ContentFormat.SENML_JSON else pack.to_cbor()
    got = decode_send(cf, payload, MODEL)
    # kpn writes bt on the first record and each t relative to it
    assert [(v.path, v.value) for v in got] == [(v.path, v.value) for v in EXPECTED]
    assert [v.time for v in got] == [v.time for v in EXPECTED]


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
def test_our_root_pack_parses_in_theirs(cf: int) -> None:
    content = {P("/3/0/0"): "ACME", P("/3/0/9"): 95, P("/1/0/6"): True, P("/6/0/0"): 60.5}
    payload = encode_root(cf, content, MODEL)
    seen: dict[str, object] = {}
    pack = kpn.SenmlPack("", lambda record, **_: seen.__setitem__(record.name, record.value))
    if cf == ContentFormat.SENML_JSON:
        pack.from_json(payload.decode())
    else:
        pack.from_cbor(payload)
    assert seen == {str(k): v for k, v in content.items()}
    assert decode_root(cf, payload, MODEL) == content
