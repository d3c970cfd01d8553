"""How the suite is split over pytest-xdist workers (``-n 2 --dist loadfile`` in pyproject's addopts).

Each test module runs on one worker, in order: a module-scoped fixture is then built once and a test may rely on
what an earlier test of its module did (tests/integration/api/test_credentials_api.py does). Every test under
tests/unit/compilers/ runs on one worker too: their session-scoped fixtures (the zoo trained with TensorFlow,
the tflite-micro example models built into pytest's cache dir) are built once per worker process, so on a
second worker they would cost that CPU again and race the first on the cache dir. That group goes first (on a
worker collection, that is: the same order in every worker), so it does not finish alone at the end.

(xdist's own ``--dist loadgroup`` reads ``xdist_group`` marks by rewriting ``item._nodeid``, which pytest 9.2's
nodes no longer read: the marks are ignored there. A scheduler keyed on the node id works on both.)

The modules share no fixed port, path or database: ports are bound to 0, paths are under ``tmp_path``,
PostgreSQL databases are named by a fresh uuid, each Mosquitto runs on its own free port.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from xdist.scheduler import LoadFileScheduling

GROUPS = {"tests/unit/compilers/": "tests/unit/compilers/"}  # node id prefix -> the one work unit it is


def work_unit(nodeid: str) -> str:
    """The unit of work a test is scheduled in: its group, else its module."""
    for prefix, group in GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    return nodeid.split("::", 1)[0]


class GroupedFileScheduling(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own choice
    return GroupedFileScheduling(config, log)  # type: ignore[arg-type]


def _unique_ids(items: list[pytest.Item]) -> None:
    """schemathesis' items (tests/integration/api/test_schemathesis.py: one per API operation) all get the node
    id of their function under pytest 9.2; xdist schedules by node id and ran only one of them. Each gets its
    name (``test_no_server_errors[GET /healthz]``) in its id, as before pytest 9."""
    from _pytest.nodeid import NodeId

    seen = Counter(item.nodeid for item in items)
    for item in items:
        if seen[item.nodeid] > 1 and item.name != item.nodeid.rsplit("::", 1)[-1]:
            item._id = NodeId.parse(f"{item.nodeid.rsplit('::', 1)[0]}::{item.name}")  # type: ignore[attr-defined]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _unique_ids(items)
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return  # one process: collection order
    grouped = [item for item in items if any(item.nodeid.startswith(prefix) for prefix in GROUPS)]
    rest = [item for item in items if not any(item.nodeid.startswith(prefix) for prefix in GROUPS)]
    items[:] = grouped + rest
