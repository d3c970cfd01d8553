"""Suite-wide collection rules for parallel runs (pytest-xdist, ``-n 2 --dist loadgroup`` in pyproject's addopts).

Every test is scheduled on its own except:

* a module with a module-scoped fixture runs on one worker, in order (its tests share that fixture's state: a
  test may rely on what an earlier one did, e.g. a credential it made);
* a session-scoped fixture is built once per worker process, so the expensive ones (the zoo trained with
  TensorFlow, the tflite-micro example models in pytest's cache dir) get a group: every module with a test that
  uses one runs on the worker that builds it, once (not a second time on the other worker, racing the first on
  the cache dir).

The tests share no fixed port, path or database otherwise (ports are bound to 0, paths are under ``tmp_path``,
PostgreSQL databases are named by a fresh uuid, each Mosquitto runs on its own free port).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

GROUP_OF_FIXTURE = {
    "zoo": "compilers-zoo",  # tests/unit/compilers/conftest.py: training and compiling, once per session
    "zoo_artifacts": "compilers-zoo",
    "runner": "compilers-zoo",
    "compile_root": "compilers-zoo",
    "example_models": "tflm-examples",  # tests/unit/compilers/test_arena_examples.py: pytest's cache dir
}


def _module_of(item: pytest.Function) -> str:
    return item.nodeid.split("::", 1)[0]


def _uses_module_scope(item: pytest.Function) -> bool:
    return any(defs and defs[-1].scope in ("module", "package", "class")
               for defs in item._fixtureinfo.name2fixturedefs.values())  # fmt: skip


def groups_by_module(items: list[pytest.Function]) -> dict[str, str]:
    """module nodeid -> the xdist group its tests run in (modules not listed: each test on its own)."""
    expensive: dict[str, set[str]] = defaultdict(set)
    stateful: set[str] = set()
    for item in items:
        module = _module_of(item)
        expensive[module].update(GROUP_OF_FIXTURE[n] for n in item.fixturenames if n in GROUP_OF_FIXTURE)
        if _uses_module_scope(item):
            stateful.add(module)
    groups: dict[str, str] = {}
    for module in {*stateful, *(m for m, g in expensive.items() if g)}:
        named = sorted(expensive[module])
        assert len(named) <= 1, f"{module} uses the fixtures of two groups: {named}"
        groups[module] = named[0] if named else module
    return groups


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    functions = [item for item in items if isinstance(item, pytest.Function)]
    groups = groups_by_module(functions)
    for item in functions:
        group = groups.get(_module_of(item))
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
