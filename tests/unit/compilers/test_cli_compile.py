"""``tinymlaas compile`` end to end in a subprocess (real worker pool, real MLPerf models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_keras import tiny_keras

from .conftest import MLPERF

KWS = MLPERF / "kws_ref_model.tflite"
ROW_KEYS = {"variant", "backend", "size", "compressed_size", "arena_bytes", "ram_bytes", "accuracy", "latency_us"}
ROW_KEYS |= {"fits", "reason"}


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from lwm2m_server.cli import main; main()", "compile", *args]
    cmd += ["--cache-dir", str(tmp_path / "cache")]
    env_cfg = tmp_path / "cfg.toml"
    env_cfg.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    return subprocess.run([*cmd, "--config", str(env_cfg)], capture_output=True, text=True, timeout=180, check=False)


def test_json_shape_with_vela(tmp_path: Path) -> None:
    proc = run([str(KWS), "--ram", "512KiB", "--flash", "2MiB", "--accelerator", "ethos-u55-128", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert set(doc) == {"target", "chosen", "variants"}
    assert doc["target"]["ram_bytes"] == 524_288 and doc["target"]["accelerator"] == "ethos-u55-128"
    assert [v["variant"] for v in doc["variants"]] == ["int8", "int8-vela"]
    for row in doc["variants"]:
        assert set(row) == ROW_KEYS
        assert row["fits"] is True and row["ram_bytes"] > row["arena_bytes"] > 0
    assert doc["chosen"] == "int8-vela"
    assert doc["variants"][1]["latency_us"] > 0 and doc["variants"][0]["latency_us"] is None


def test_nothing_fits_exits_1_with_need(tmp_path: Path) -> None:
    proc = run([str(KWS), "--ram", "8KiB", "--flash", "1MiB", "--no-fpu"], tmp_path)
    assert proc.returncode == 1
    assert "nothing fits" in proc.stdout and "device has 8,192 B" in proc.stdout


def test_out_writes_the_chosen_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run([str(KWS), "--ram", "256KiB", "--flash", "1MiB", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "kws_ref_model-int8.tflite").read_bytes() == KWS.read_bytes()
    from compilers import keys, package

    key = keys.load_or_create_signing_key(tmp_path / "data")  # the CLI created it in the configured data dir
    manifest, payload = package.verify((out / "kws_ref_model-int8.pkg").read_bytes(), key.public_key())[:2]
    assert payload == KWS.read_bytes() and manifest.variant == "int8" and manifest.input.dtype == "int8"
    assert manifest.target["ram_bytes"] == 262_144
    assert "int8" in proc.stdout and "fits" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ram", "12 parsecs", "--flash", "1MiB"], "--ram: unknown unit 'parsecs'"),
        (["--ram", "256KiB", "--flash", "lots"], "--flash: 'lots' is not a size"),
        (["--ram", "256KiB", "--flash", "1MiB", "--accelerator", "tpu-9000"], "unknown accelerator"),
        (["--ram", "256KiB", "--flash", "1MiB", "--task", "classification"], "--task needs --data"),
        (["--ram", "256KiB", "--flash", "1MiB", "--data", "/nonexistent.npz"], "cannot read data file"),
        (["--ram", "256KiB", "--flash", "1MiB", "--cpu", "z80"], "cannot tell the pointer size"),
        (["--ram", "1MiB", "--flash", "1MiB", "--cpu", "cortex-m4", "--pointer-size", "8"], "--cpu cortex-m4 has"),
        (["--ram", "256KiB", "--flash", "1MiB", "--pointer-size", "3"], "pointer size must be 4"),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = run([str(KWS), *args], tmp_path)
    assert proc.returncode == 2 and f"error: {message}" in proc.stderr and "Traceback" not in proc.stderr


def test_pointer_size_from_the_cpu(tmp_path: Path) -> None:
    """--cpu cortex-m4 (32-bit): the report's arena is the 4-byte-pointer figure; the host figure is the default."""
    from compilers.arena import plan_arena

    host = run([str(KWS), "--ram", "512KiB", "--flash", "2MiB", "--json"], tmp_path)
    mcu = run([str(KWS), "--ram", "512KiB", "--flash", "2MiB", "--cpu", "cortex-m4", "--json"], tmp_path)
    explicit = run([str(KWS), "--ram", "512KiB", "--flash", "2MiB", "--pointer-size", "4", "--json"], tmp_path)
    assert host.returncode == mcu.returncode == explicit.returncode == 0, mcu.stderr[-2000:]
    h, m, e = (json.loads(p.stdout) for p in (host, mcu, explicit))
    assert "pointer_size" not in h["target"] and m["target"]["pointer_size"] == 4 and m == e
    data = KWS.read_bytes()
    assert h["variants"][0]["arena_bytes"] == plan_arena(data).total_bytes
    assert m["variants"][0]["arena_bytes"] == plan_arena(data, 4).total_bytes < plan_arena(data).total_bytes


def test_bad_models_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00" * 64)
    not_saved_model = tmp_path / "empty_dir"
    not_saved_model.mkdir()
    cases = [("no-such-model", "unknown model"), (str(garbage), "not a TFLite"), (str(not_saved_model), "SavedModel")]
    for model, message in cases:
        proc = run([model, "--ram", "256KiB", "--flash", "1MiB"], tmp_path)
        assert proc.returncode == 2, (model, proc.stderr[-500:])
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_without_out_it_says_where_the_cache_and_the_package_went(tmp_path: Path) -> None:
    proc = run([str(KWS), "--ram", "256KB", "--flash", "1MiB"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "note: --ram 256KB = 262,144 B (KB read as KiB; write 256000 for 256,000 B)"
    cache = (tmp_path / "cache").resolve()
    assert lines[1].startswith(f"compile cache: {cache} (1 compiled, 0 from the cache; shared with")
    assert lines[2].startswith(f"package: {cache / 'packages'}/kws_ref_model-int8-") and "--out DIR" in lines[2]
    written = Path(lines[2].split()[1])
    assert written.suffix == ".pkg" and written.with_suffix(".tflite").read_bytes() == KWS.read_bytes()
    again = run([str(KWS), "--ram", "256KiB", "--flash", "1MiB"], tmp_path)
    assert "(0 compiled, 1 from the cache;" in again.stderr  # same cache, nothing compiled twice
    assert not again.stderr.startswith("note:")  # KiB is unambiguous: no echo


TF_CHATTER = ("absl", "cudart", "cuInit", "oneDNN", "fully_quantize", "I0000", "W0000", "E0000", "tensorflow")


@pytest.mark.slow
def test_tensorflow_chatter_never_reaches_stderr(tmp_path: Path) -> None:
    """A real TF conversion in the worker pool (a tiny Keras model, built in a worker too): stderr carries only the
    CLI's own lines."""
    model = tiny_keras(tmp_path / "tiny.keras")
    proc = run([str(model), "--ram", "64KiB", "--flash", "256KiB"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "float32" in proc.stdout  # TensorFlow really converted it
    for line in proc.stderr.splitlines():
        assert line.startswith(("compile cache: ", "package: ")), proc.stderr
        assert not any(word in line for word in TF_CHATTER if word != "tensorflow"), line



async def test_cli_and_a_local_server_share_one_compile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --cache-dir anywhere: ``tinymlaas compile`` and the server's CompileService use the same per-user cache,
    so what the CLI compiled is a cache hit for the server."""
    from compilers.target import Target
    from lwm2m_server.config import load_settings
    from lwm2m_server.ota.builds import make_compile_service

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cmd = [sys.executable, "-c", "from lwm2m_server.cli import main; main()", "compile", str(KWS), "--ram", "256KiB",
           "--flash", "1MiB"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shared = tmp_path / "xdg" / "tinymlaas" / "compile-cache"
    assert f"compile cache: {shared.resolve()} (1 compiled" in proc.stderr
    service = make_compile_service(load_settings(environ={}, overrides={"server": {"data_dir": tmp_path / "d"}}))
    try:
        report = await service.plan(KWS, Target(262_144, 1_048_576))
    finally:
        await service.close()
    assert report.chosen == "int8"
    assert (service.runner.compiles, service.runner.cache_hits) == (0, 1)
