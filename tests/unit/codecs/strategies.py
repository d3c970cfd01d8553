"""Hypothesis strategies: (request path, content) pairs valid for the object model."""

from __future__ import annotations

from hypothesis import strategies as st

from lwm2m_server.protocol.codecs.values import INT64_MAX, INT64_MIN, UINT64_MAX
from lwm2m_server.protocol.model import (
    Content,
    ObjectLink,
    ObjectRegistry,
    ResourceDefinition,
    ResourceType,
    Value,
)
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL, SYNTH

OBJECTS = (3, 5, 32001, 32002, SYNTH)

_VALUES: dict[ResourceType, st.SearchStrategy[Value]] = {
    ResourceType.STRING: st.text(max_size=40),
    ResourceType.CORELNK: st.text(max_size=40),
    ResourceType.INTEGER: st.integers(INT64_MIN, INT64_MAX),
    ResourceType.TIME: st.integers(INT64_MIN, INT64_MAX),
    ResourceType.UNSIGNED: st.integers(0, UINT64_MAX),
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.OPAQUE: st.binary(max_size=300),
    ResourceType.OBJLNK: st.builds(ObjectLink, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
}

ids = st.integers(0, 65534)
small_ids = st.one_of(st.integers(0, 3), ids)


def values_for(rtype: ResourceType) -> st.SearchStrategy[Value]:
    return _VALUES[rtype]


def _valued(model: ObjectRegistry, object_id: int) -> list[ResourceDefinition]:
    obj = model.get(object_id)
    assert obj is not None
    return [r for r in obj.resources.values() if r.type is not ResourceType.NONE]


@st.composite
def resource_content(draw: st.DrawFn, base: LwM2MPath, rdef: ResourceDefinition) -> Content:
    """Content of one resource under instance path ``base``: a value, or 1..4 resource instances."""
    path = base.child(rdef.id)
    if not rdef.multiple:
        return {path: draw(values_for(rdef.type))}
    instances = draw(st.sets(small_ids, min_size=1, max_size=4))
    return {path.child(i): draw(values_for(rdef.type)) for i in instances}


@st.composite
def instance_content(draw: st.DrawFn, base: LwM2MPath, model: ObjectRegistry = MODEL) -> Content:
    resources = draw(st.lists(st.sampled_from(_valued(model, base.object_id)), max_size=8, unique_by=lambda r: r.id))
    out: Content = {}
    for rdef in resources:
        out |= draw(resource_content(base, rdef))
    return out


@st.composite
def path_and_content(draw: st.DrawFn, model: ObjectRegistry = MODEL) -> tuple[LwM2MPath, Content]:
    """A request path at any level with content valid for the model under it."""
    object_id = draw(st.sampled_from(OBJECTS))
    level = draw(st.sampled_from(["object", "instance", "resource", "resource_instance"]))
    obj_path = LwM2MPath(object_id)
    if level == "object":
        out: Content = {}
        for inst in draw(st.sets(small_ids, max_size=3)):
            out |= draw(instance_content(obj_path.child(inst), model))
        return obj_path, out
    inst_path = obj_path.child(draw(small_ids))
    if level == "instance":
        return inst_path, draw(instance_content(inst_path, model))
    candidates = _valued(model, object_id)
    if level == "resource_instance":
        candidates = [r for r in candidates if r.multiple] or candidates
    rdef = draw(st.sampled_from(candidates))
    content = draw(resource_content(inst_path, rdef))
    if level == "resource_instance" and rdef.multiple:
        key = draw(st.sampled_from(sorted(content)))
        return key, {key: content[key]}
    return inst_path.child(rdef.id), content


@st.composite
def single_value(draw: st.DrawFn, types: frozenset[ResourceType] | None = None) -> tuple[LwM2MPath, Content]:
    """One value at a resource (or resource-instance) path, optionally restricted to some types."""
    object_id = draw(st.sampled_from(OBJECTS))
    candidates = [r for r in _valued(MODEL, object_id) if types is None or r.type in types]
    if not candidates:
        object_id = SYNTH
        candidates = [r for r in _valued(MODEL, SYNTH) if types is None or r.type in types]
    rdef = draw(st.sampled_from(candidates))
    path = LwM2MPath(object_id, draw(small_ids), rdef.id)
    if rdef.multiple:
        path = path.child(draw(small_ids))
    return path, {path: draw(values_for(rdef.type))}
