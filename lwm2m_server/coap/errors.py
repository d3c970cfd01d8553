"""Typed failures of server→device operations; every one carries the CoAP code (or "timeout")."""

from __future__ import annotations


class DeviceError(Exception):
    """The device answered with a CoAP error code (``coap_code`` like "4.04"), or the exchange failed."""

    def __init__(self, coap_code: str, message: str = "", *, endpoint: str | None = None) -> None:
        self.coap_code = coap_code
        self.message = message or coap_code
        self.endpoint = endpoint
        super().__init__(f"{endpoint or 'device'}: {coap_code} {message}".strip())


class DeviceTimeout(DeviceError):
    """No answer within the timeout (retransmissions included)."""

    def __init__(self, message: str = "no response", *, endpoint: str | None = None) -> None:
        super().__init__("timeout", message, endpoint=endpoint)


class DeviceNotRegistered(DeviceError):
    """The endpoint has no live registration (never registered, de-registered or expired)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__("not_registered", "device is not registered", endpoint=endpoint)


class QueueFull(DeviceError):
    """The sleeping device's request queue is at ``max_queued_requests``."""

    def __init__(self, endpoint: str, size: int) -> None:
        super().__init__("queue_full", f"{size} requests already queued", endpoint=endpoint)


class BadResponse(DeviceError):
    """The device answered 2.xx but the payload can't be decoded (unknown format, malformed content)."""

    def __init__(self, message: str, *, endpoint: str | None = None, content_format: int | None = None) -> None:
        self.content_format = content_format
        super().__init__("bad_response", message, endpoint=endpoint)
