"""DTLS PSK for simulated devices: an aiocoap context on the tinydtls *client* transport (one DTLS session per
server, started by the device's first uplink), which also serves the server's requests arriving over it.

aiocoap keeps client sessions in a weak pool, so the device holds its session (the remote of its Register
response) for as long as it is registered; the server's requests, observations and pushes come back over it, and
a pull from ``coaps://`` reuses it. Credentials: per-device identity and key, e.g. from the CSV that
``tinymlaas credentials import`` takes (:func:`load_psk_csv`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiocoap import Context
from aiocoap.transports.tinydtls import MessageInterfaceTinyDTLS

from lwm2m_server.credentials import parse_csv


async def create_dtls_context(site: Any, server_uri: str, identity: str, key: bytes) -> Context:
    """A client context that reaches ``coaps://host:port`` (and anything below it) with this PSK."""
    split = urlsplit(server_uri)
    if split.scheme != "coaps" or not split.hostname:
        raise ValueError(f"a DTLS device needs a coaps://host:port server URI, got {server_uri!r}")
    loop = asyncio.get_running_loop()
    context = Context(loop=loop, serversite=site, loggername="sim-dtls")
    await context._append_tokenmanaged_messagemanaged_transport(
        lambda mman: MessageInterfaceTinyDTLS.create_client_transport_endpoint(mman, log=context.log, loop=loop)
    )
    base = f"coaps://{split.netloc}"
    context.client_credentials.load_from_dict(
        {f"{base}/*": {"dtls": {"psk": key, "client-identity": identity.encode("utf-8")}}}
    )
    return context


def session_port(remote: Any) -> int:
    """The local UDP port of a DTLS client session (each session has its own socket)."""
    return int(remote._transport.get_extra_info("socket").getsockname()[1])


class SecureLink:
    """What the device needs of its radio over DTLS: the port and the sleep flag. Loss and delay injection work on
    the plain UDP transport only (the DTLS session owns its own socket); asking for them here is an error."""

    def __init__(self, *, loss_pct: float = 0.0, delay_ms: float = 0.0) -> None:
        if loss_pct or delay_ms:
            raise ValueError("packet loss / delay injection is not available on a DTLS device")
        self.loss_pct = 0.0
        self.delay_ms = 0.0
        self.asleep = False
        self.dropped_in = 0
        self.dropped_out = 0
        self.session: Any = None

    @property
    def port(self) -> int:
        if self.session is None:
            raise RuntimeError("no DTLS session yet")
        return session_port(self.session)


def load_psk_csv(path: str | Path) -> dict[str, tuple[str, bytes]]:
    """endpoint -> (identity, key) from an ``endpoint,identity,key_hex`` file (same rules as the import)."""
    return {ep: (ident, key) for ep, ident, key in parse_csv(Path(path).read_text(encoding="utf-8"))}
