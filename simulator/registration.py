"""What a simulated device sends to the Resource Directory: Register query and link-format payload.

Pure functions, so tests can pin the exact bytes a 1.0 and a 1.1 device put on the wire.
"""

from __future__ import annotations

from simulator.objects import ObjectStore
from simulator.profiles import DeviceConfig

LWM2M_1_1_FORMATS = (110, 112, 11542)
"""Announced in ``ct=`` by 1.1 devices (text, opaque and link are mandatory and not listed)."""
LWM2M_1_2_FORMATS = (110, 112, 11542, 11544)
"""1.2 devices also announce LwM2M-CBOR."""

HIDDEN_FROM_REGISTRATION = frozenset({0, 21})
"""Security and OSCORE objects are never part of a Register payload."""


def register_query(config: DeviceConfig) -> tuple[str, ...]:
    """``ep``, ``lt``, ``lwm2m``, ``b`` and, for 1.1 queue mode, the valueless ``Q``."""
    query = [f"ep={config.endpoint}", f"lt={config.lifetime}", f"lwm2m={config.lwm2m_version}"]
    if config.lwm2m_version == "1.0":
        query.append("b=UQ" if config.queue_mode else "b=U")
    else:
        query.append("b=U")
        if config.queue_mode:
            query.append("Q")
    return tuple(query)


def object_links(store: ObjectStore, lwm2m_version: str) -> str:
    """The link-format payload: root link (1.1), then per object ``</id>;ver=x`` (1.1, non-1.0) and instances."""
    links: list[str] = []
    if lwm2m_version != "1.0":
        announced = LWM2M_1_2_FORMATS if lwm2m_version == "1.2" else LWM2M_1_1_FORMATS
        formats = " ".join(str(cf) for cf in announced)
        links.append(f'</>;rt="oma.lwm2m";ct="{formats}"')
    for oid in store.objects():
        if oid in HIDDEN_FROM_REGISTRATION:
            continue
        version = store.definition(oid).object_version
        instances = store.instances(oid)
        if lwm2m_version != "1.0" and version not in ("", "1.0"):
            links.append(f"</{oid}>;ver={version}")
        elif not instances:
            links.append(f"</{oid}>")
        links.extend(f"</{oid}/{iid}>" for iid in instances)
    return ",".join(links)
