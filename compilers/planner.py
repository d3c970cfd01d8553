"""Compile every applicable variant, check each against the target's flash and RAM, pick the best.

Rules: flash = signed package size (exact) + margin; RAM = full TFLM arena + runtime overhead; float math
(float32 models, float I/O around a quantized graph, hybrid) only with an FPU; Vela only with an accelerator;
reject variants losing more than ``accuracy_margin`` points vs float32. Among the variants left, the smallest
delivery wins (the signed package is what goes over the air: bytes cost battery and airtime), then the most
accurate; on an accelerator target NPU builds rank first (a CPU build leaves the NPU idle). The rule is quoted
in the fit report's summary. Importing this module does not import TensorFlow; compiles run in a
spawn-context process pool.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from compilers.artifact import Artifact
from compilers.base import CompileError, Compiler, ModelSource
from compilers.cache import CompileCache, cache_key
from compilers.registry import backends, get_backend
from compilers.report import FitReport, VariantFit
from compilers.target import Target, format_bytes
from lwm2m_server.logging import get_logger

log = get_logger(__name__)

NPU_OPS = frozenset({"ethos-u"})


@dataclass(frozen=True)
class PlanOptions:
    accuracy_margin: float = 1.0  # percentage points vs float32
    flash_margin_bytes: int = 4096
    runtime_overhead_bytes: int = 2048
    clock_mhz: float | None = None  # rescales Vela's cycle estimate to the device's NPU clock


def resolve_source(
    model: ModelSource | str | Path,
    zoo_dir: Path | None = None,
    zoo_epochs: int | None = None,
    executor: Executor | None = None,
) -> ModelSource:
    """A zoo name, a model path, or a ready :class:`ModelSource`; ``ValueError`` with a clear message otherwise."""
    if isinstance(model, ModelSource):
        return model
    from compilers.zoo import ZOO_NAMES, build_model

    if isinstance(model, str) and model in ZOO_NAMES:
        if zoo_dir is None:
            raise ValueError("zoo models need a cache directory")
        return build_model(model, zoo_dir, epochs=zoo_epochs, executor=executor).source()
    path = Path(model)
    if not path.exists():
        raise ValueError(f"unknown model {str(model)!r}: not a zoo model ({', '.join(ZOO_NAMES)}) nor an existing path")
    if path.is_file():
        try:
            with path.open("rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
        if path.suffix == ".tflite" and head[4:8] != b"TFL3":
            raise ValueError(f"{path} is not a TFLite flatbuffer")
        if path.suffix not in (".tflite", ".keras"):
            raise ValueError(f"{path}: expected a .tflite, a .keras file or a SavedModel directory")
    elif not (path / "saved_model.pb").exists():
        raise ValueError(f"{path} is a directory but not a SavedModel (no saved_model.pb)")
    return ModelSource(path=path)


def with_margin(source: ModelSource, opts: PlanOptions) -> ModelSource:
    """The source with the plan's accuracy margin (it decides whether a 16x8 build is offered)."""
    if source.accuracy_margin == opts.accuracy_margin:
        return source
    return replace(source, accuracy_margin=opts.accuracy_margin, _hash=None)


def load_data(source: ModelSource, npz: Path, task: str | None = None) -> ModelSource:
    """Attach arrays from an ``.npz`` (representative, val_x, val_y, train_x, train_y; optional ``task``)."""
    import numpy as np

    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read data file {npz}: {exc}") from exc
    unknown = set(arrays) - {"representative", "val_x", "val_y", "train_x", "train_y", "task"}
    if unknown:
        raise ValueError(f"{npz}: unknown arrays {sorted(unknown)}")
    chosen = task or (str(arrays["task"]) if "task" in arrays else None)
    if chosen not in (None, "classification", "autoencoder"):
        raise ValueError(f"unknown task {chosen!r}: use classification or autoencoder")
    rep = arrays.get("representative", arrays.get("train_x"))
    return ModelSource(
        path=source.path,
        name=source.name,
        task=chosen,  # type: ignore[arg-type]
        representative=None if rep is None else rep.astype(np.float32),
        val_x=arrays.get("val_x"),
        val_y=arrays.get("val_y"),
        train_x=arrays.get("train_x"),
        train_y=arrays.get("train_y"),
    )


def _run_backend(module: str, name: str, source: ModelSource, target: Target, prior: list[Artifact]) -> list[Artifact]:
    """Worker entry point: one backend's compile (its module is imported so it registers in the worker too)."""
    importlib.import_module(module)
    return get_backend(name).compile(source, target, prior)


@dataclass
class CompileRunner:
    """Cache lookups + compiles, with single-flight per cache key across threads; counts what it did."""

    cache: CompileCache
    executor_factory: Callable[[], Executor]
    compiles: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inflight: dict[str, Future[list[Artifact]]] = field(default_factory=dict)
    _executor: Executor | None = None

    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = self.executor_factory()
            return self._executor

    def artifacts(self, source: ModelSource, target: Target) -> list[Artifact]:
        out: list[Artifact] = []
        for backend in backends():
            if not backend.applies(source, target):
                continue
            key = cache_key(source.content_hash(), backend.name, backend.version, backend.target_key(target))
            out.extend(self._one(key, backend, source, target, list(out)))
        return out

    def _one(
        self, key: str, backend: Compiler, source: ModelSource, target: Target, prior: list[Artifact]
    ) -> list[Artifact]:
        name = backend.name
        cached = self.cache.get(key)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return cached
        with self._lock:
            fut = self._inflight.get(key)
            owner = fut is None
            if fut is None:
                fut = self._inflight[key] = Future()
        if not owner:
            return fut.result()
        try:
            log.info("compile.start", backend=name, model=source.name, key=key)
            module = type(backend).__module__
            try:
                result = self.executor().submit(_run_backend, module, name, source, target, prior).result()
            except BrokenProcessPool as exc:  # a worker died (OOM, native crash): start a fresh pool next time
                with self._lock:
                    self._executor = None
                raise CompileError(f"{name} compile worker crashed: {exc}") from exc
            self.cache.put(key, result)
            with self._lock:
                self.compiles += 1
            fut.set_result(result)
            return result
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def shutdown(self) -> None:
        if self._executor is not None and hasattr(self._executor, "shutdown"):
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _verdict(art: Artifact, name: str, target: Target, opts: PlanOptions, float_acc: float | None) -> VariantFit:
    from compilers.packaging import package_size

    arena = art.arena_for(target.pointer_size)
    ram = arena + opts.runtime_overhead_bytes if art.data else 0
    flash = (package_size(art, name, target) if art.data else 0) + opts.flash_margin_bytes
    latency = art.latency_us
    cycles = art.notes.get("vela", {}).get("cycles") if isinstance(art.notes.get("vela"), dict) else None
    if cycles is not None and opts.clock_mhz:
        latency = cycles / opts.clock_mhz
    reasons: list[str] = []
    if "error" in art.notes:
        reasons.append(f"build failed: {art.notes['error']}")
    else:
        if art.variant == "float32" and not target.fpu:
            reasons.append("float32 needs an FPU")
        elif art.notes.get("float_math") and not target.fpu:
            reasons.append(f"{art.variant} has float tensors (I/O or math): needs an FPU")
        if target.ops is not None:
            missing = sorted(set(art.ops) - target.ops - (NPU_OPS if target.accelerator != "none" else frozenset()))
            if missing:
                reasons.append(f"ops not on device: {', '.join(missing)}")
        if flash > target.flash_bytes:
            reasons.append(f"needs {format_bytes(flash)} flash, device has {format_bytes(target.flash_bytes)}")
        if ram > target.ram_bytes:
            reasons.append(f"needs {format_bytes(ram)} RAM, device has {format_bytes(target.ram_bytes)}")
        if float_acc is not None and art.accuracy is not None and art.variant != "float32":
            loss = (float_acc - art.accuracy) * 100
            if loss > opts.accuracy_margin:
                reasons.append(f"loses {loss:.1f} points vs float32 (margin {opts.accuracy_margin:g})")
    return VariantFit(
        variant=art.variant,
        backend=art.backend,
        size=art.size,
        compressed_size=art.compressed_size,
        arena_bytes=arena,
        ram_bytes=ram,
        flash_bytes=flash,
        accuracy=art.accuracy,
        latency_us=latency,
        fits=not reasons,
        reason="; ".join(reasons) if reasons else "fits",
        artifact=art,
    )


def _notes(artifacts: Sequence[Artifact], opts: PlanOptions) -> list[str]:
    notes: list[str] = []
    for art in artifacts:
        if "source" in art.notes:
            notes.append(f"{art.variant}: {art.notes['source']}")
        vela = art.notes.get("vela")
        if isinstance(vela, dict):
            clock = opts.clock_mhz or vela["core_clock_hz"] / 1e6
            cpu = art.notes.get("cpu_ops") or []
            notes.append(
                f"{art.variant}: Vela {vela['accelerator']} ({vela['system_config']}) estimates SRAM "
                f"{vela['sram_bytes']:,} B, flash {vela['flash_bytes']:,} B, {vela['cycles']:,} cycles "
                f"(latency at {clock:g} MHz), {vela['npu_op_count']} ops on the NPU, "
                f"{'CPU ops: ' + ', '.join(cpu) if cpu else 'none left on the CPU'}"
            )
    if any(a.variant.startswith("int8-pruned") for a in artifacts):
        notes.append("pruning zeroes weights but stores them: it shrinks only the compressed (delivery) size")
    return notes


def select(source: ModelSource, target: Target, artifacts: Sequence[Artifact], opts: PlanOptions) -> FitReport:
    """Verdict per variant and the choice (pure: no compiling)."""
    float_art = next((a for a in artifacts if a.variant == "float32" and "error" not in a.notes), None)
    float_acc = float_art.accuracy if float_art else None
    fits = [_verdict(a, source.name, target, opts, float_acc) for a in artifacts]
    ok = [f for f in fits if f.fits]
    npu = target.accelerator != "none"

    def rank(f: VariantFit) -> tuple[int, int, float, int]:
        acc = round(f.accuracy, 4) if f.accuracy is not None else -1.0
        return (0 if (npu and f.backend == "vela") else 1, f.flash_bytes, -acc, f.compressed_size)

    notes = _notes(artifacts, opts)
    if ok:
        best = min(ok, key=rank)
        acc = f", accuracy {best.accuracy:.4f}" if best.accuracy is not None else ", no held-out data"
        rule = (
            f"rule: within {opts.accuracy_margin:g} points of float32 the smallest delivery wins, "
            "then the most accurate" + ("; NPU builds first" if npu else "")
        )
        summary = (
            f"chose {best.variant}: {len(ok)} of {len(fits)} variants fit; "
            f"{format_bytes(best.flash_bytes - opts.flash_margin_bytes)} to deliver{acc} ({rule})"
        )
        chosen: str | None = best.variant
    else:
        chosen = None
        buildable = [f for f in fits if f.artifact is not None and "error" not in f.artifact.notes]
        if target.accelerator == "none" or not target.fpu:
            buildable = [f for f in buildable if f.variant != "float32"] or buildable
        if buildable:
            small = min(buildable, key=lambda f: (f.ram_bytes, f.flash_bytes))
            summary = f"nothing fits; smallest ({small.variant}): {small.reason}"
        else:
            summary = "nothing fits: no variant could be built"
    return FitReport(
        model=source.name,
        model_hash=source.content_hash(),
        target=target,
        variants=fits,
        chosen=chosen,
        summary=summary,
        notes=notes,
    )


def plan(
    model: ModelSource | str | Path,
    target: Target,
    *,
    cache: CompileCache,
    runner: CompileRunner | None = None,
    options: PlanOptions | None = None,
    zoo_dir: Path | None = None,
) -> FitReport:
    """Compile (or fetch from cache) every applicable variant and select; blocks on the worker pool."""
    from compilers.worker import make_executor

    opts = options or PlanOptions()
    source = with_margin(resolve_source(model, zoo_dir or cache.root / "zoo"), opts)
    own = runner is None
    run = runner or CompileRunner(cache, lambda: make_executor(1))
    try:
        artifacts = run.artifacts(source, target)
    finally:
        if own:
            run.shutdown()
    if not artifacts:
        raise CompileError(f"no backend applies to {source.name}")
    return select(source, target, artifacts, opts)


class CompileService:
    """Async front: compiles in a spawn process pool, disk cache, single-flight per (model, compile class)."""

    def __init__(
        self,
        cache_dir: Path | str,
        *,
        workers: int = 2,
        options: PlanOptions | None = None,
        zoo_epochs: int | None = None,
    ) -> None:
        from compilers.worker import make_executor

        self.cache = CompileCache(cache_dir)
        self.options = options or PlanOptions()
        self.zoo_epochs = zoo_epochs
        self.runner = CompileRunner(self.cache, lambda: make_executor(workers))
        self._inflight: dict[tuple[str, str], asyncio.Future[FitReport]] = {}
        self._reports: dict[tuple[str, str], FitReport] = {}  # recent plans, bounded (insertion order = age)
        self.max_reports = 1024
        self.plans = 0  # plans computed (not served from memory nor joined to an in-flight one)

    async def source(self, model: ModelSource | str | Path) -> ModelSource:
        zoo_pool = self.runner.executor() if isinstance(model, str) else None  # train where TF already lives
        src = await asyncio.to_thread(resolve_source, model, self.cache.root / "zoo", self.zoo_epochs, zoo_pool)
        src = with_margin(src, self.options)
        await asyncio.to_thread(src.content_hash)
        return src

    async def plan(self, model: ModelSource | str | Path, target: Target) -> FitReport:
        src = await self.source(model)
        key = (src.content_hash(), target.key())
        if key in self._reports:
            return self._reports[key]
        fut = self._inflight.get(key)
        if fut is None:
            self.plans += 1
            fut = asyncio.ensure_future(asyncio.to_thread(self._plan_sync, src, target))
            self._inflight[key] = fut
            fut.add_done_callback(lambda f: self._done(key, f))
        return await asyncio.shield(fut)

    def _done(self, key: tuple[str, str], fut: asyncio.Future[FitReport]) -> None:
        self._inflight.pop(key, None)
        if not fut.cancelled() and fut.exception() is None:
            self._reports[key] = fut.result()
            while len(self._reports) > self.max_reports:
                self._reports.pop(next(iter(self._reports)))

    def _plan_sync(self, src: ModelSource, target: Target) -> FitReport:
        return select(src, target, self.runner.artifacts(src, target), self.options)

    async def plan_fleet(self, model: ModelSource | str | Path, targets: Iterable[Target]) -> list[FitReport]:
        """One plan per compile class; returns a report per input target (same order)."""
        src = await self.source(model)
        targets = list(targets)
        classes = {t.key(): t for t in targets}
        reports = await asyncio.gather(*(self.plan(src, t) for t in classes.values()))
        by_key = dict(zip(classes, reports, strict=True))
        return [by_key[t.key()] for t in targets]

    async def close(self) -> None:
        await asyncio.to_thread(self.runner.shutdown)
