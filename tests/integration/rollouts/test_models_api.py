"""``/api/models``: listing, uploads (real .tflite, corrupt files, .npz data) and fit reports per compile class."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from tests.integration.rollouts.conftest import KWS, M4F, M7, TINY, Stack


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


async def test_list_and_upload_tflite(stack: Stack) -> None:
    listed = (await stack.http.get("/api/models")).json()
    assert {m["name"] for m in listed if m["source"] == "zoo"} == {"digits-cnn", "vibration-anomaly"}

    entry = await stack.upload_kws("kws")
    assert entry["kind"] == "tflite" and entry["numeric"] == "int8" and entry["size"] == KWS.stat().st_size
    assert entry["input_shape"] == [1, 49, 10, 1] and "CONV_2D" in entry["ops"]
    stored = stack.app.settings.server.data_dir / "models" / "kws" / entry["version"] / "model.tflite"
    assert stored.read_bytes() == KWS.read_bytes()
    again = await stack.upload_kws("kws")  # same bytes: same content-addressed version
    assert again["version"] == entry["version"]

    # with representative/validation data: a new version, and the data keys are recorded
    data = _npz(rep_x=np.zeros((4, 49, 10, 1), np.float32), val_x=np.zeros((3, 49, 10, 1), np.float32),
                val_y=np.arange(3))  # fmt: skip
    response = await stack.http.post(
        "/api/models", files={"file": ("kws.tflite", KWS.read_bytes()), "data": ("kws.npz", data)}, data={"name": "kws"}
    )
    assert response.status_code == 201, response.text
    with_data = response.json()
    assert with_data["version"] != entry["version"]
    assert with_data["data_keys"] == ["representative", "val_x", "val_y"] and with_data["task"] == "classification"

    listed = (await stack.http.get("/api/models")).json()
    uploaded = [m for m in listed if m["source"] == "uploaded"]
    assert [(m["name"], m["version"]) for m in uploaded] == [("kws", with_data["version"])]
    assert (await stack.http.get("/api/models/kws")).json()["version"] == with_data["version"]
    missing = await stack.http.get("/api/models/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("filename", "content", "npz", "needle"),
    [
        ("bad.tflite", b"\x00\x00\x00\x00TFL3" + b"\xff" * 64, None, "corrupt or unsupported .tflite"),
        ("bad.tflite", b"not a flatbuffer at all", None, "not a TFLite flatbuffer"),
        ("bad.keras", b"PK\x03\x04 truncated zip", None, "not a valid zip"),
        ("model.onnx", b"whatever", None, "unsupported model file"),
        ("empty.tflite", b"", None, "empty model file"),
        ("kws.tflite", KWS.read_bytes(), b"not an npz", "not a valid .npz"),
        ("kws.tflite", KWS.read_bytes(), _npz(val_x=np.zeros((2, 3))), "val_x and val_y go together"),
    ],
)
async def test_bad_uploads_are_400(stack: Stack, filename: str, content: bytes, npz: bytes | None,
                                   needle: str) -> None:  # fmt: skip
    files = {"file": (filename, content)}
    if npz is not None:
        files["data"] = ("data.npz", npz)
    response = await stack.http.post("/api/models", files=files)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_request" and needle in body["message"]
    assert [m for m in (await stack.http.get("/api/models")).json() if m["source"] == "uploaded"] == []


async def test_zipped_savedmodel_without_saved_model_pb_and_bad_names(stack: Stack) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/variables/x", b"1")
    response = await stack.http.post("/api/models", files={"file": ("m.zip", buf.getvalue())})
    assert response.status_code == 400 and "no SavedModel" in response.json()["message"]
    for name in ("digits-cnn", "../etc", "-x"):
        response = await stack.http.post("/api/models", files={"file": ("kws.tflite", KWS.read_bytes())},
                                         data={"name": name})  # fmt: skip
        assert response.status_code == 400, (name, response.text)
    no_file = await stack.http.post("/api/models", data={"name": "x"})
    assert no_file.status_code == 400 and no_file.json()["error"] == "bad_request"


async def test_plan_errors(stack: Stack) -> None:
    await stack.add_device("plan-m4f", M4F)
    cases = [
        ("/api/models/nope/plan", {"filter": ""}, 404),
        ("/api/models/digits-cnn/plan", {}, 400),
        ("/api/models/digits-cnn/plan", {"filter": "__import__('os')"}, 400),
        ("/api/models/digits-cnn/plan", {"ep": "nobody"}, 404),
    ]
    for url, params, status in cases:
        response = await stack.http.post(url, params=params)
        assert response.status_code == status, (url, params, response.text)
        assert set(response.json()) == {"error", "message"}


@pytest.mark.slow
async def test_plan_by_filter_one_report_per_class(stack: Stack) -> None:
    """Two devices of one class, one of another, one too small: three classes, compiled once each (zoo model)."""
    for ep, profile in (("p-m4f-1", M4F), ("p-m4f-2", M4F), ("p-m7", M7), ("p-tiny", TINY)):
        await stack.add_device(ep, profile)
    response = await stack.http.post("/api/models/digits-cnn/plan", params={"filter": "ram_total >= 0"})
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["devices"] == 4
    classes = {tuple(c["endpoints"]): c for c in plan["classes"]}
    assert set(classes) == {("p-m4f-1", "p-m4f-2"), ("p-m7",), ("p-tiny",)}
    assert len({c["class_key"] for c in plan["classes"]}) == 3
    for eps, profile in ((("p-m4f-1", "p-m4f-2"), M4F), (("p-m7",), M7)):
        c = classes[eps]
        assert c["fits"] and c["chosen"] in {v["variant"] for v in c["report"]["variants"] if v["fits"]}
        assert c["target"]["ram_bytes"] == profile.ram_free_ml and c["target"]["flash_bytes"] == profile.flash_free
    tiny = classes[("p-tiny",)]
    assert tiny["fits"] is False and tiny["chosen"] is None and "nothing fits" in tiny["summary"]
    assert all(not v["fits"] for v in tiny["report"]["variants"])
    # by endpoint: only that device's class; nothing was deployed
    one = (await stack.http.post("/api/models/digits-cnn/plan", params={"ep": "p-m7"})).json()
    assert [c["endpoints"] for c in one["classes"]] == [["p-m7"]]
    assert (await stack.http.get("/api/rollouts")).json() == []
    assert all(counter.installs == 0 for counter in stack.fleet.counters.values())


@pytest.mark.slow
async def test_upload_keras_with_data_resolves_to_a_model_source(stack: Stack) -> None:
    """The zoo's own trained .keras and its arrays, uploaded: the catalog hands the compiler the data too."""
    from compilers.zoo import build_model

    zoo = build_model("digits-cnn", stack.app.compiling.service.cache.root / "zoo", epochs=1)  # trained once
    data = _npz(rep_x=zoo.representative[:32], val_x=zoo.val_x[:64], val_y=zoo.val_y[:64])
    response = await stack.http.post("/api/models", files={"file": ("digits.keras", zoo.keras_path.read_bytes()),
                                                           "data": ("digits.npz", data)})  # fmt: skip
    assert response.status_code == 201, response.text
    entry = response.json()
    assert (entry["name"], entry["kind"], entry["task"]) == ("digits", "keras", "classification")
    source = stack.app.catalog.resolve("digits")
    assert source.path.read_bytes() == zoo.keras_path.read_bytes() and source.task == "classification"
    assert np.array_equal(source.val_y, zoo.val_y[:64]) and source.representative.shape[0] == 32
    assert stack.app.catalog.resolve(f"digits@{entry['version']}") is source
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../evil/saved_model.pb", b"x")
    response = await stack.http.post("/api/models", files={"file": ("evil.zip", traversal.getvalue())})
    assert response.status_code == 400 and not (stack.app.settings.server.data_dir / "evil").exists()
