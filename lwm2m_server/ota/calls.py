"""The requests an OTA job sends to its device, each made safe against lost exchanges and re-registrations.

A request the job cannot do without is retried while the device is unreachable (lost exchange, ICMP
unreachable, re-registering) until the job's silence timeout; a CoAP error answer ends the job. A write or
Execute whose answer was lost may come back 4.05 on the resend: that is fine when the device has already moved
on. Push delivery resends each Block1 block a few times (a block is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from lwm2m_server.coap.errors import DeviceError, DeviceNotRegistered, DeviceTimeout
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.follow import Follower
from lwm2m_server.ota.job_state import Cause, JobFailed, JobRetry
from lwm2m_server.ota.push import BlockReply, PushError, push_package
from lwm2m_server.protocol.codecs import ContentFormat
from lwm2m_server.protocol.fwupdate import (
    FW_CANCEL,
    FW_PACKAGE,
    FW_PACKAGE_URI,
    FW_UPDATE,
    FirmwareState,
    UpdateResult,
)

log = get_logger(__name__)

BLOCK_TRIES = 4
RESET_PACKAGE = b"\x00"  # a single NUL Package resets the state machine (as an empty Package URI does)


class DeviceCalls:
    """The job's requests to one device; ``follower`` knows the device's Object 5 and its silence."""

    def __init__(self, client: Any, endpoint: str, follower: Follower) -> None:
        self.client, self.endpoint, self.follower = client, endpoint, follower

    async def call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """A request the job cannot do without (see the module docstring)."""
        while True:
            try:
                result = await make()
            except DeviceError as exc:
                if not isinstance(exc, DeviceTimeout | DeviceNotRegistered) and exc.coap_code != "network":
                    detail = f"device answered {exc.coap_code}: {exc.message}"
                    raise JobFailed(Cause.DEVICE_ERROR, None, detail) from None
                if self.follower.silent_too_long():
                    raise JobFailed(Cause.TIMEOUT, None, f"device did not answer ({exc.coap_code})") from None
                await asyncio.sleep(0.2 if isinstance(exc, DeviceTimeout) else 1.0)
                continue
            self.follower.alive()
            return result

    async def read_fw(self) -> dict[Any, Any]:
        return await self.call(self.follower.read_fw)  # type: ignore[no-any-return]

    async def idempotent(self, make: Callable[[], Awaitable[Any]], done_states: tuple[FirmwareState, ...]) -> None:
        """A write/execute whose answer may have been lost: a 4.05 on the resend is fine if the device already
        moved to one of ``done_states`` (the first request did arrive)."""
        try:
            await self.call(make)
        except JobFailed as failed:
            if "4.05" not in failed.detail:
                raise
            await self.read_fw()
            if self.follower.tracker.reported_state not in done_states:
                raise

    async def write_uri(self, uri: str) -> None:
        """Pull: write the Package URI (the device starts downloading)."""
        await self.idempotent(lambda: self.client.write(self.endpoint, FW_PACKAGE_URI, {FW_PACKAGE_URI: uri}),
                              done_states=(FirmwareState.DOWNLOADING, FirmwareState.DOWNLOADED))  # fmt: skip

    async def execute_update(self) -> None:
        """Execute /5/0/2 (Update); the tracker hears of it once the device accepted."""
        await self.idempotent(lambda: self.client.execute(self.endpoint, FW_UPDATE),
                              done_states=(FirmwareState.UPDATING, FirmwareState.IDLE))  # fmt: skip
        self.follower.tracker.executed()

    async def reset(self, *, cancel: bool) -> None:
        """Write the reset value (empty URI, else a NUL package); on cancel also Execute /5/0/10 if it exists."""
        try:
            await self.client.write(self.endpoint, FW_PACKAGE_URI, {FW_PACKAGE_URI: ""})
        except DeviceError:
            with contextlib.suppress(DeviceError):
                await self.client.raw_request(self.endpoint, "PUT", str(FW_PACKAGE), RESET_PACKAGE,
                                              content_format=ContentFormat.OPAQUE)  # fmt: skip
        if cancel:
            with contextlib.suppress(DeviceError):
                await self.client.execute(self.endpoint, FW_CANCEL)
        self.follower.tracker.reset()

    async def push(self, data: bytes, block_size: int, progress: Callable[[int, int, int], None]) -> None:
        """Push: Block1 PUT of the whole package to /5/0/0. A package too large for the device is not fitting
        (result 2); a transfer that breaks off is retryable (result 4)."""

        async def send(chunk: bytes, num: int, more: bool, szx: int, size1: int | None) -> BlockReply:
            for attempt in range(BLOCK_TRIES):  # a block is idempotent: resend it after a lost exchange
                try:
                    resp = await self.client.raw_request(self.endpoint, "PUT", str(FW_PACKAGE), chunk,
                                                         content_format=ContentFormat.OPAQUE, block1=(num, szx, more),
                                                         size1=size1)  # fmt: skip
                    break
                except DeviceTimeout:
                    if attempt == BLOCK_TRIES - 1:
                        raise
                    log.info("ota.push_block_resent", endpoint=self.endpoint, block=num)
            self.follower.alive()
            b1 = resp.block1
            return BlockReply(resp.code, (b1[0], bool(b1[2]), b1[1]) if b1 else None, resp.size1)

        try:
            await push_package(data, send, block_size=block_size, progress=progress)
        except PushError as exc:
            if exc.too_large:
                raise JobFailed(Cause.NOT_FITTING, int(UpdateResult.NOT_ENOUGH_FLASH), str(exc)) from None
            raise JobRetry(int(UpdateResult.CONNECTION_LOST), f"push failed: {exc}") from None
        except DeviceTimeout:
            raise JobRetry(int(UpdateResult.CONNECTION_LOST), "push: device stopped answering") from None
