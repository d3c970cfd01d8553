"""``tinymlaas decode`` / ``encode``: JSON typed by the model, hex out, exit 2 + one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lwm2m_server.cli import app
from lwm2m_server.cli.app import CliError

OMA = "4f70656e204d6f62696c6520416c6c69616e6365"
runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output.strip()


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert isinstance(result.exception, CliError), (result.output, result.exception)
    assert result.exception.code == 2
    message = str(result.exception)
    assert "\n" not in message
    return message


def test_decode_tlv_instance() -> None:
    out = run("decode", "--format", "tlv", "--path", "/3/0", f"c8 00 14 {OMA} 86 06 41 00 01 41 01 05 c4 0d 5182428f")
    assert json.loads(out) == {"/3/0/0": "Open Mobile Alliance", "/3/0/6/0": 1, "/3/0/6/1": 5, "/3/0/13": 1367491215}


def test_decode_types_opaque_objlnk_float_bool() -> None:
    # resources unknown to the model: TLV can only say "bytes"
    payload = "c1 04 01 c2 05 00ff c4 07 00030000 c4 03 3fc00000"
    out = json.loads(run("decode", "-f", "tlv", "-p", "/30000/0", payload))
    assert out == {"/30000/0/3": {"hex": "3fc00000"}, "/30000/0/4": {"hex": "01"}, "/30000/0/5": {"hex": "00ff"},
                   "/30000/0/7": {"hex": "00030000"}}  # fmt: skip
    # known resources are typed by the model: objlnk (3/0/22), integer, time, string
    senml = b'[{"bn":"/3/0/","n":"22/0","vlo":"3:0"},{"n":"9","v":50},{"n":"13","v":1.7e9},{"n":"0","vs":"A"}]'
    out = json.loads(run("decode", "-f", "senml-json", "-p", "/3/0", senml.hex()))
    assert out == {"/3/0/0": "A", "/3/0/9": 50, "/3/0/13": 1700000000, "/3/0/22/0": "3:0"}
    assert isinstance(out["/3/0/13"], int)
    # float and boolean from our TinyML objects
    out = json.loads(run("decode", "-f", "senml-cbor", "-p", "/32001/0/6", "81 a2 21 6a 2f33323030312f302f36 04 f5"))
    assert out == {"/32001/0/6": True}


def test_decode_from_file_and_every_format(tmp_path: Path) -> None:
    file = tmp_path / "p.bin"
    file.write_bytes(bytes.fromhex("81 a2 21 66 2f352f302f30 08 42 00ff".replace(" ", "")))
    assert json.loads(run("decode", "-f", "senml-cbor", "-p", "/5/0/0", f"@{file}")) == {"/5/0/0": {"hex": "00ff"}}
    assert json.loads(run("decode", "-f", "text", "-p", "/3/0/9", b"42".hex())) == {"/3/0/9": 42}
    assert json.loads(run("decode", "-f", "opaque", "-p", "/5/0/0", "0x00ff")) == {"/5/0/0": {"hex": "00ff"}}
    assert json.loads(run("decode", "-f", "cbor", "-p", "/3/0/13", "1a6553f100")) == {"/3/0/13": 1700000000}
    lwm2m_json = b'{"bn":"/3/0/","e":[{"n":"1","sv":"M"}]}'
    assert json.loads(run("decode", "-f", "lwm2m-json", "-p", "/3/0", lwm2m_json.hex())) == {"/3/0/1": "M"}
    assert json.loads(run("decode", "-f", "11542", "-p", "/3/0/9", "c10964")) == {"/3/0/9": 100}


def test_decode_link_prints_links_with_params() -> None:
    text = b'</3/0>;ver=1.1,</3/0/1>;pmin="10";obs'
    assert json.loads(run("decode", "-f", "link", "-p", "/3", text.hex())) == [
        {"target": "/3/0", "params": {"ver": "1.1"}},
        {"target": "/3/0/1", "params": {"pmin": "10", "obs": None}},
    ]


def test_encode_is_the_inverse() -> None:
    content = {"/3/0/0": "Open Mobile Alliance", "/3/0/6/0": 1, "/3/0/6/1": 5}
    assert run("encode", "-f", "tlv", "-p", "/3/0", json.dumps(content)) == f"c80014{OMA}8606410001410105"
    for fmt in ("senml-json", "senml-cbor", "lwm2m-json", "tlv"):
        hex_out = run("encode", "-f", fmt, "-p", "/3/0", json.dumps(content))
        assert json.loads(run("decode", "-f", fmt, "-p", "/3/0", hex_out)) == content
    assert run("encode", "-f", "opaque", "-p", "/5/0/0", '{"/5/0/0": {"hex": "00ff"}}') == "00ff"
    assert run("encode", "-f", "text", "-p", "/3/0/22/0", '{"/3/0/22/0": "3:0"}') == b"3:0".hex()
    assert run("encode", "-f", "link", "-p", "/3", '[{"target": "/3/0", "params": {"ver": "1.1"}}]') == (
        b"</3/0>;ver=1.1".hex()
    )


def test_objects_option_adds_ddf(tmp_path: Path) -> None:
    ddf = tmp_path / "ddf"
    ddf.mkdir()
    (ddf / "41000.xml").write_text(
        """<LWM2M><Object ObjectType="MODefinition"><Name>T</Name><Description1>t</Description1>
        <ObjectID>41000</ObjectID><ObjectURN>urn:oma:lwm2m:x:41000</ObjectURN><LWM2MVersion>1.1</LWM2MVersion>
        <ObjectVersion>1.0</ObjectVersion><MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Resources><Item ID="0"><Name>Temp</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Mandatory</Mandatory><Type>Float</Type><RangeEnumeration></RangeEnumeration><Units>Cel</Units>
        <Description>t</Description></Item></Resources></Object></LWM2M>"""
    )
    payload = "c4 00 3fc00000"
    assert json.loads(run("decode", "-f", "tlv", "-p", "/41000/0", payload)) == {"/41000/0/0": {"hex": "3fc00000"}}
    assert json.loads(run("decode", "-f", "tlv", "-p", "/41000/0", payload, "--objects", str(ddf))) == {
        "/41000/0/0": 1.5
    }
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.xml").write_text("<LWM2M><Object>")
    assert "bad object definition" in fails("decode", "-f", "tlv", "-p", "/3/0", "c10964", "--objects", str(bad))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "-f", "tlv", "-p", "/3/0", "c8 00 14 4f"), "declares 20 value bytes"),
        (("decode", "-f", "tlv", "-p", "/3/0", "zz"), "not valid hex"),
        (("decode", "-f", "tlv", "-p", "/3/0", "@/nonexistent/file"), "cannot read"),
        (("decode", "-f", "xml", "-p", "/3/0", "00"), "unknown format"),
        (("decode", "-f", "99", "-p", "/3/0", "00"), "unsupported content format 99"),
        (("decode", "-f", "tlv", "-p", "/3/x", "00"), "bad path"),
        (("decode", "-f", "senml-json", "-p", "/3/0", b'[{"bn":"/3/0/9","x_":1,"v":1}]'.hex()), "must-understand"),
        (("decode", "-f", "link", "-p", "/3", b"<oops".hex()), "bad link format"),
        (("encode", "-f", "tlv", "-p", "/3/0", "{not json"), "not valid JSON"),
        (("encode", "-f", "tlv", "-p", "/3/0", '{"/3/0/9": "high"}'), "does not fit"),
        (("encode", "-f", "tlv", "-p", "/3/0", '{"/3/0/9": [1]}'), "unsupported JSON value"),
        (("encode", "-f", "opaque", "-p", "/5/0/0", '{"/5/0/0": {"hex": "zz"}}'), "invalid hex"),
        (("encode", "-f", "tlv", "-p", "/3/0", "[1]"), "JSON object"),
        (("encode", "-f", "link", "-p", "/3", '[{"params": {}}]'), "target"),
    ],
)
def test_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    assert message in fails(*args)


def test_real_process_exit_code_and_no_traceback() -> None:
    code = "from lwm2m_server.cli import main; main()"
    bad = subprocess.run(
        [sys.executable, "-c", code, "decode", "--format", "tlv", "--path", "/3/0", "c8 00 14 4f"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: cannot decode tlv:")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr + bad.stdout
    good = subprocess.run(
        [sys.executable, "-c", code, "decode", "--format", "tlv", "--path", "/3/0/9", "c10964"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0
    assert json.loads(good.stdout) == {"/3/0/9": 100}


def test_decode_then_encode_gives_the_same_bytes() -> None:
    from tests.unit.codecs.test_tlv_vectors import DEVICE_HEX

    hex_in = DEVICE_HEX.replace(" ", "")
    as_json = run("decode", "-f", "tlv", "-p", "/3/0", hex_in)
    assert run("encode", "-f", "tlv", "-p", "/3/0", as_json) == hex_in


def test_decode_root_path_composite() -> None:
    payload = b'[{"bn":"/3/0/","n":"0","vs":"ACME"},{"bn":"/5/0/","n":"3","v":1}]'.hex()
    out = run("decode", "--format", "senml-json", "--path", "/", payload)
    assert json.loads(out) == {"/3/0/0": "ACME", "/5/0/3": 1}
    hexed = run("encode", "--format", "senml-cbor", "--path", "/", '{"/3/0/0": "ACME", "/5/0/3": 1}')
    assert json.loads(run("decode", "--format", "112", "--path", "/", hexed)) == {"/3/0/0": "ACME", "/5/0/3": 1}


def test_decode_duplicates_and_root_tlv_exit_2() -> None:
    twice = b'[{"bn":"/3/0/9","v":1},{"bn":"/3/0/9","v":2}]'.hex()
    assert "duplicate path /3/0/9" in fails("decode", "-f", "senml-json", "-p", "/3/0", twice)
    assert "the same resource appears twice" in fails("decode", "-f", "tlv", "-p", "/3/0", "c1 09 05 c1 09 06")
    assert "cannot carry content for the root" in fails("decode", "-f", "tlv", "-p", "/", "c1 09 05")
