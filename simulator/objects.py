"""The device's data model: object instances and resource values, typed by the object model.

``ObjectStore`` implements the LwM2M operation semantics on plain data (no CoAP): read, write (replace vs
partial update), create, delete, execute. Errors carry the CoAP code the device answers with (4.04 unknown,
4.05 not allowed, 4.00 bad content). The device's own code changes values with ``set`` (no access checks);
every change is reported to listeners, which drive Observe notifications.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwm2m_server.protocol.model import (
    Content,
    ObjectDefinition,
    ObjectRegistry,
    ResourceDefinition,
    Value,
)
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.values import LwM2MError, check_type

ResourceValue = Value | dict[int, Value]
"""A single-instance resource holds a Value; a multiple-instance resource a dict of instance id -> Value."""

ExecuteHandler = Callable[[LwM2MPath, str], Awaitable[None] | None]
WriteHook = Callable[[LwM2MPath, ResourceValue], None]
ChangeListener = Callable[[LwM2MPath], None]

UNDELETABLE_INSTANCES = frozenset({(1, 0), (3, 0)})
"""Instances the server may not delete (its own Server account and the Device object)."""


SERVER_HIDDEN_OBJECTS = frozenset({0})
"""The Security object is for the bootstrap server only: a management server gets 4.01."""


def _guard(path: LwM2MPath) -> None:
    if path.object_id in SERVER_HIDDEN_OBJECTS:
        raise LwM2MError("4.01", f"object {path.object_id} is not accessible to a management server")


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result


@dataclass(frozen=True)
class _WritePlan:
    """A checked write: the request path, replace or partial update, and typed values by resource id."""

    path: LwM2MPath
    replace: bool
    grouped: dict[int, dict[int | None, Value]]


def _hook_value(res: ResourceDefinition, values: dict[int | None, Value]) -> ResourceValue:
    """What a write hook gets: the value, or ``{instance id: value}`` for a multiple resource."""
    return {k: v for k, v in values.items() if k is not None} if res.multiple else values[None]


class ObjectStore:
    """Object instances of one device: ``{object id: {instance id: {resource id: value}}}``."""

    def __init__(self, model: ObjectRegistry) -> None:
        self.model = model
        self._data: dict[int, dict[int, dict[int, ResourceValue]]] = {}
        self._execute: dict[tuple[int, int], ExecuteHandler] = {}
        self._write_hooks: dict[tuple[int, int], WriteHook] = {}
        self._write_checks: dict[tuple[int, int], WriteHook] = {}
        self._listeners: list[ChangeListener] = []

    # ---- set-up (device side) ------------------------------------------------------------------
    def definition(self, object_id: int) -> ObjectDefinition:
        definition = self.model.get(object_id)
        if definition is None:
            raise LwM2MError("4.04", f"object {object_id} is not in the model")
        return definition

    def add_object(self, object_id: int) -> None:
        """Declare a supported object (it may stay without instances)."""
        self.definition(object_id)
        self._data.setdefault(object_id, {})

    def add_instance(self, object_id: int, instance_id: int, values: dict[int, ResourceValue]) -> None:
        """Device-side creation: no access checks, but values must fit the model."""
        definition = self.definition(object_id)
        instance: dict[int, ResourceValue] = {}
        for rid, value in values.items():
            res = definition.resource(rid)
            if res is None:
                raise LwM2MError("4.04", f"/{object_id} has no resource {rid}")
            instance[rid] = self._typed(res, value)
        self._data.setdefault(object_id, {})[instance_id] = instance

    def on_execute(self, object_id: int, resource_id: int, handler: ExecuteHandler) -> None:
        self._execute[(object_id, resource_id)] = handler

    def on_write(self, object_id: int, resource_id: int, hook: WriteHook, *, check: WriteHook | None = None) -> None:
        """Route server writes of this resource to ``hook`` instead of storing them.

        The hook owns the value (it may store it with ``set``) and may raise LwM2MError to refuse the write.
        ``check``, without side effects, refuses what the hook would refuse before anything of a write is applied
        (so a Write-Composite stays all or nothing).
        """
        self._write_hooks[(object_id, resource_id)] = hook
        if check is not None:
            self._write_checks[(object_id, resource_id)] = check

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    # ---- introspection -------------------------------------------------------------------------
    def objects(self) -> list[int]:
        return sorted(self._data)

    def instances(self, object_id: int) -> list[int]:
        return sorted(self._data.get(object_id, {}))

    def handles(self, object_id: int, resource_id: int) -> bool:
        """True when the device implements an execute handler or a write hook for this resource."""
        key = (object_id, resource_id)
        return key in self._execute or key in self._write_hooks

    def has(self, path: LwM2MPath) -> bool:
        try:
            self._locate(path)
        except LwM2MError:
            return False
        return True

    def get(self, path: LwM2MPath) -> Any:
        """Device-side raw access: the value (or instance dict) at a resource or resource-instance path."""
        if path.resource_id is None:
            raise ValueError(f"{path} is not a resource path")
        value = self._locate(path)
        return value

    def set(self, path: LwM2MPath, value: ResourceValue, *, notify: bool = True) -> None:
        """Device-side update of one resource (no access checks); listeners hear of real changes."""
        if path.resource_id is None or path.object_instance is None:
            raise ValueError(f"{path} is not a resource path")
        instance = self._instance(path.object_id, path.object_instance)
        res = self._resource_def(path)
        if path.resource_instance is not None:
            current = instance.setdefault(path.resource_id, {})
            if not isinstance(current, dict):
                raise ValueError(f"{path.parent} is not a multiple resource")
            new = self._typed_one(res, value)  # type: ignore[arg-type]
            changed = current.get(path.resource_instance) != new
            current[path.resource_instance] = new
        else:
            new_value = self._typed(res, value)
            changed = instance.get(path.resource_id) != new_value
            instance[path.resource_id] = new_value
        if changed and notify:
            self._changed(path)

    # ---- LwM2M operations (server side) --------------------------------------------------------
    def read(self, path: LwM2MPath) -> Content:
        """Read readable values at or below ``path``; 4.04 when absent, 4.05 when not readable."""
        _guard(path)
        if path.object_instance is None:
            self.definition(path.object_id)
            if path.object_id not in self._data:
                raise LwM2MError("4.04", f"{path} not present")
            out: Content = {}
            for iid in self.instances(path.object_id):
                out.update(self._read_instance(path.object_id, iid))
            return out
        if path.resource_id is None:
            return self._read_instance(path.object_id, path.object_instance)
        res = self._resource_def(path)
        if not res.readable:
            raise LwM2MError("4.05", f"{path} is not readable")
        value = self._locate(path)
        return self._flatten(path, value)

    def write(self, path: LwM2MPath, content: Content, *, replace: bool) -> list[LwM2MPath]:
        """Apply a server write; returns the resource paths written.

        ``replace`` (PUT) replaces the targeted instance's writable resources or the whole multiple resource;
        partial update (POST) only touches what the content names.
        """
        return self._apply_write(self._plan_write(path, content, replace=replace))

    def write_composite(self, content: Content) -> list[LwM2MPath]:
        """Write-Composite: partial updates of every instance ``content`` names, all or nothing.

        Every path is checked (present, writable, typed, and by the device's write checks: no new Package URI
        while updating) before anything changes, so one bad path leaves the device untouched.
        """
        by_instance: dict[LwM2MPath, Content] = {}
        for leaf, value in content.items():
            if leaf.object_instance is None or leaf.resource_id is None:
                raise LwM2MError("4.00", f"{leaf} is not a resource path")
            by_instance.setdefault(leaf.truncate("instance"), {})[leaf] = value
        plans = [self._plan_write(instance, part, replace=False) for instance, part in sorted(by_instance.items())]
        return [path for plan in plans for path in self._apply_write(plan)]

    def _plan_write(self, path: LwM2MPath, content: Content, *, replace: bool) -> _WritePlan:
        """Check a write without changing anything: LwM2MError for the first path that cannot be written."""
        _guard(path)
        if path.object_instance is None:
            raise LwM2MError("4.05", "write on an object path is not allowed")
        if not content and path.resource_id is not None:
            res = self._resource_def(path)
            if not res.multiple:
                raise LwM2MError("4.00", f"empty write to single resource {path}")
        self._instance(path.object_id, path.object_instance)
        grouped: dict[int, dict[int | None, Value]] = {}
        for leaf, value in content.items():
            if not path.is_prefix_of(leaf) or leaf.resource_id is None:
                raise LwM2MError("4.00", f"{leaf} is outside the request path {path}")
            if leaf.object_instance != path.object_instance:
                raise LwM2MError("4.00", f"{leaf} names another instance")
            res = self._resource_def(leaf)
            if not res.writable:
                raise LwM2MError("4.05", f"{leaf} is not writable")
            if (leaf.resource_instance is not None) != res.multiple:
                raise LwM2MError("4.00", f"{leaf} does not match the resource's multiplicity")
            grouped.setdefault(leaf.resource_id, {})[leaf.resource_instance] = self._typed_one(res, value)
        if path.resource_id is not None and not grouped:
            grouped[path.resource_id] = {}
        for rid, values in grouped.items():
            check = self._write_checks.get((path.object_id, rid))
            if check is not None:
                res_path = LwM2MPath(path.object_id, path.object_instance, rid)
                check(res_path, _hook_value(self._resource_def(res_path), values))
        return _WritePlan(path, replace, grouped)

    def _apply_write(self, plan: _WritePlan) -> list[LwM2MPath]:
        path, replace, grouped = plan.path, plan.replace, plan.grouped
        assert path.object_instance is not None
        instance = self._instance(path.object_id, path.object_instance)
        written: list[LwM2MPath] = []
        definition = self.definition(path.object_id)
        if replace and path.resource_id is None:
            # Replace the instance: optional writable resources absent from the payload are removed.
            for rid in list(instance):
                r = definition.resource(rid)
                if r is not None and r.writable and not r.mandatory and rid not in grouped:
                    del instance[rid]
        for rid, values in grouped.items():
            res_path = LwM2MPath(path.object_id, path.object_instance, rid)
            res = self._resource_def(res_path)
            hook = self._write_hooks.get((path.object_id, rid))
            if hook is not None:
                hook(res_path, _hook_value(res, values))
                written.append(res_path)
                continue
            if res.multiple:
                current = instance.get(rid)
                merged: dict[int, Value] = {}
                if not replace and isinstance(current, dict):
                    merged.update(current)
                if path.resource_instance is not None and isinstance(current, dict):
                    merged = dict(current)
                merged.update({k: v for k, v in values.items() if k is not None})
                instance[rid] = merged
            else:
                instance[rid] = values[None]
            written.append(res_path)
            self._changed(res_path)
        return written

    def create(self, path: LwM2MPath, content: Content) -> int:
        """Create an instance of object ``path`` from ``content``; returns the new instance id."""
        _guard(path)
        if path.object_instance is not None:
            raise LwM2MError("4.05", "create needs an object path")
        definition = self.definition(path.object_id)
        existing = self._data.setdefault(path.object_id, {})
        ids = {leaf.object_instance for leaf in content}
        if len(ids) > 1:
            raise LwM2MError("4.00", "create content names several instances")
        iid = next(iter(ids)) if ids else None
        if iid is None:
            iid = next(i for i in range(len(existing) + 1) if i not in existing)
        if iid in existing:
            raise LwM2MError("4.00", f"/{path.object_id}/{iid} already exists")
        if not definition.multiple and existing:
            raise LwM2MError("4.00", f"object {path.object_id} is single-instance")
        instance: dict[int, ResourceValue] = {}
        for leaf, value in content.items():
            if leaf.resource_id is None:
                raise LwM2MError("4.00", f"{leaf} is not a resource path")
            res = self._resource_def(leaf)
            typed = self._typed_one(res, value)
            if leaf.resource_instance is None:
                instance[leaf.resource_id] = typed
            else:
                multi = instance.setdefault(leaf.resource_id, {})
                assert isinstance(multi, dict)
                multi[leaf.resource_instance] = typed
        existing[iid] = instance
        self._changed(LwM2MPath(path.object_id, iid))
        return iid

    def delete(self, path: LwM2MPath) -> None:
        _guard(path)
        if path.object_instance is None or path.resource_id is not None:
            raise LwM2MError("4.05", "delete needs an object-instance path")
        if (path.object_id, path.object_instance) in UNDELETABLE_INSTANCES:
            raise LwM2MError("4.05", f"{path} cannot be deleted")
        self._instance(path.object_id, path.object_instance)
        del self._data[path.object_id][path.object_instance]
        self._changed(path)

    async def execute(self, path: LwM2MPath, arguments: str = "") -> None:
        _guard(path)
        if path.resource_id is None or path.resource_instance is not None:
            raise LwM2MError("4.05", "execute needs a resource path")
        self._instance(path.object_id, path.object_instance)  # type: ignore[arg-type]
        res = self._resource_def(path)
        if not res.executable:
            raise LwM2MError("4.05", f"{path} is not executable")
        handler = self._execute.get((path.object_id, path.resource_id))
        if handler is not None:
            await _maybe_await(handler(path, arguments))

    # ---- helpers -------------------------------------------------------------------------------
    def _changed(self, path: LwM2MPath) -> None:
        for listener in list(self._listeners):
            listener(path)

    def _instance(self, object_id: int, instance_id: int) -> dict[int, ResourceValue]:
        self.definition(object_id)
        try:
            return self._data[object_id][instance_id]
        except KeyError:
            raise LwM2MError("4.04", f"/{object_id}/{instance_id} not present") from None

    def _resource_def(self, path: LwM2MPath) -> ResourceDefinition:
        res = self.model.resource(path)
        if res is None:
            raise LwM2MError("4.04", f"{path} is not defined")
        return res

    def _locate(self, path: LwM2MPath) -> Any:
        instance = self._instance(path.object_id, path.object_instance)  # type: ignore[arg-type]
        if path.resource_id is None:
            return instance
        self._resource_def(path)
        if path.resource_id not in instance:
            raise LwM2MError("4.04", f"{path.truncate('resource')} not present")
        value = instance[path.resource_id]
        if path.resource_instance is None:
            return value
        if not isinstance(value, dict) or path.resource_instance not in value:
            raise LwM2MError("4.04", f"{path} not present")
        return value[path.resource_instance]

    def _read_instance(self, object_id: int, instance_id: int) -> Content:
        definition = self.definition(object_id)
        out: Content = {}
        for rid, value in sorted(self._instance(object_id, instance_id).items()):
            res = definition.resource(rid)
            if res is None or not res.readable:
                continue
            out.update(self._flatten(LwM2MPath(object_id, instance_id, rid), value))
        return out

    @staticmethod
    def _flatten(path: LwM2MPath, value: Any) -> Content:
        if isinstance(value, dict):
            if path.resource_instance is not None:
                raise AssertionError("resource instance holding a dict")
            return {path.child(ri): v for ri, v in sorted(value.items())}
        return {path: value}

    def _typed(self, res: ResourceDefinition, value: ResourceValue) -> ResourceValue:
        if isinstance(value, dict):
            if not res.multiple:
                raise LwM2MError("4.00", f"resource {res.id} is single-instance")
            return {ri: self._typed_one(res, v) for ri, v in value.items()}
        if res.multiple:
            raise LwM2MError("4.00", f"resource {res.id} is multiple-instance")
        return self._typed_one(res, value)

    @staticmethod
    def _typed_one(res: ResourceDefinition, value: Value) -> Value:
        return check_type(res, value)
