"""Installable anywhere: the wheel carries objects/ and config/, and the CLI works from any directory.

The wheel is built from a copy of the project files (``pip wheel --no-deps``), installed with
``--no-deps`` into a fresh venv outside the checkout; that venv sees the shared venv's site-packages
through a ``.pth`` line (TensorFlow is not reinstalled). The commands then run from an empty temp
directory with no PYTHONPATH, so nothing can come from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ["pyproject.toml", "README.md", "lwm2m_server", "compilers", "simulator", "objects", "config"]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in PROJECT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dist = base / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                  str(src)], base, env, 300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("tinymlaas-*.whl")
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env, 120)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env, 60)
                   .stdout.strip())  # fmt: skip
    shared = [p for p in (sysconfig.get_paths()["purelib"], *site.getsitepackages()) if Path(p).is_dir()]
    (purelib / "shared-venv.pth").write_text("\n".join(dict.fromkeys(shared)) + "\n")
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                base, env, 300)  # fmt: skip
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = base / "elsewhere"
    work.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env, work


def test_wheel_ships_objects_and_config(installed: tuple[Path, dict[str, str], Path]) -> None:
    venv, env, work = installed
    code = ("import lwm2m_server, lwm2m_server.resources as r; "
            "print(lwm2m_server.__file__); print(sorted(p.name for p in r.OBJECTS_DIR.glob('*.xml'))); "
            "print(sorted(p.name for p in r.CONFIG_DIR.glob('*.toml')))")  # fmt: skip
    proc = _run([str(venv / "bin" / "python"), "-c", code], work, env, 60)
    assert proc.returncode == 0, proc.stderr
    where, objects, configs = proc.stdout.strip().splitlines()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    assert json.loads(objects.replace("'", '"')) == sorted(p.name for p in (ROOT / "objects").glob("*.xml"))
    assert {"tinymlaas.toml", "fleet-demo.toml"} <= set(json.loads(configs.replace("'", '"')))


def test_installed_decode_from_any_directory(installed: tuple[Path, dict[str, str], Path]) -> None:
    venv, env, work = installed
    # TLV of /3/0/0 (Manufacturer, a string resource typed by objects/3.xml): "ACME"
    proc = _run([str(venv / "bin" / "tinymlaas"), "decode", "c40041434d45", "--format", "tlv", "--path", "/3/0/0"],
                work, env, 120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"/3/0/0": "ACME"}
    bad = _run([str(venv / "bin" / "tinymlaas"), "decode", "zz", "--format", "tlv", "--path", "/3/0/0"], work, env, 120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_installed_demo_from_any_directory(installed: tuple[Path, dict[str, str], Path]) -> None:
    venv, env, work = installed
    cache = work.parent / "cache"
    proc = _run([str(venv / "bin" / "tinymlaas"), "demo", "--devices", "5", "--json", "--epochs", "2",
                 "--cache-dir", str(cache), "--timeout", "240"], work, env, 420)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["devices"] == 5 and summary["totals"]["failed"] == 0
    assert summary["totals"]["confirmed"] + summary["totals"]["incompatible"] == 5
    assert summary["totals"]["confirmed"] >= 1


def test_installed_sim_uses_the_bundled_fleet(installed: tuple[Path, dict[str, str], Path]) -> None:
    """``tinymlaas sim`` with no --fleet, from a directory without config/, against a real server."""
    venv, env, work = installed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = str(venv / "bin" / "tinymlaas")
    server = subprocess.Popen([exe, "serve", "--coap-host", "127.0.0.1", "--coap-port", str(port), "--no-http",
                               "--data-dir", str(work.parent / "serve-data")], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(3)  # the server binds within a second or two; the simulator retries registration anyway
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        proc = _run([exe, "sim", "--server", f"coap://127.0.0.1:{port}", "--devices", "2", "--duration", "3"],
                    work, env, 120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "stopped 2 devices" in proc.stdout + proc.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
