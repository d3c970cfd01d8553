"""Object 5 (Firmware Update) on the simulated device: the state machine, push, pull, install.

State 0 Idle -> 1 Downloading -> 2 Downloaded -> (Execute /5/0/2) 3 Updating -> 0 Idle with Update Result.
- Push: Block1 PUT of /5/0/0 at whatever block size the server uses; optionally forces a smaller SZX in the
  2.31 Continue or refuses big blocks with 4.13 + Size1; a package bigger than flash gets 4.13 and result 2.
- Pull: a write of /5/0/1 starts a Block2 download from that URI (path only) at the configured block size.
  Progress (bytes, ETag) lives in "flash", so after a reboot the download resumes where it stopped.
- Writing an empty URI or a single NUL package resets to Idle; Execute Update outside Downloaded is 4.05.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from aiocoap import Code, Message
from aiocoap.optiontypes import BlockOption

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.fwupdate import (
    FW_CANCEL,
    FW_PACKAGE,
    FW_PACKAGE_URI,
    FW_PKG_NAME,
    FW_PKG_VERSION,
    FW_RESULT,
    FW_STATE,
    FW_UPDATE,
    PROTOCOL_SCHEMES,
    FirmwareState,
    UpdateResult,
    device_transition,
)
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.install import InstallOutcome, install, self_test
from simulator.objects import ObjectStore
from simulator.pull import PullFailed, PullProgress, block_tuning, fetch_package, szx_of
from simulator.values import LwM2MError

if TYPE_CHECKING:
    from simulator.device import SimulatedDevice

log = get_logger(__name__)


def _ids(path: LwM2MPath) -> tuple[int, int]:
    """(object id, resource id) of an Object 5 resource path, as the ObjectStore hooks are keyed."""
    assert path.resource_id is not None
    return path.object_id, path.resource_id


class Firmware:
    """Object 5 behaviour bound to one device (its store, config, context and radio)."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.config = device.config
        assert device.objects is not None
        self.store: ObjectStore = device.objects
        self.package = bytearray()
        self.pull: PullProgress | None = None
        self.push_active = False
        self.blocks = 0
        self.installed_model: bytes | None = None
        self._rebooted = False
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random(device.seed)
        self._tuning = block_tuning(self.config.block_ack_timeout_s)
        self.corrupted = 0  # packages corrupted so far by the corrupt_downloads fault
        self.installs = 0  # packages installed successfully (a test's "updated exactly once")
        self.store.on_write(*_ids(FW_PACKAGE), self._on_package_write, check=self._check_package_write)
        self.store.on_write(*_ids(FW_PACKAGE_URI), self._on_uri_write, check=self._check_uri_write)
        self.store.on_execute(*_ids(FW_UPDATE), self._on_update)
        self.store.on_execute(*_ids(FW_CANCEL), self._on_cancel)
        self.store.on_execute(32002, 13, self._on_self_test)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> int:
        return int(self.store.get(FW_STATE))

    @property
    def result(self) -> int:
        return int(self.store.get(FW_RESULT))

    def _set(self, state: int | None = None, result: int | None = None) -> None:
        """Report State/Update Result; a State change the Object 5 machine forbids is a simulator bug."""
        if result is not None:
            self.store.set(FW_RESULT, int(UpdateResult(result)))
        if state is not None:
            self.store.set(FW_STATE, int(device_transition(self.state, state)))

    def reset(self) -> None:
        """Back to Idle: abort any transfer, forget the package."""
        self._cancel_task()
        self.package = bytearray()
        self.pull = None
        self.push_active = False
        self.store.set(FW_PACKAGE_URI, "")
        self._set(FirmwareState.IDLE, UpdateResult.INITIAL)

    def _fail(self, result: UpdateResult, why: str) -> None:
        log.info("sim.fw_failed", endpoint=self.device.endpoint, result=result, why=why)
        self._cancel_task()
        self.package = bytearray()
        self.pull = None
        self.push_active = False
        self._set(FirmwareState.IDLE, result)

    def _downloaded(self) -> None:
        faults = self.config.faults
        if self.package and (faults.corrupt_payload or self.corrupted < faults.corrupt_downloads):
            i = self._rng.randrange(len(self.package))
            self.package[i] ^= 0xFF
            self.corrupted += 1
        self.push_active = False
        self._set(FirmwareState.DOWNLOADED)

    def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- power ---------------------------------------------------------------------------------
    def power_lost(self) -> None:
        """RAM is gone: the push buffer and any running task; pull progress is in flash."""
        self._cancel_task()

    def power_restored(self) -> None:
        if self.push_active:  # a push cannot resume: the server has to send it again
            self._fail(UpdateResult.CONNECTION_LOST, "rebooted during push")
        elif self.state == FirmwareState.DOWNLOADING and self.pull is not None:
            self._start_download()
        elif self.state == FirmwareState.UPDATING:
            self._fail(UpdateResult.UPDATE_FAILED, "rebooted during update")

    def _count_block(self) -> bool:
        """Count a received block; True when the reboot fault fires now (once)."""
        self.blocks += 1
        after = self.config.faults.reboot_after_blocks
        if after is not None and not self._rebooted and self.blocks >= after:
            self._rebooted = True
            if self.device.link is not None:
                self.device.link.asleep = True  # the power is off: nothing more goes out
            self.device.spawn_reboot(self.config.faults.reboot_down_s)
            return True
        return False

    # ---- push ----------------------------------------------------------------------------------
    def _on_package_write(self, path: LwM2MPath, value: Any) -> None:
        """A whole-package write that arrived through the generic write path (no Block1)."""
        data = bytes(value) if isinstance(value, bytes | bytearray) else b""
        if data in (b"", b"\0"):
            self.reset()
            return
        self._accept_whole(data)

    def _check_package_write(self, path: LwM2MPath, value: Any) -> None:
        """What a whole-package write is refused for, before anything is written."""
        data = bytes(value) if isinstance(value, bytes | bytearray) else b""
        if data in (b"", b"\0"):
            return
        if self.state in (FirmwareState.DOWNLOADING, FirmwareState.UPDATING) and not self.push_active:
            raise LwM2MError("4.05", "firmware update in progress")
        if self.config.delivery == "pull":
            raise LwM2MError("4.05", "this device only pulls")

    def _accept_whole(self, data: bytes) -> None:
        self._check_package_write(FW_PACKAGE, data)
        if len(data) > self.config.profile.flash_free:
            self._fail(UpdateResult.NOT_ENOUGH_FLASH, f"package of {len(data)} bytes")
            raise LwM2MError("4.13", "package too large")
        self.package = bytearray(data)
        self._set(result=UpdateResult.INITIAL)
        self._count_block()
        self._downloaded()

    async def handle_push(self, request: Message) -> Message:
        """PUT /5/0/0, with or without Block1."""
        block1 = request.opt.block1
        if block1 is None:
            try:
                self._on_package_write(FW_PACKAGE, request.payload)
            except LwM2MError as exc:
                return self._too_large() if exc.code == "4.13" else _error(exc.code, exc.message)
            return Message(code=Code.CHANGED)
        limit = self.config.max_block1_size
        if limit is not None and block1.size > limit:
            response = Message(code=Code.REQUEST_ENTITY_TOO_LARGE)
            response.opt.block1 = BlockOption.BlockwiseTuple(block1.block_number, block1.more, szx_of(limit))
            response.opt.size1 = limit
            return response
        if block1.block_number == 0:
            if request.payload == b"\0" and not block1.more:
                self.reset()
                return Message(code=Code.CHANGED)
            if self.state in (FirmwareState.DOWNLOADING, FirmwareState.UPDATING) and not self.push_active:
                return _error("4.05", "firmware update in progress")
            if self.config.delivery == "pull":
                return _error("4.05", "this device only pulls")
            total = request.opt.size1
            if total is not None and total > self.config.profile.flash_free:
                self._fail(UpdateResult.NOT_ENOUGH_FLASH, f"announced package of {total} bytes")
                return self._too_large()
            self._cancel_task()
            self.package = bytearray()
            self.pull = None
            self.push_active = True
            self._set(
                FirmwareState.IDLE if self.config.skip_downloading_state else FirmwareState.DOWNLOADING,
                UpdateResult.INITIAL,
            )
        elif not self.push_active:
            return _error("4.08", "no transfer in progress")
        offset = block1.start
        if offset > len(self.package):
            return _error("4.08", f"block {block1.block_number} leaves a gap")
        del self.package[offset:]
        self.package += request.payload
        if len(self.package) > self.config.profile.flash_free:
            self._fail(UpdateResult.NOT_ENOUGH_FLASH, f"package beyond {self.config.profile.flash_free} bytes")
            return self._too_large()
        if self._count_block():
            return Message(code=Code.CONTINUE)  # lost: the device is rebooting
        if block1.more:
            response = Message(code=Code.CONTINUE)
            szx = block1.size_exponent
            if self.config.force_block1_size is not None:
                szx = min(szx, szx_of(self.config.force_block1_size))
            response.opt.block1 = BlockOption.BlockwiseTuple(block1.block_number, True, szx)
            return response
        self._downloaded()
        response = Message(code=Code.CHANGED)
        response.opt.block1 = BlockOption.BlockwiseTuple(block1.block_number, False, block1.size_exponent)
        return response

    def _too_large(self) -> Message:
        response = Message(code=Code.REQUEST_ENTITY_TOO_LARGE, payload=b"package exceeds flash")
        response.opt.size1 = self.config.profile.flash_free
        return response

    # ---- pull ----------------------------------------------------------------------------------
    def _check_uri_write(self, path: LwM2MPath, value: Any) -> None:
        if str(value) != "" and self.state in (FirmwareState.DOWNLOADING, FirmwareState.UPDATING):
            raise LwM2MError("4.05", "firmware update in progress")

    def _on_uri_write(self, path: LwM2MPath, value: Any) -> None:
        uri = str(value)
        if uri == "":
            self.reset()
            return
        self._check_uri_write(path, value)
        self._cancel_task()
        self.store.set(FW_PACKAGE_URI, uri)
        self.package = bytearray()
        self.pull = None
        self._set(result=UpdateResult.INITIAL)
        split = urlsplit(uri)
        if not split.scheme or not split.hostname or split.port == 0:
            self._fail(UpdateResult.INVALID_URI, f"invalid URI {uri!r}")
            return
        supported = {PROTOCOL_SCHEMES[p] for p in self.config.protocols if p in PROTOCOL_SCHEMES}
        reachable = "coaps" if self.device.secure else "coap"  # a DTLS device has no plain CoAP stack
        if split.scheme != reachable or split.scheme not in supported or self.config.delivery == "push":
            self._fail(UpdateResult.UNSUPPORTED_PROTOCOL, f"scheme {split.scheme!r}")
            return
        if self.config.pull_drop_query:
            uri = urlunsplit((split.scheme, split.netloc, split.path, "", ""))
        self.pull = PullProgress(uri)
        self._set(FirmwareState.DOWNLOADING)
        self._start_download()

    def _start_download(self) -> None:
        self._cancel_task()
        self._task = asyncio.get_running_loop().create_task(self._download(), name=f"pull-{self.device.endpoint}")

    async def _download(self) -> None:
        with self.device.keep_awake():
            try:
                await self._download_blocks()
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._fail(UpdateResult.CONNECTION_LOST, "block request timed out")
            except Exception as exc:
                self._fail(UpdateResult.CONNECTION_LOST, f"{type(exc).__name__}: {exc}")

    async def _download_blocks(self) -> None:
        assert self.pull is not None
        try:
            complete = await fetch_package(
                lambda: self.device.context,
                self.pull,
                self.package,
                block_size=self.config.block_size,
                flash_free=self.config.profile.flash_free,
                request_timeout_s=self.config.request_timeout_s,
                tuning=self._tuning,
                on_block=self._count_block,
            )
        except PullFailed as failed:
            self._fail(failed.result, failed.detail)
            return
        if complete:
            self._downloaded()

    # ---- execute -------------------------------------------------------------------------------
    def _on_update(self, path: LwM2MPath, arguments: str) -> None:
        if self.state != FirmwareState.DOWNLOADED:
            raise LwM2MError("4.05", f"Update needs state Downloaded, state is {self.state}")
        self._set(FirmwareState.UPDATING)
        self._cancel_task()
        self._task = asyncio.get_running_loop().create_task(self._install(), name=f"install-{self.device.endpoint}")

    def _on_cancel(self, path: LwM2MPath, arguments: str) -> None:
        if self.state == FirmwareState.UPDATING:
            raise LwM2MError("4.05", "too late to cancel: updating")
        self._fail(UpdateResult.CANCELLED, "cancelled by the server")
        self.store.set(FW_PACKAGE_URI, "")

    async def _install(self) -> None:
        refuse = self.config.faults.refuse_update
        if refuse is not None:
            await asyncio.sleep(0.05)
            self._fail(UpdateResult(refuse), "refused by fault injection")
            return
        package = bytes(self.package)
        hw = self.config.profile
        firmware_version = str(self.store.get(LwM2MPath(3, 0, 3)))
        loop = asyncio.get_running_loop()
        outcome: InstallOutcome = await loop.run_in_executor(
            None,
            lambda: install(
                package,
                flash_free=hw.flash_free,
                ram_free_ml=hw.ram_free_ml,
                public_key=self.config.server_public_key,
                accept_raw_firmware=self.config.accept_raw_firmware,
                current_firmware=firmware_version,
                accelerator=hw.accelerator,
            ),
        )
        if outcome.result != UpdateResult.SUCCESS:
            self._fail(outcome.result, outcome.detail)
            return
        self.installs += 1
        self.store.set(FW_PKG_NAME, outcome.package_name)
        self.store.set(FW_PKG_VERSION, outcome.package_version)
        self.package = bytearray()
        self.pull = None
        self.store.set(FW_PACKAGE_URI, "")
        if outcome.firmware_version is not None:
            self.store.set(LwM2MPath(3, 0, 3), outcome.firmware_version)
            self._set(FirmwareState.IDLE, UpdateResult.SUCCESS)
            self.device.trigger_update(full=True)  # a new firmware re-registers
            return
        self.installed_model = _payload_of(package)
        for rid, value in outcome.model.items():
            self.store.set(LwM2MPath(32002, 0, rid), value)
        forgot = self.config.faults.forget_result
        self._set(FirmwareState.IDLE, UpdateResult.INITIAL if forgot else UpdateResult.SUCCESS)

    async def _on_self_test(self, path: LwM2MPath, arguments: str) -> None:
        if self.installed_model is None:
            self.store.set(LwM2MPath(32002, 0, 12), "error: no model")
            return
        count = int(self.store.get(LwM2MPath(32002, 0, 9)) or 0)
        model, arena = self.installed_model, self.config.profile.ram_free_ml
        values = await asyncio.get_running_loop().run_in_executor(None, lambda: self_test(model, arena, count))
        for rid, value in values.items():
            self.store.set(LwM2MPath(32002, 0, rid), value)


def _payload_of(package: bytes) -> bytes | None:
    try:
        pkg = importlib.import_module("compilers.package")
        return bytes(pkg.parse(package)[1])
    except Exception:
        return None


def _error(code: str, message: str) -> Message:
    from simulator.site import error_response

    return error_response(code, message)
