"""DDF loader: every shipped file loads; bad files give DDFError naming the file and element."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m_server.protocol.ddf import DDFError, load_ddf, load_ddf_dir, load_many
from lwm2m_server.protocol.model import OBJECTS_DIR, ObjectRegistry, ResourceType

ITEM = """<Item ID="{id}"><Name>{name}</Name><Operations>{ops}</Operations>
<MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>{type}</Type>
<RangeEnumeration></RangeEnumeration><Units></Units><Description>d</Description></Item>"""


def ddf(items: str = "", *, object_id: str = "<ObjectID>30000</ObjectID>", extra: str = "") -> bytes:
    body = items or ITEM.format(id=0, name="Value", ops="R", type="Integer")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Object ObjectType="MODefinition">
    <Name>Test</Name><Description1>t</Description1>{object_id}
    <LWM2MVersion>1.1</LWM2MVersion><ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>{extra}
    <Resources>{body}</Resources>
  </Object>
</LWM2M>""".encode()


R = "LWM2M/Object[ObjectID=30000]/Resources"
SHIPPED = sorted(OBJECTS_DIR.glob("*.xml"))


@pytest.mark.parametrize("file", SHIPPED, ids=[f.name for f in SHIPPED])
def test_every_shipped_file_loads(file: Path) -> None:
    objs = load_ddf(file)
    assert len(objs) == 1
    assert file.stem == str(objs[0].id)
    assert objs[0].resources


def test_minimal_file() -> None:
    (obj,) = load_ddf(ddf())
    assert obj.id == 30000 and obj.name == "Test" and obj.multiple and not obj.mandatory
    assert obj.urn == "urn:oma:lwm2m:x:30000" and obj.lwm2m_version == "1.1"
    assert obj.resources[0].type is ResourceType.INTEGER


def test_namespaced_elements_are_accepted() -> None:
    xml = ddf().replace(b"<LWM2M ", b'<LWM2M xmlns="urn:example" ')
    assert load_ddf(xml)[0].id == 30000


def test_malformed_xml_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_bytes(ddf()[:-30])
    with pytest.raises(DDFError) as info:
        load_ddf(bad)
    assert info.value.file == str(bad)
    assert "line" in info.value.element
    assert "broken.xml" in str(info.value) and "malformed XML" in str(info.value)


def test_missing_object_id_names_element(tmp_path: Path) -> None:
    bad = tmp_path / "noid.xml"
    bad.write_bytes(ddf(object_id=""))
    with pytest.raises(DDFError) as info:
        load_ddf(bad)
    assert info.value.file == str(bad)
    assert info.value.element == "LWM2M/Object[0]/ObjectID"
    assert "missing" in str(info.value)


def test_bad_type_names_item(tmp_path: Path) -> None:
    bad = tmp_path / "badtype.xml"
    bad.write_bytes(ddf(ITEM.format(id=7, name="X", ops="R", type="Integr")))
    with pytest.raises(DDFError) as info:
        load_ddf(bad)
    assert info.value.element == R + "/Item[@ID=7]/Type"
    assert "badtype.xml" in str(info.value) and "Integr" in str(info.value)


@pytest.mark.parametrize(
    ("xml", "element"),
    [
        (ddf(object_id="<ObjectID>abc</ObjectID>"), "LWM2M/Object[0]/ObjectID"),
        (ddf(object_id="<ObjectID>65535</ObjectID>"), "LWM2M/Object[0]/ObjectID"),
        (ddf(object_id="<ObjectID>1</ObjectID><ObjectID>2</ObjectID>"), "LWM2M/Object[0]/ObjectID"),
        (ddf(ITEM.format(id="x", name="X", ops="R", type="String")), R + "/Item[@ID='x']"),
        (ddf(ITEM.format(id=1, name="", ops="R", type="String")), R + "/Item[@ID=1]/Name"),
        (ddf(ITEM.format(id=1, name="X", ops="RX", type="String")), R + "/Item[@ID=1]/Operations"),
        (ddf(ITEM.format(id=1, name="X", ops="E", type="String")), R + "/Item[@ID=1]/Type"),
        (ddf(ITEM.format(id=1, name="X", ops="R", type="")), R + "/Item[@ID=1]/Type"),
        (ddf(ITEM.format(id=1, name="X", ops="R", type="String") * 2), R + "/Item[@ID=1]"),
        (
            ddf(ITEM.format(id=1, name="X", ops="R", type="String").replace("Single", "Many")),
            R + "/Item[@ID=1]/MultipleInstances",
        ),
        (ddf("<Thing/>"), R + "/Thing"),
        (ddf(extra="<ObjectVersion>x</ObjectVersion>"), "LWM2M/Object[ObjectID=30000]/ObjectVersion"),
        (
            ddf().replace(b"<Resources>", b"<Nothing>").replace(b"</Resources>", b"</Nothing>"),
            "LWM2M/Object[ObjectID=30000]/Resources",
        ),
        (b"<Other/>", "Other"),
        (b"<LWM2M></LWM2M>", "LWM2M"),
        (b"<LWM2M><Foo/></LWM2M>", "LWM2M/Foo"),
    ],
)
def test_structural_errors_name_the_element(xml: bytes, element: str) -> None:
    with pytest.raises(DDFError) as info:
        load_ddf(xml, name="vendor.xml")
    assert info.value.element == element
    assert str(info.value).startswith(f"vendor.xml: {element}: ")


def test_entity_bomb_rejected() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<LWM2M><Object><Name>&lol3;</Name></Object></LWM2M>"""
    with pytest.raises(DDFError) as info:
        load_ddf(bomb, name="bomb.xml")
    assert "unsafe XML" in str(info.value) and info.value.file == "bomb.xml"


def test_external_entity_rejected(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    xxe = f"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>
<LWM2M><Object><Name>&e;</Name></Object></LWM2M>""".encode()
    with pytest.raises(DDFError, match="unsafe XML"):
        load_ddf(xxe)


def test_oversized_file_rejected() -> None:
    with pytest.raises(DDFError, match="larger than"):
        load_ddf(ddf(extra="<!--" + "x" * (3 * 1024 * 1024) + "-->"))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DDFError) as info:
        load_ddf(tmp_path / "missing.xml")
    assert info.value.element == "(file)" and "missing.xml" in info.value.file


def test_dir_loading_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_bytes(ddf())
    (tmp_path / "notes.txt").write_text("ignored")
    assert [o.id for o in load_ddf_dir(tmp_path)] == [30000]
    assert len(ObjectRegistry.from_dir(tmp_path)) == 1
    (tmp_path / "b.xml").write_bytes(ddf())
    with pytest.raises(DDFError) as info:
        load_ddf_dir(tmp_path)
    assert info.value.file.endswith("b.xml") and "a.xml" in str(info.value)
    with pytest.raises(DDFError, match="not a directory"):
        load_ddf_dir(tmp_path / "a.xml")


def test_load_many_mixes_files_and_dirs(tmp_path: Path) -> None:
    (tmp_path / "x.xml").write_bytes(ddf())
    ids = [o.id for o in load_many([OBJECTS_DIR, tmp_path / "x.xml"])]
    assert ids[-1] == 30000 and 5 in ids


def test_multiple_objects_in_one_file() -> None:
    one = ddf().decode()
    obj2 = one[one.index("<Object ") : one.index("</Object>") + 9].replace("30000", "30001")
    xml = one.replace("</LWM2M>", obj2 + "</LWM2M>").encode()
    assert [o.id for o in load_ddf(xml)] == [30000, 30001]


# Element order and enumerations of the OMA LWM2M-v1_1.xsd (strict xs:sequence), checked on the shipped files.
XSD_OBJECT = [
    "Name",
    "Description1",
    "ObjectID",
    "ObjectURN",
    "LWM2MVersion",
    "ObjectVersion",
    "MultipleInstances",
    "Mandatory",
    "Resources",
    "Description2",
]
XSD_ITEM = ["Name", "Operations", "MultipleInstances", "Mandatory", "Type", "RangeEnumeration", "Units", "Description"]
XSD_TYPES = {"String", "Integer", "Float", "Boolean", "Opaque", "Time", "Objlnk", "Unsigned Integer", "Corelnk", ""}


@pytest.mark.parametrize("file", SHIPPED, ids=[f.name for f in SHIPPED])
def test_shipped_files_follow_the_oma_schema(file: Path) -> None:
    import defusedxml.ElementTree as SafeET

    root = SafeET.parse(file).getroot()
    assert root.tag == "LWM2M"
    for obj in root:
        assert obj.tag == "Object" and obj.get("ObjectType") == "MODefinition"
        assert [c.tag for c in obj] == XSD_OBJECT
        assert 0 <= int(obj.findtext("ObjectID", "")) <= 65535
        assert obj.findtext("MultipleInstances") in {"Multiple", "Single"}
        assert obj.findtext("Mandatory") in {"Mandatory", "Optional"}
        resources = obj.find("Resources")
        assert resources is not None and len(resources) > 0
        for item in resources:
            assert item.tag == "Item" and 0 <= int(item.get("ID", "")) <= 65535
            assert [c.tag for c in item] == XSD_ITEM
            assert item.findtext("Operations") in {"R", "W", "RW", "E", ""}
            assert item.findtext("MultipleInstances") in {"Multiple", "Single"}
            assert item.findtext("Mandatory") in {"Mandatory", "Optional"}
            assert item.findtext("Type") in XSD_TYPES
