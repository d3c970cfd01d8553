"""Model catalog: the zoo models plus models operators upload (``.keras``, zipped SavedModel or ``.tflite``).

An upload is stored under ``<data_dir>/models/<name>/<version>/`` where ``version`` is a content hash of the
model bytes and its optional ``.npz`` data, so the same upload twice is one version and a changed model is a
new one; ``<name>/latest`` names the newest. :meth:`ModelCatalog.resolve` turns a name into what
``CompileService.plan`` accepts: the zoo name itself, or a :class:`compilers.base.ModelSource` carrying the
representative/validation arrays. Validation here is structural (no TensorFlow in the server process); a
model that passes it but cannot be converted shows up as a failed variant in the fit report.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from lwm2m_server.logging import get_logger

log = get_logger(__name__)

MAX_MODEL_BYTES = 64 * 1024 * 1024
MAX_DATA_BYTES = 64 * 1024 * 1024
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DATA_KEYS = {  # accepted .npz keys -> ModelSource field
    "rep_x": "representative", "representative": "representative", "val_x": "val_x", "val_y": "val_y",
    "train_x": "train_x", "train_y": "train_y",
}  # fmt: skip
TASKS = ("classification", "autoencoder")


class ModelError(ValueError):
    """An upload the catalog refuses (bad name, corrupt or unsupported file, bad data): HTTP 400."""


class UnknownModel(KeyError):
    """No zoo model and no upload of that name: HTTP 404."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def zoo_names() -> tuple[str, ...]:
    from compilers.zoo import ZOO_NAMES

    return tuple(ZOO_NAMES)


def _zoo_entry(name: str) -> dict[str, Any]:
    return {"name": name, "source": "zoo", "kind": "keras", "version": None}


class ModelCatalog:
    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / "models"
        self._sources: dict[tuple[str, str], Any] = {}  # (name, version) -> ModelSource, hashed once

    # --- queries -------------------------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """Zoo models first, then uploads (their latest version) by name."""
        out = [_zoo_entry(n) for n in zoo_names()]
        if self.root.is_dir():
            for d in sorted(self.root.iterdir()):
                meta = self._meta(d.name)
                if meta is not None:
                    out.append(meta)
        return out

    def get(self, name: str) -> dict[str, Any]:
        if name in zoo_names():
            return _zoo_entry(name)
        meta = self._meta(name)
        if meta is None:
            raise UnknownModel(f"unknown model {name!r}: not a zoo model ({', '.join(zoo_names())}) nor uploaded")
        return meta

    def _meta(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        if not NAME_RE.match(name):
            return None
        base = self.root / name
        try:
            version = version or (base / "latest").read_text().strip()
            meta: dict[str, Any] = json.loads((base / version / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        return meta

    def resolve(self, model: str) -> Any:
        """A zoo name stays a name; ``name`` or ``name@version`` of an upload becomes a ``ModelSource``."""
        if model in zoo_names():
            return model
        name, _, version = model.partition("@")
        meta = self._meta(name, version or None)
        if meta is None:
            raise UnknownModel(f"unknown model {model!r}: not a zoo model ({', '.join(zoo_names())}) nor uploaded")
        key = (name, meta["version"])
        if key not in self._sources:
            self._sources[key] = self._source(meta)
        return self._sources[key]

    def _source(self, meta: dict[str, Any]) -> Any:
        import numpy as np

        from compilers.base import ModelSource

        vdir = self.root / meta["name"] / meta["version"]
        arrays: dict[str, Any] = {}
        if (vdir / "data.npz").exists():
            with np.load(vdir / "data.npz", allow_pickle=False) as data:
                arrays = {DATA_KEYS[k]: data[k] for k in data.files if k in DATA_KEYS}
        src = ModelSource(path=vdir / meta["file"], name=meta["name"], task=meta.get("task"), **arrays)
        src.content_hash()
        return src

    # --- uploads -------------------------------------------------------------------------------------------
    def add(self, name: str, filename: str, model: bytes, data: bytes | None = None, task: str | None = None
            ) -> dict[str, Any]:  # fmt: skip
        """Validate and store an upload; returns its catalog entry. Raises :class:`ModelError`."""
        if not NAME_RE.match(name):
            raise ModelError(f"bad model name {name!r}: letters, digits, '.', '_', '-' (max 64), no leading symbol")
        if name in zoo_names():
            raise ModelError(f"{name!r} is a zoo model name; choose another")
        if task is not None and task not in TASKS:
            raise ModelError(f"task must be one of {', '.join(TASKS)}")
        if not model:
            raise ModelError("empty model file")
        if len(model) > MAX_MODEL_BYTES:
            raise ModelError(f"model larger than {MAX_MODEL_BYTES} bytes")
        kind = _kind(filename, model)
        info = _validate(kind, model)
        arrays = _validate_npz(data) if data else {}
        if task is None and "val_y" in arrays:
            task = "classification" if arrays["val_y"].dtype.kind in "iu" else "autoencoder"
        digest = hashlib.sha256(model + b"|" + (data or b"") + f"|{task}".encode()).hexdigest()
        version = digest[:16]
        vdir = self.root / name / version
        if not (vdir / "meta.json").exists():
            self._write(vdir, kind, model, data)
        meta = {
            "name": name, "source": "uploaded", "kind": kind, "version": version, "sha256": digest,
            "file": "model.tflite" if kind == "tflite" else "model.keras" if kind == "keras" else "savedmodel",
            "filename": filename, "size": len(model), "task": task, "data_keys": sorted(arrays),
            "created_at": time.time(), **info,
        }  # fmt: skip
        if (vdir / "meta.json").exists():
            meta["created_at"] = json.loads((vdir / "meta.json").read_text()).get("created_at", meta["created_at"])
        (vdir / "meta.json").write_text(json.dumps(meta, indent=1))
        _atomic_write(self.root / name / "latest", version.encode())
        log.info("models.uploaded", name=name, version=version, kind=kind, size=len(model))
        return meta

    def _write(self, vdir: Path, kind: str, model: bytes, data: bytes | None) -> None:
        vdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=vdir.parent))
        try:
            if kind == "savedmodel":
                _extract_savedmodel(model, tmp / "savedmodel")
            else:
                (tmp / f"model.{kind}").write_bytes(model)
            if data:
                (tmp / "data.npz").write_bytes(data)
            tmp.replace(vdir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    async def add_async(self, name: str, filename: str, model: bytes, data: bytes | None = None,
                        task: str | None = None) -> dict[str, Any]:  # fmt: skip
        return await asyncio.to_thread(self.add, name, filename, model, data, task)

    async def resolve_async(self, model: str) -> Any:
        return await asyncio.to_thread(self.resolve, model)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _kind(filename: str, model: bytes) -> str:
    suffix = PurePosixPath(filename or "").suffix.lower()
    if suffix == ".tflite" or (not suffix and model[4:8] == b"TFL3"):
        return "tflite"
    if suffix == ".keras":
        return "keras"
    if suffix == ".zip":
        return "savedmodel"
    raise ModelError(f"unsupported model file {filename!r}: expected .keras, .tflite or a zipped SavedModel (.zip)")


def _validate(kind: str, model: bytes) -> dict[str, Any]:
    """Structural checks without TensorFlow; returns facts for the catalog entry."""
    if kind == "tflite":
        if model[4:8] != b"TFL3":
            raise ModelError("not a TFLite flatbuffer (no TFL3 identifier)")
        from compilers.tflite_info import inspect_tflite

        try:
            info = inspect_tflite(model)
            numeric = info.kind
        except Exception as exc:  # the flatbuffer parser raises anything on garbage
            raise ModelError(f"corrupt or unsupported .tflite: {type(exc).__name__}: {exc}") from None
        return {"ops": info.ops, "numeric": numeric, "input_shape": list(info.input_spec.shape),
                "output_shape": list(info.output_spec.shape)}  # fmt: skip
    names = _zip_names(model)
    if kind == "keras":
        if "config.json" not in names:
            raise ModelError("not a Keras v3 .keras archive (no config.json)")
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            try:
                json.loads(zf.read("config.json"))
            except (ValueError, zipfile.BadZipFile, OSError) as exc:
                raise ModelError(f"corrupt .keras archive: {exc}") from None
        return {}
    if _savedmodel_prefix(names) is None:
        raise ModelError("the zip holds no SavedModel (no saved_model.pb)")
    return {}


def _zip_names(model: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ModelError(f"corrupt archive member {bad}")
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ModelError(f"not a valid zip archive: {exc}") from None
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise ModelError(f"archive expands beyond {MAX_UNZIPPED_BYTES} bytes")
    return [i.filename for i in infos]


def _savedmodel_prefix(names: list[str]) -> str | None:
    """The folder holding saved_model.pb inside the zip ('' for the root), shallowest first."""
    safe = [n for n in names if not PurePosixPath(n).is_absolute() and ".." not in PurePosixPath(n).parts]
    hits = sorted((n for n in safe if PurePosixPath(n).name == "saved_model.pb"), key=lambda n: n.count("/"))
    return str(PurePosixPath(hits[0]).parent).lstrip(".") if hits else None


def _extract_savedmodel(model: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(model)) as zf:
        prefix = _savedmodel_prefix(zf.namelist()) or ""
        for info in zf.infolist():
            rel = PurePosixPath(info.filename)
            if info.is_dir() or rel.is_absolute() or ".." in rel.parts:
                continue
            if prefix:
                if not str(rel).startswith(prefix + "/"):
                    continue
                rel = rel.relative_to(prefix)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))


def _validate_npz(data: bytes) -> dict[str, Any]:
    import numpy as np

    if len(data) > MAX_DATA_BYTES:
        raise ModelError(f"data file larger than {MAX_DATA_BYTES} bytes")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {DATA_KEYS[k]: npz[k] for k in npz.files if k in DATA_KEYS}
            unknown = sorted(set(npz.files) - set(DATA_KEYS))
    except Exception as exc:  # numpy raises ValueError, OSError, BadZipFile, ... on garbage
        raise ModelError(f"not a valid .npz: {type(exc).__name__}: {exc}") from None
    if unknown:
        raise ModelError(f"unknown .npz keys {', '.join(unknown)}; use {', '.join(sorted(DATA_KEYS))}")
    for a, b in (("val_x", "val_y"), ("train_x", "train_y")):
        if (a in arrays) != (b in arrays):
            raise ModelError(f"{a} and {b} go together")
        if a in arrays and len(arrays[a]) != len(arrays[b]):
            raise ModelError(f"{a} and {b} have different lengths")
    return arrays
