"""Choose push or pull for one device from Object 5's /5/0/9 (delivery method) and /5/0/8 (protocols).

Pure: no I/O except :func:`local_address_towards`, which asks the kernel which local address routes to a device.
Pull is preferred when both work: the device downloads at its own pace, resumes after a drop and the server keeps
no per-device transfer state. A pull URI is never written with a scheme the device did not list.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from lwm2m_server.protocol.fwupdate import PROTOCOL_SCHEMES, DeliveryMethod, delivery_method

Method = Literal["push", "pull"]


class MethodError(ValueError):
    """No delivery method works for this device (the message says why)."""


@dataclass(frozen=True, slots=True)
class DeliveryChoice:
    method: Method
    uri: str | None  # the Package URI for pull, None for push


def device_methods(reported: int | None) -> frozenset[Method]:
    """What /5/0/9 allows. Absent: both Package (0) and Package URI (1) are mandatory resources, so both."""
    value = delivery_method(reported)
    return (DeliveryMethod.BOTH if value is None else value).methods


def device_schemes(protocols: Iterable[int]) -> frozenset[str]:
    return frozenset(PROTOCOL_SCHEMES[p] for p in protocols if p in PROTOCOL_SCHEMES)


def package_uri(base_uri: str, sha256_hex: str) -> str:
    """Path-only Package URI (some clients drop the query): ``coap://host:port/fw/<sha>``."""
    return f"{base_uri.rstrip('/')}/fw/{sha256_hex}"


def choose_method(
    *,
    delivery_method: int | None,
    protocols: Iterable[int],
    base_uri: str,
    sha256_hex: str,
    prefer: Method = "pull",
    requested: Method | None = None,
) -> DeliveryChoice:
    """Pick the delivery method; ``requested`` (operator's choice) must be possible or :class:`MethodError`."""
    methods = device_methods(delivery_method)
    scheme = urlsplit(base_uri).scheme.lower()
    schemes = device_schemes(protocols)
    pull_ok = "pull" in methods and scheme in schemes
    push_ok = "push" in methods
    if requested == "pull":
        if "pull" not in methods:
            raise MethodError("the device does not support pull delivery (/5/0/9)")
        if not pull_ok:
            listed = ",".join(sorted(schemes)) or "none"
            raise MethodError(f"the device does not list the {scheme!r} scheme for pull (/5/0/8: {listed})")
        return DeliveryChoice("pull", package_uri(base_uri, sha256_hex))
    if requested == "push":
        if not push_ok:
            raise MethodError("the device does not support push delivery (/5/0/9)")
        return DeliveryChoice("push", None)
    if pull_ok and (prefer == "pull" or not push_ok):
        return DeliveryChoice("pull", package_uri(base_uri, sha256_hex))
    if push_ok:
        return DeliveryChoice("push", None)
    raise MethodError(f"pull only, but the device lists no protocol we serve ({scheme!r}); /5/0/8: {sorted(schemes)}")


def _host_literal(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def local_address_towards(device_host: str) -> str:
    """The local address the kernel would use to reach ``device_host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in device_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((device_host, 9))
        return str(s.getsockname()[0])


def base_coap_uri(
    public_coap_uri: str, bound_host: str, bound_port: int, device_host: str | None, *, scheme: str = "coap"
) -> str:
    """``public_coap_uri`` if configured, else ``<scheme>://<address>:<port>`` derived from the bound socket.

    A wildcard bind ("::", "0.0.0.0", "") is replaced by the local address that routes to the device.
    """
    if public_coap_uri:
        return public_coap_uri.rstrip("/")
    host = bound_host
    if host in ("", "::", "0.0.0.0"):
        target = device_host or "127.0.0.1"
        if target.startswith("::ffff:"):
            target = target[len("::ffff:") :]
        try:
            host = local_address_towards(target)
        except OSError:
            host = "127.0.0.1"
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    return f"{scheme}://{_host_literal(host)}:{bound_port}"
