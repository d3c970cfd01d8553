"""Object model values and the registry built from the repo's objects/ directory."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.ddf import load_ddf
from lwm2m_server.protocol.model import (
    OBJECTS_DIR,
    ObjectDefinition,
    ObjectLink,
    ObjectRegistry,
    ResourceDefinition,
    ResourceType,
)
from lwm2m_server.protocol.paths import LwM2MPath


def test_resource_type_from_ddf() -> None:
    assert ResourceType.from_ddf("Unsigned Integer") is ResourceType.UNSIGNED
    assert ResourceType.from_ddf("objlnk") is ResourceType.OBJLNK
    assert ResourceType.from_ddf("  ") is ResourceType.NONE
    assert ResourceType.from_ddf("none") is ResourceType.NONE
    assert ResourceType("Corelnk") is ResourceType.CORELNK
    with pytest.raises(ValueError):
        ResourceType.from_ddf("Int")


def test_object_link() -> None:
    link = ObjectLink.parse("3:0")
    assert link == ObjectLink(3, 0)
    assert str(link) == "3:0"
    assert ObjectLink(65535, 65535).is_null
    assert not link.is_null
    for bad in ("3", "3:", ":0", "a:b", "3:-1", "3:0:1", "65536:0", "\u0661:0", "123456:0"):
        with pytest.raises(ValueError):
            ObjectLink.parse(bad)
    with pytest.raises(ValueError):
        ObjectLink(True, 0)  # type: ignore[arg-type]


def test_resource_definition_operations() -> None:
    def res(ops: str) -> ResourceDefinition:
        rtype = ResourceType.NONE if ops == "E" else ResourceType.INTEGER
        return ResourceDefinition(0, "x", ops, False, True, rtype)

    assert (res("R").readable, res("R").writable, res("R").executable) == (True, False, False)
    assert (res("RW").readable, res("RW").writable) == (True, True)
    assert (res("W").readable, res("W").writable) == (False, True)
    assert res("E").executable and not res("E").readable
    assert not res("").readable and not res("").writable


def test_object_definition_is_immutable() -> None:
    r = ResourceDefinition(0, "x", "R", False, True, ResourceType.STRING)
    source = {0: r}
    obj = ObjectDefinition(9999, "T", "urn:oma:lwm2m:ext:9999", "1.0", "1.0", False, False, "", source)
    source[1] = r  # the definition took a copy
    assert list(obj.resources) == [0]
    with pytest.raises(TypeError):
        obj.resources[2] = r  # type: ignore[index]
    assert obj.resource(0) is r and obj.resource(5) is None
    assert hash(obj) == hash(ObjectDefinition(9999, "T", "urn:oma:lwm2m:ext:9999", "1.0", "1.0", False, False, "", {}))


def test_default_registry_has_every_object() -> None:
    reg = ObjectRegistry.default()
    assert ObjectRegistry.default() is reg  # cached
    assert sorted(d.id for d in reg) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 32001, 32002]
    assert 3 in reg and 8 not in reg
    assert len(reg) == 11


def test_lookups_standard_objects() -> None:
    reg = ObjectRegistry.default()
    device = reg.get(3)
    assert device is not None
    assert device.name == "Device" and not device.multiple and device.mandatory
    assert reg.resource(LwM2MPath(3, 0, 0)).name == "Manufacturer"  # type: ignore[union-attr]
    assert reg.resource(LwM2MPath(3, 0, 13)).type is ResourceType.TIME  # type: ignore[union-attr]
    assert reg.resource(LwM2MPath(3, 0, 10)).units == "KiB"  # type: ignore[union-attr]
    assert reg.resource(LwM2MPath(3, 0, 4)).executable  # type: ignore[union-attr]
    assert reg.resource(LwM2MPath(3, 0, 6, 1)).multiple  # type: ignore[union-attr]
    assert reg.resource_type(LwM2MPath(1, 0, 1)) is ResourceType.INTEGER
    assert reg.get(0).multiple  # type: ignore[union-attr]
    assert reg.resource(LwM2MPath(3, 0)) is None
    assert reg.resource(LwM2MPath(3, 0, 999)) is None
    assert reg.resource(LwM2MPath(8, 0, 0)) is None
    assert reg.resource_type(LwM2MPath(8, 0, 0)) is None


def test_object5_is_v11_with_resources_0_to_13() -> None:
    fw = ObjectRegistry.default().get(5)
    assert fw is not None
    assert fw.object_version == "1.1" and fw.urn == "urn:oma:lwm2m:oma:5:1.1"
    assert sorted(fw.resources) == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]  # 4 was removed in 1.1
    types = {rid: r.type for rid, r in fw.resources.items()}
    assert types[0] is ResourceType.OPAQUE and types[1] is ResourceType.STRING and types[3] is ResourceType.INTEGER
    assert fw.resources[2].executable and fw.resources[10].executable
    assert fw.resources[0].operations == "W" and fw.resources[1].operations == "RW"
    assert fw.resources[8].multiple
    assert fw.resources[13].type is ResourceType.UNSIGNED and fw.resources[13].units == "s"


def test_tinyml_objects() -> None:
    reg = ObjectRegistry.default()
    hw, model = reg.get(32001), reg.get(32002)
    assert hw is not None and model is not None
    assert hw.urn == "urn:oma:lwm2m:x:32001" and not hw.multiple
    assert sorted(hw.resources) == list(range(12))
    assert all(r.operations == "R" for r in hw.resources.values())
    assert [hw.resources[i].units for i in (0, 1, 2, 3, 5, 8, 11)] == ["B", "B", "B", "B", "MHz", "B", "B"]
    assert hw.resources[6].type is ResourceType.BOOLEAN
    assert hw.resources[10].multiple and hw.resources[10].type is ResourceType.STRING
    assert sorted(model.resources) == list(range(14))
    assert model.resources[10].units == "us" and model.resources[4].units == "B"
    assert model.resources[13].executable
    assert model.resources[2].type is ResourceType.STRING


def test_every_resource_is_named_and_typed() -> None:
    for obj in ObjectRegistry.default():
        assert obj.name and obj.description and obj.urn.startswith("urn:oma:lwm2m:")
        for res in obj.resources.values():
            assert res.name and res.description, (obj.id, res.id)
            assert (res.type is ResourceType.NONE) == res.executable, (obj.id, res.id)


def test_with_objects_returns_new_registry() -> None:
    base = ObjectRegistry.default()
    xml = b"""<LWM2M><Object ObjectType="MODefinition"><Name>Temp</Name><ObjectID>3303</ObjectID>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources>
    <Item ID="5700"><Name>Sensor Value</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
    <Mandatory>Mandatory</Mandatory><Type>Float</Type><Units>Cel</Units></Item></Resources></Object></LWM2M>"""
    extended = base.with_objects(load_ddf(xml))
    assert extended is not base
    assert 3303 not in base and 3303 in extended
    assert extended.resource(LwM2MPath(3303, 0, 5700)).units == "Cel"  # type: ignore[union-attr]
    assert extended.get(3303).urn == "urn:oma:lwm2m:ext:3303"  # type: ignore[union-attr]
    assert len(extended) == len(base) + 1


def test_from_dir_equals_default() -> None:
    assert sorted(o.id for o in ObjectRegistry.from_dir(OBJECTS_DIR)) == sorted(o.id for o in ObjectRegistry.default())
