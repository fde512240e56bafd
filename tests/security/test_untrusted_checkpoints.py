"""Checkpoints from someone else: no code runs, refusals in the tool's own words, new runs hold no pickle.

A run writes model.safetensors + model.json; `predict` reads the run folder, either file, or a
model.pt of earlier versions, and reproduces the run's prediction.npy exactly. A file that would
run code (as .pt, .pkl, or a run folder's model.pt) is refused in one line naming what it calls,
and the code does not run: its payload would create a marker file.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hsi.cli.main import main
from hsi.training.checkpoint import (
    MODEL_JSON,
    MODEL_TENSORS,
    load_run_model,
    pickle_callables,
    save_checkpoint,
)

pytestmark = pytest.mark.usefixtures("figures_not_drawn")


@pytest.fixture(scope="module")
def runs(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory, figures_not_drawn: None) -> dict[str, Path]:
    """One tiny run per model kind on the synthetic scene: a CNN, an SVM and a random forest."""
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    for model in ("hybridsn", "svm", "random_forest"):
        assert main(["train", *synthetic_scene.args(), "--model", model, "--epochs", "1", "--patch-size", "5",
                     "--pca-components", "15", "--train-ratio", "0.2", "--out", str(out / model), "--quiet",
                     "--seed", "0"]) == 0
        (folders[model],) = (out / model).iterdir()
    return folders


def _predict(checkpoint: Path, synthetic_scene: Any, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["predict", "--checkpoint", str(checkpoint), "--cube", str(synthetic_scene.cube), "--out", str(out),
                 "--device", "cpu"])
    return code, capsys.readouterr().err


def _predicted(out: Path) -> np.ndarray:
    (folder,) = out.iterdir()
    return np.load(folder / "prediction.npy")


def test_a_run_writes_safetensors_and_json_and_no_pickle(runs: dict[str, Path]) -> None:
    for model, run in runs.items():
        assert (run / MODEL_TENSORS).is_file() and (run / MODEL_JSON).is_file() and not (run / "model.pt").exists()
        for path in run.iterdir():
            head = path.read_bytes()[:4]
            assert not head.startswith((b"\x80", b"PK\x03\x04")), f"{model}: {path.name} is a pickle or a torch zip"
        meta = json.loads((run / MODEL_JSON).read_text())
        assert meta["model"]["name"] == model and meta["scene"]["n_bands"] == 24
        assert meta["classes"]["ids"] == [2, 3, 5, 9] and meta["pca"]["n_components"] == 15
        assert len(meta["tensors"]["sha256"]) == 64 and meta["config"]["model"] == model


@pytest.mark.parametrize("model", ["hybridsn", "svm", "random_forest"])
def test_predict_reproduces_the_run_from_its_folder(runs: dict[str, Path], model: str, synthetic_scene: Any,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _predict(runs[model], synthetic_scene, tmp_path / "out", capsys)
    assert code == 0, err
    assert np.array_equal(_predicted(tmp_path / "out"), np.load(runs[model] / "prediction.npy"))


@pytest.mark.parametrize("name", [MODEL_JSON, MODEL_TENSORS])
def test_predict_accepts_either_file_of_the_model(runs: dict[str, Path], name: str, synthetic_scene: Any,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _predict(runs["hybridsn"] / name, synthetic_scene, tmp_path / "out", capsys)
    assert code == 0, err
    assert np.array_equal(_predicted(tmp_path / "out"), np.load(runs["hybridsn"] / "prediction.npy"))


@pytest.mark.parametrize("model", ["hybridsn", "random_forest"])
def test_a_legacy_model_pt_still_predicts_the_same_map(runs: dict[str, Path], model: str, synthetic_scene: Any,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = load_run_model(runs[model])  # the run_checkpoint(...) content, as before this version
    legacy = tmp_path / "old_run"
    legacy.mkdir()
    save_checkpoint(legacy / "model.pt", content.to_payload())
    for checkpoint, out in ((legacy / "model.pt", tmp_path / "a"), (legacy, tmp_path / "b")):
        code, err = _predict(checkpoint, synthetic_scene, out, capsys)
        assert code == 0, err
        assert np.array_equal(_predicted(out), np.load(runs[model] / "prediction.npy"))


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """(checkpoint, marker) for code as a torch .pt, a plain .pkl and a run folder's model.pt."""
    files = {}
    for kind in ("pt", "pkl", "run folder"):
        marker = tmp_path / f"PWNED-{kind.replace(' ', '_')}"
        payload = {"format": "hsi-classify-checkpoint", "format_version": 2, "weights": _Payload(marker)}
        if kind == "pkl":
            path = tmp_path / "model.pkl"
            path.write_bytes(pickle.dumps(payload))
        else:
            folder = tmp_path / ("run" if kind == "run folder" else "loose")
            folder.mkdir()
            torch.save(payload, folder / "model.pt")
            path = folder if kind == "run folder" else folder / "model.pt"
        files[kind] = (path, marker)
    return files


def test_pickle_callables_names_what_a_pickle_would_call_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle_callables(pickle.dumps({"a": [1, _Payload(marker)]}, protocol=protocol)) == ["posix.system"]
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pt", "pkl", "run folder"])
def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_does_not_run(
    kind: str, synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint, marker = _evil_files(tmp_path)[kind]
    out = tmp_path / "out"
    code, err = _predict(checkpoint, synthetic_scene, out, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("hsi-classify: error: checkpoint ")
    assert "contains executable code (a pickle that calls os.system); hsi-classify will not load it" in err
    assert not marker.exists() and not out.exists()
    for library_words in ("weights_only", "Weights only", "Traceback", "Warning", "torch", "pickle.Unpickler"):
        assert library_words not in err


@pytest.mark.parametrize(("content", "words"), [
    ("empty", "is empty (0 bytes)"),
    ("text", "is not a checkpoint (plain text)"),
    ("plain pickle", "was written by another tool (a Python pickle, not a torch checkpoint)"),
    ("torch foreign", "was written by another tool (no 'hsi-classify-checkpoint' marker)"),
    ("torch newer", "was written by a newer version"),
    ("json newer", "was written by a newer version"),
    ("torch truncated", "is truncated"),
    ("json truncated", "is not valid JSON: it is truncated"),
])
def test_each_kind_of_bad_checkpoint_gets_its_own_words(content: str, words: str, synthetic_scene: Any,
                                                        runs: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ("model.json" if content in ("json newer", "json truncated") else "model.pt")
    if content == "torch foreign":
        torch.save({"weights": torch.ones(2)}, path)
    elif content == "torch newer":
        torch.save({"format": "hsi-classify-checkpoint", "format_version": 99, "package_version": "9.0"}, path)
    elif content == "torch truncated":
        save_checkpoint(path, {"w": torch.ones(100)})
        path.write_bytes(path.read_bytes()[:300])
    elif content == "json newer":
        meta = json.loads((runs["hybridsn"] / MODEL_JSON).read_text())
        path.write_text(json.dumps({**meta, "format_version": 2}))
    elif content == "json truncated":
        path.write_bytes((runs["hybridsn"] / MODEL_JSON).read_bytes()[:500])
    else:
        path.write_bytes({"empty": b"", "text": b"a checkpoint? no, some notes\nline two\n",
                          "plain pickle": pickle.dumps({"weights": [1.0, 2.0]})}[content])
    with _no_library_warnings():
        code, err = _predict(path, synthetic_scene, tmp_path / "out", capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("hsi-classify: error: "), err
    assert words in err and "Traceback" not in err and "weights_only" not in err
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def _no_library_warnings() -> Iterator[None]:
    """Fails when a library warning escapes hsi-classify's readers."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [f"{w.filename}: {w.message}" for w in caught if "/hsi/" not in w.filename]


def test_an_edited_model_json_or_tensors_file_is_refused(runs: dict[str, Path], synthetic_scene: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name, edit in ((MODEL_JSON, lambda b: b.replace(b'"patch_size": 5', b'"patch_size": 7')),
                       (MODEL_TENSORS, lambda b: b[:-10] + bytes(10))):
        folder = tmp_path / name
        folder.mkdir()
        for part in (MODEL_JSON, MODEL_TENSORS):
            data = (runs["hybridsn"] / part).read_bytes()
            (folder / part).write_bytes(edit(data) if part == name else data)
        code, err = _predict(folder, synthetic_scene, tmp_path / "out", capsys)
        assert code == 2 and "fails its integrity check" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("smooth", [4, "5", True, 99])
def test_a_smoothing_window_predict_cannot_use_is_refused(runs: dict[str, Path], smooth: object) -> None:
    from hsi._core.errors import CheckpointError
    from hsi.training.checkpoint import check_run_model, load_run_model

    data = load_run_model(runs["hybridsn"]).to_payload()
    check_run_model(data, "model.json")  # smooth 0: the map as classified
    data["config"]["smooth"] = smooth
    with pytest.raises(CheckpointError, match=r"'config\.smooth' is .*not 0 or an odd window side"):
        check_run_model(data, "model.json")


def test_no_code_path_unpickles_without_weights_only() -> None:
    """Every torch.load in the package passes weights_only=True; no pickle.load(s); no np.load allowing pickles."""
    import ast

    import hsi

    found = []
    for path in Path(hsi.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            where = f"{path.name}:{node.lineno}"
            if (owner, node.func.attr) == ("torch", "load"):
                flag = keywords.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    found.append(f"{where} torch.load without weights_only=True")
            elif owner in ("pickle", "cPickle", "dill", "joblib") and node.func.attr in ("load", "loads"):
                found.append(f"{where} {owner}.{node.func.attr}")
            elif (owner, node.func.attr) == ("np", "load") and "allow_pickle" in keywords:  # default: False
                flag = keywords["allow_pickle"]
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{where} np.load with allow_pickle")
    assert not found


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t.to(torch.float16), "do not fit model 'hybridsn'"),  # another dtype than the model's
    (lambda t: t.to(torch.int32), "do not fit model 'hybridsn'"),
    (lambda t: t.index_fill(0, torch.tensor([0]), float("nan")), "are not finite"),
    (lambda t: t.index_fill(0, torch.tensor([0]), float("inf")), "are not finite"),
])
def test_weights_of_another_dtype_or_not_finite_are_refused(runs: dict[str, Path], edit: Any, words: str) -> None:
    from hsi._core.errors import CheckpointError
    from hsi.training.checkpoint import load_run_model
    from hsi.training.factory import classifier_from_state

    state = load_run_model(runs["hybridsn"]).classifier_state
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name] = edit(state["state_dict"][name])
    with pytest.raises(CheckpointError, match=words):
        classifier_from_state(state)
    state = load_run_model(runs["hybridsn"]).classifier_state  # the same in an ensemble's other network
    state["members"] = [{k: edit(v) if k == name else v for k, v in state["state_dict"].items()}]
    with pytest.raises(CheckpointError, match=words):
        classifier_from_state(state)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("ids", [70000], "distinct label ids from 1 to 65535"),  # beyond the uint16 maps of tiled predict
    ("ids", [-1], "distinct label ids from 1 to 65535"),
    ("ids", [2**70], "distinct label ids from 1 to 65535"),
    ("ids", "duplicate", "distinct label ids from 1 to 65535"),
    ("names", ["x" * 1_000_000], "a name longer than 200 characters"),
])
def test_class_ids_and_names_a_map_cannot_hold_are_refused(runs: dict[str, Path], key: str, value: object,
                                                           words: str) -> None:
    from hsi._core.errors import CheckpointError
    from hsi.training.checkpoint import check_run_model, load_run_model

    data = load_run_model(runs["hybridsn"]).to_payload()
    old = data["classes"][key]
    data["classes"][key] = [old[1], *old[1:]] if value == "duplicate" else [*value, *old[1:]]  # type: ignore[misc]
    with pytest.raises(CheckpointError, match=words):
        check_run_model(data, "model.json")
