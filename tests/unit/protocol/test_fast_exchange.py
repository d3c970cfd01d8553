"""The fast client's requests are the bytes aiocoap would send for the same RequestSpec, and its responses read
back as the same RawResponse (so a caller cannot tell which stack carried a Block1 push)."""

from __future__ import annotations

import aiocoap
import pytest

from lwm2m_server.coap.exchange import RawResponse, RequestSpec, build_message
from lwm2m_server.coap.fast_exchange import raw_response, spec_options
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.registration import Registration

REG = Registration("dev", "r1", "127.0.0.1", 5700, 300, root_path="/")
SPECS = [
    RequestSpec("PUT", "/5/0/0", b"\x01" * 1024, content_format=42, block1=(0, 6, True), size1=54300),
    RequestSpec("PUT", "/5/0/0", b"\x02" * 300, content_format=42, block1=(53, 6, False)),
    RequestSpec("PUT", "/5/0/0", b"\x03" * 16, content_format=42, block1=(4095, 0, True)),
    RequestSpec("POST", "/5/0/2", b"", query=("a=1", "b"), accept=110),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("root", ["/", "/lwm2m"])
def test_request_bytes_match_aiocoap(spec: RequestSpec, root: str) -> None:
    reg = Registration("dev", "r1", "127.0.0.1", 5700, 300, root_path=root)
    theirs = build_message(reg, spec)
    theirs.mtype, theirs.mid, theirs.token = aiocoap.CON, 0x4242, b"\x99\x01"
    ours = m.encode(m.CON, int(theirs.code), 0x4242, b"\x99\x01", spec_options(reg, spec), spec.payload)
    assert ours == theirs.encode()


def test_response_reads_as_aiocoap_reads_it() -> None:
    data = m.encode(m.ACK, 0x5F, 7, b"\x01", ((m.BLOCK1, m.block_option(3, True, 5)), (m.SIZE1, m.uint_option(2048)),
                                             (m.ETAG, b"\xaa\xbb"), (m.CONTENT_FORMAT, b"")), b"ok")  # fmt: skip
    assert raw_response(m.decode(data)) == RawResponse.from_message(aiocoap.Message.decode(data))
    assert raw_response(m.decode(data)).block1 == (3, 5, True)
