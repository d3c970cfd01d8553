"""Observations held by a device, notification attributes (pmin, pmax, gt, lt, st) and Discover links.

aiocoap re-renders the original request on every ``trigger()``, so a notification always carries the
current value in the format the observer asked for; this module only decides *when* to trigger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lwm2m_server.protocol.paths import LwM2MPath
from simulator.objects import ObjectStore
from simulator.values import LwM2MError

ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
INTEGER_ATTRIBUTES = frozenset({"pmin", "pmax", "epmin", "epmax"})

Attributes = dict[str, float | None]


def parse_attributes(query: Sequence[str]) -> Attributes:
    """``["pmin=10", "st=0.5", "pmax"]`` -> ``{"pmin": 10, "st": 0.5, "pmax": None}`` (None = unset)."""
    out: Attributes = {}
    for item in query:
        name, sep, raw = item.partition("=")
        if name not in ATTRIBUTE_NAMES:
            raise LwM2MError("4.00", f"unknown attribute {name!r}")
        if not sep or raw == "":
            out[name] = None
            continue
        try:
            value = float(int(raw)) if name in INTEGER_ATTRIBUTES else float(raw)
        except ValueError:
            raise LwM2MError("4.00", f"attribute {name} must be a number, got {raw!r}") from None
        if value < 0 and name in INTEGER_ATTRIBUTES:
            raise LwM2MError("4.00", f"attribute {name} must be >= 0")
        out[name] = value
    return out


@dataclass(eq=False)
class Observation:
    path: LwM2MPath
    server_observation: Any
    composite: tuple[LwM2MPath, ...] = ()
    """Observe-Composite: every path it follows (``path`` is the first, whose attributes it uses)."""
    last_sent: float = field(default_factory=time.monotonic)
    last_value: Any = None
    pending: asyncio.TimerHandle | None = None


class Observations:
    """Active observations of one device and the write-attributes that shape their notifications."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.attributes: dict[LwM2MPath, Attributes] = {}
        self.active: list[Observation] = []
        self.notifications = 0
        self._pmax_task: asyncio.Task[None] | None = None
        self.asleep: Callable[[], bool] = lambda: False
        """While this says True, notifications are held back (Notification Storing When Offline, /1/0/6)."""
        store.add_listener(self._on_change)

    # ---- attributes ----------------------------------------------------------------------------
    def set_attributes(self, path: LwM2MPath, attrs: Attributes) -> None:
        if path.object_instance is not None:
            self.store.read(path) if path.resource_id is None else self.store.get(path)
        else:
            self.store.definition(path.object_id)
        merged = dict(self.attributes.get(path, {}))
        for name, value in attrs.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        pmin, pmax = merged.get("pmin"), merged.get("pmax")
        if pmin is not None and pmax is not None and pmax < pmin:
            raise LwM2MError("4.00", "pmax must not be smaller than pmin")
        self.attributes[path] = merged
        if self.active:
            self._ensure_pmax_timer()

    def effective(self, path: LwM2MPath) -> Attributes:
        """Attributes of ``path`` inherited object -> instance -> resource (the deepest wins)."""
        out: Attributes = {}
        for depth in range(1, path.depth + 1):
            out.update(self.attributes.get(LwM2MPath.from_ids(*path.ids[:depth]), {}))
        if "pmin" not in out:
            out["pmin"] = _server_default(self.store, 2)
        if "pmax" not in out:
            out["pmax"] = _server_default(self.store, 3)
        return out

    # ---- observations --------------------------------------------------------------------------
    def add(self, path: LwM2MPath, server_observation: Any) -> None:
        self._add(Observation(path, server_observation, last_value=self._value(path)))

    def add_composite(self, paths: tuple[LwM2MPath, ...], server_observation: Any) -> None:
        obs = Observation(paths[0], server_observation, composite=paths)
        obs.last_value = self._current(obs)
        self._add(obs)

    def _add(self, obs: Observation) -> None:
        server_observation = obs.server_observation

        def cancelled() -> None:
            if obs.pending is not None:
                obs.pending.cancel()
            if obs in self.active:
                self.active.remove(obs)

        server_observation.accept(cancelled)
        self.active.append(obs)
        self._ensure_pmax_timer()

    def _ensure_pmax_timer(self) -> None:
        """Run the pmax timer only while some observation has a pmax (thousands of idle devices stay idle)."""
        if self._pmax_task is not None and not self._pmax_task.done():
            return
        if any(self.effective(o.path).get("pmax") for o in self.active):
            self._pmax_task = asyncio.get_running_loop().create_task(self._pmax_loop())

    def cancel_all(self) -> None:
        for obs in list(self.active):
            if obs.pending is not None:
                obs.pending.cancel()
            obs.server_observation.deregister("device stopped")
        self.active.clear()
        if self._pmax_task is not None:
            self._pmax_task.cancel()

    def forget(self, prefix: LwM2MPath) -> int:
        """Drop the observations under ``prefix`` without telling the server (a device that lost its
        observation table, or a NAT binding that changed): the server still thinks it observes and hears nothing.
        Returns how many were forgotten."""
        gone = [o for o in self.active if any(prefix.is_prefix_of(p) for p in o.composite or (o.path,))]
        for obs in gone:
            if obs.pending is not None:
                obs.pending.cancel()
            self.active.remove(obs)
        return len(gone)

    def _on_change(self, changed: LwM2MPath) -> None:
        for obs in list(self.active):
            if any(p.is_prefix_of(changed) or changed.is_prefix_of(p) for p in obs.composite or (obs.path,)):
                self._maybe_notify(obs)

    def _current(self, obs: Observation) -> Any:
        if obs.composite:
            return tuple(self._value(p) for p in obs.composite)
        return self._value(obs.path)

    def _maybe_notify(self, obs: Observation) -> None:
        attrs = self.effective(obs.path)
        value = self._current(obs)
        if obs.composite:  # thresholds (gt/lt/st) are per resource: a composite notifies on any change
            attrs = {k: v for k, v in attrs.items() if k in ("pmin", "pmax")}
        if not _passes_thresholds(attrs, obs.last_value, value):
            return
        pmin = attrs.get("pmin") or 0.0
        wait = obs.last_sent + pmin - time.monotonic()
        if wait <= 0:
            self._notify(obs)
        elif obs.pending is None:
            obs.pending = asyncio.get_running_loop().call_later(wait, self._notify, obs)

    def _notify(self, obs: Observation) -> None:
        obs.pending = None
        if obs not in self.active or self.asleep():
            return  # asleep: ``flush_stored`` sends it after the next uplink
        obs.last_sent = time.monotonic()
        obs.last_value = self._current(obs)
        self.notifications += 1
        obs.server_observation.trigger()

    def flush_stored(self) -> None:
        """After waking up: notify every observation whose value changed while the radio was off."""
        for obs in list(self.active):
            if self._current(obs) != obs.last_value:
                self._notify(obs)

    async def _pmax_loop(self) -> None:
        while True:
            if self.asleep():
                await asyncio.sleep(1.0)  # nothing goes out while the radio is off
                continue
            now = time.monotonic()
            waits = []
            for obs in list(self.active):
                pmax = self.effective(obs.path).get("pmax")
                if not pmax:
                    continue
                if now - obs.last_sent >= pmax:
                    self._notify(obs)
                waits.append(max(0.05, obs.last_sent + pmax - time.monotonic()))
            if not waits:
                return
            await asyncio.sleep(min(min(waits), 1.0))

    def _value(self, path: LwM2MPath) -> Any:
        try:
            return self.store.read(path) if path.resource_id is None else self.store.get(path)
        except LwM2MError:
            return None

    # ---- discover ------------------------------------------------------------------------------
    def discover_links(self, path: LwM2MPath) -> list[str]:
        """Link-format entries for Discover on an object, instance or resource (with attributes, dim)."""
        definition = self.store.definition(path.object_id)
        if path.object_id not in self.store.objects():
            raise LwM2MError("4.04", f"{path} not present")
        links: list[str] = []
        if path.object_instance is None:
            ver = "" if definition.object_version in ("", "1.0") else f";ver={definition.object_version}"
            links.append(f"<{path}>{ver}{self._attr_text(path)}")
            instances = self.store.instances(path.object_id)
        else:
            if path.object_instance not in self.store.instances(path.object_id):
                raise LwM2MError("4.04", f"{path} not present")
            instances = [path.object_instance]
        for iid in instances:
            inst_path = LwM2MPath(path.object_id, iid)
            if path.resource_id is None:
                links.append(f"<{inst_path}>{self._attr_text(inst_path)}")
            values = self.store.read(inst_path) if path.object_id != 0 else {}
            resource_ids = sorted({p.resource_id for p in values if p.resource_id is not None})
            for rid in _present_resources(self.store, inst_path, resource_ids):
                res_path = inst_path.child(rid)
                if path.resource_id is not None and rid != path.resource_id:
                    continue
                dim = ""
                res = definition.resource(rid)
                if res is not None and res.multiple:
                    dim = f";dim={sum(1 for p in values if p.resource_id == rid)}"
                links.append(f"<{res_path}>{dim}{self._attr_text(res_path)}")
        if path.resource_id is not None and len(links) == 0:
            raise LwM2MError("4.04", f"{path} not present")
        return links

    def _attr_text(self, path: LwM2MPath) -> str:
        attrs = self.attributes.get(path, {})
        return "".join(f";{k}={_fmt(v)}" for k, v in attrs.items() if v is not None)


def _present_resources(store: ObjectStore, inst_path: LwM2MPath, readable: list[int]) -> list[int]:
    """Readable resources with a value, plus executable and write-only ones (they exist, unread)."""
    definition = store.definition(inst_path.object_id)
    out = set(readable)
    for rid, res in definition.resources.items():
        if (res.executable or (res.writable and not res.readable)) and rid in _declared(store, inst_path):
            out.add(rid)
    return sorted(out)


def _declared(store: ObjectStore, inst_path: LwM2MPath) -> set[int]:
    """Executable/write-only resources a device implements: those with handlers or mandatory ones."""
    definition = store.definition(inst_path.object_id)
    oid = inst_path.object_id
    return {rid for rid, res in definition.resources.items() if res.mandatory or store.handles(oid, rid)}


def _server_default(store: ObjectStore, resource_id: int) -> float | None:
    try:
        value = store.get(LwM2MPath(1, 0, resource_id))
    except LwM2MError:
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _passes_thresholds(attrs: Attributes, old: Any, new: Any) -> bool:
    """gt/lt fire when the value crosses the threshold; st when it moved at least that far."""
    if not isinstance(new, int | float) or isinstance(new, bool) or not isinstance(old, int | float):
        return new != old
    gt, lt, st = attrs.get("gt"), attrs.get("lt"), attrs.get("st")
    if gt is None and lt is None and st is None:
        return new != old
    if gt is not None and (old <= gt) != (new <= gt):
        return True
    if lt is not None and (old < lt) != (new < lt):
        return True
    return st is not None and abs(new - old) >= st


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
