"""Backend registry: built-in backends register with :func:`register`; third-party ones via entry points.

A new backend is one module with ``@register`` on its class (or an entry point in the
``tinymlaas.compilers`` group); nothing else needs editing.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import TypeVar

from compilers.base import Compiler

ENTRY_POINT_GROUP = "tinymlaas.compilers"
_BUILTIN_MODULES = ("compilers.backends.tflite", "compilers.backends.vela")
_REGISTRY: dict[str, Compiler] = {}
_loaded = False
_load_lock = threading.Lock()  # compiles plan from several threads: none may see a half-loaded registry

C = TypeVar("C")


def register(cls: type[C]) -> type[C]:
    """Class decorator: instantiate and register a backend under its ``name``."""
    instance = cls()
    if not isinstance(instance, Compiler):
        raise TypeError(f"{cls.__name__} does not implement the Compiler protocol")
    _REGISTRY[instance.name] = instance
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            obj = ep.load()
            if isinstance(obj, type) and obj().name not in _REGISTRY:
                register(obj)
        _loaded = True


def backends() -> list[Compiler]:
    """Every registered backend, in run order."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda b: (b.order, b.name))


def get_backend(name: str) -> Compiler:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown compiler backend {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
