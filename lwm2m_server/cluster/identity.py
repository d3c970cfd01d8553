"""A node's id: ``[cluster] node_id`` when set, else ``<hostname>-<random>`` made on the first start and kept in
``<data_dir>/node_id``, so a restarted node is the same node (it reloads its own registrations) while two nodes
with their own data dirs never collide."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path

from lwm2m_server.config import Settings

NODE_ID_FILE = "node_id"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def resolve_node_id(settings: Settings) -> str:
    if settings.cluster.node_id:
        return settings.cluster.node_id
    path = Path(settings.server.data_dir) / NODE_ID_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if kept and not _UNSAFE.search(kept):
        return kept
    host = _UNSAFE.sub("-", socket.gethostname())[:40] or "node"
    made = f"{host}-{secrets.token_hex(3)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made + "\n", encoding="utf-8")
    return made
