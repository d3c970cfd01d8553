"""Content-addressed on-disk compile cache: one directory per (model hash, backend+version, target key).

Entries are written to a temp dir and renamed into place, so readers never see half an entry and two
processes racing on the same key both end with one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from compilers.artifact import Artifact


def cache_key(model_hash: str, backend: str, backend_version: str, target_key: str) -> str:
    blob = f"{model_hash}|{backend}|{backend_version}|{target_key}"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class CompileCache:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> list[Artifact] | None:
        path = self._path(key)
        index = path / "index.json"
        if not index.exists():
            return None
        try:
            entries = json.loads(index.read_text())
            return [Artifact.from_dict(e, (path / e["file"]).read_bytes() if e["file"] else b"") for e in entries]
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is a miss; the next put replaces it

    def put(self, key: str, artifacts: list[Artifact]) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        entries = []
        for i, art in enumerate(artifacts):
            name = f"{i}-{art.variant}.tflite" if art.data else ""
            if name:
                (tmp / name).write_bytes(art.data)
            entries.append({**art.to_dict(with_data=False), "file": name})
        (tmp / "index.json").write_text(json.dumps(entries, indent=1))
        try:
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another writer won; its entry is equivalent
