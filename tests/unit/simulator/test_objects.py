"""ObjectStore: LwM2M operation semantics on a simulated device's data, without any network."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.model import ObjectDefinition, ObjectRegistry, ResourceDefinition, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.initial import build_store
from simulator.objects import ObjectStore
from simulator.profiles import DeviceConfig, HardwareProfile
from simulator.values import LwM2MError

P = LwM2MPath.parse


@pytest.fixture
def store() -> ObjectStore:
    config = DeviceConfig(
        endpoint="ep1",
        lifetime=60,
        profile=HardwareProfile(ram_total=65536, ops=("CONV_2D", "SOFTMAX")),
    )
    return build_store(config, "coap://127.0.0.1:5683", ObjectRegistry.default())


def test_factory_content_reports_the_profile(store: ObjectStore) -> None:
    content = store.read(P("/32001/0"))
    assert content[P("/32001/0/0")] == 65536
    assert content[P("/32001/0/10/0")] == "CONV_2D"
    assert content[P("/32001/0/10/1")] == "SOFTMAX"
    assert store.read(P("/1/0/1")) == {P("/1/0/1"): 60}
    assert store.read(P("/5/0/3")) == {P("/5/0/3"): 0}
    assert store.objects() == [0, 1, 3, 4, 5, 32001, 32002]


def test_read_errors(store: ObjectStore) -> None:
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/3/1"))
    assert exc.value.code == "4.04"
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/3/0/14"))  # defined but not implemented
    assert exc.value.code == "4.04"
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/3/0/4"))  # executable
    assert exc.value.code == "4.05"
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/5/0/0"))  # write-only package
    assert exc.value.code == "4.05"
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/0/0"))  # security object is not for a DM server
    assert exc.value.code == "4.01"
    with pytest.raises(LwM2MError) as exc:
        store.read(P("/6"))  # in the model, not on this device
    assert exc.value.code == "4.04"


def test_write_read_only_is_405_and_changes_nothing(store: ObjectStore) -> None:
    with pytest.raises(LwM2MError) as exc:
        store.write(P("/3/0"), {P("/3/0/0"): "evil"}, replace=False)
    assert exc.value.code == "4.05"
    assert store.read(P("/3/0/0")) == {P("/3/0/0"): "TinyMLaaS Sim"}


def test_write_type_mismatch_is_400(store: ObjectStore) -> None:
    with pytest.raises(LwM2MError) as exc:
        store.write(P("/1/0/1"), {P("/1/0/1"): "sixty"}, replace=True)
    assert exc.value.code == "4.00"
    with pytest.raises(LwM2MError) as exc:
        store.write(P("/1/0/6"), {P("/1/0/6"): 1}, replace=True)  # int is not a boolean
    assert exc.value.code == "4.00"


def test_partial_update_keeps_other_resources(store: ObjectStore) -> None:
    store.write(P("/1/0"), {P("/1/0/2"): 5}, replace=False)
    content = store.read(P("/1/0"))
    assert content[P("/1/0/2")] == 5
    assert content[P("/1/0/1")] == 60
    assert content[P("/1/0/7")] == "U"


def test_replace_instance_removes_optional_writables_not_in_payload(store: ObjectStore) -> None:
    store.write(P("/1/0"), {P("/1/0/2"): 5, P("/1/0/3"): 50}, replace=False)
    store.write(P("/1/0"), {P("/1/0/1"): 120, P("/1/0/6"): False, P("/1/0/7"): "U", P("/1/0/3"): 70}, replace=True)
    content = store.read(P("/1/0"))
    assert P("/1/0/2") not in content  # optional, absent from the replace payload
    assert content[P("/1/0/3")] == 70
    assert content[P("/1/0/1")] == 120
    assert content[P("/1/0/0")] == 1  # read-only resources are untouched


def test_multiple_resource_replace_vs_partial() -> None:
    multi = ResourceDefinition(0, "Tags", "RW", True, False, ResourceType.STRING)
    single = ResourceDefinition(1, "Label", "RW", False, False, ResourceType.STRING)
    obj = ObjectDefinition(30000, "Test", "urn:x", "1.0", "1.1", True, False, "", {0: multi, 1: single})
    store = ObjectStore(ObjectRegistry([obj]))
    store.add_instance(30000, 0, {0: {0: "a", 1: "b"}, 1: "x"})
    store.write(P("/30000/0/0"), {P("/30000/0/0/5"): "c"}, replace=False)  # partial: merge
    assert store.get(P("/30000/0/0")) == {0: "a", 1: "b", 5: "c"}
    store.write(P("/30000/0/0"), {P("/30000/0/0/9"): "z"}, replace=True)  # replace: only what was sent
    assert store.get(P("/30000/0/0")) == {9: "z"}
    with pytest.raises(LwM2MError) as exc:
        store.write(P("/30000/0"), {P("/30000/0/1/0"): "x"}, replace=False)
    assert exc.value.code == "4.00"  # a single resource addressed as an instance


def test_create_and_delete(store: ObjectStore) -> None:
    iid = store.create(P("/1"), {P("/1/5/0"): 2, P("/1/5/1"): 30, P("/1/5/6"): True, P("/1/5/7"): "U"})
    assert iid == 5
    assert store.instances(1) == [0, 5]
    with pytest.raises(LwM2MError) as exc:
        store.create(P("/1"), {P("/1/5/0"): 3})
    assert exc.value.code == "4.00"  # exists already
    with pytest.raises(LwM2MError) as exc:
        store.create(P("/3"), {P("/3/1/0"): "x"})
    assert exc.value.code == "4.00"  # single-instance object
    new = store.create(P("/1"), {})
    assert new == 1  # the lowest free id
    store.delete(P("/1/5"))
    assert store.instances(1) == [0, 1]
    with pytest.raises(LwM2MError) as exc:
        store.delete(P("/3/0"))
    assert exc.value.code == "4.05"
    store.delete(P("/32002/0"))
    assert store.instances(32002) == []
    with pytest.raises(LwM2MError) as exc:
        store.delete(P("/32002/7"))
    assert exc.value.code == "4.04"


async def test_execute_calls_handler_and_rejects_non_executables(store: ObjectStore) -> None:
    calls: list[tuple[str, str]] = []
    store.on_execute(3, 4, lambda path, args: calls.append((str(path), args)))
    await store.execute(P("/3/0/4"), "0='now'")
    assert calls == [("/3/0/4", "0='now'")]
    with pytest.raises(LwM2MError) as exc:
        await store.execute(P("/3/0/0"))
    assert exc.value.code == "4.05"
    with pytest.raises(LwM2MError) as exc:
        await store.execute(P("/3/1/4"))
    assert exc.value.code == "4.04"


def test_write_hook_owns_the_value(store: ObjectStore) -> None:
    seen: list[object] = []

    def hook(path: LwM2MPath, value: object) -> None:
        if value == "bad":
            raise LwM2MError("4.00", "no")
        seen.append(value)

    store.on_write(5, 1, hook)
    store.write(P("/5/0/1"), {P("/5/0/1"): "coap://x/fw/1"}, replace=True)
    assert seen == ["coap://x/fw/1"]
    assert store.read(P("/5/0/1")) == {P("/5/0/1"): ""}  # the hook did not store it
    with pytest.raises(LwM2MError):
        store.write(P("/5/0/1"), {P("/5/0/1"): "bad"}, replace=True)


def test_listeners_hear_only_real_changes(store: ObjectStore) -> None:
    changed: list[str] = []
    store.add_listener(lambda p: changed.append(str(p)))
    store.set(P("/5/0/3"), 0)  # same value: no event
    store.set(P("/5/0/3"), 1)
    store.write(P("/1/0"), {P("/1/0/1"): 90}, replace=False)
    assert changed == ["/5/0/3", "/1/0/1"]


def test_content_outside_request_path_is_400(store: ObjectStore) -> None:
    with pytest.raises(LwM2MError) as exc:
        store.write(P("/1/0/1"), {P("/1/0/2"): 3}, replace=True)
    assert exc.value.code == "4.00"
