"""The commands are parsing, one call into :mod:`hsi.api` and printing (issue 33).

Each command's API entry point is replaced by a recorder that refuses with a sentinel error, so
the test shows which call the command made, with what, and that nothing else ran; no training.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import hsi
import hsi.api
from hsi._core.errors import ConfigError
from hsi.cli.main import main

CLI = Path(hsi.__file__).resolve().parent / "cli"


def _record(monkeypatch: pytest.MonkeyPatch, entry: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Replaces ``hsi.api.<entry>`` by a recorder of its calls that raises ``reached <entry>``."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def reached(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        raise ConfigError(f"reached {entry}")

    monkeypatch.setattr(hsi.api, entry, reached)
    return calls


def _argv(command: str, scene: list[str], tmp: Path) -> tuple[str, list[str]]:
    out = ["--out", str(tmp / "runs")]
    return {
        "train": ("_train_config", ["train", *scene, "--model", "svm", "--seed", "3", *out]),
        "train --resume": ("_resume", ["train", "--resume", str(tmp / "run"), "--device", "cpu"]),
        "repeat": ("_repeat_config", ["repeat", *scene, "--runs", "2", "--vary", "split", "--seed", "3", *out]),
        "compare": ("_compare_config", ["compare", "--models", "svm,random_forest", *scene, "--seeds", "4,5", *out]),
        "predict": ("_predict_folder", ["predict", "--checkpoint", str(tmp / "run"), *scene[:2], *out]),
    }[command]


@pytest.mark.parametrize("command", ["train", "train --resume", "repeat", "compare", "predict"])
def test_each_command_makes_one_api_call(command: str, synthetic_scene: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    scene = ["--cube", str(synthetic_scene.cube_npy), "--gt", str(synthetic_scene.gt_npy)]
    entry, argv = _argv(command, scene, tmp_path)
    calls = _record(monkeypatch, entry)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"hsi-classify: error: reached {entry}"
    ((args, kwargs),) = calls
    if command == "train":
        assert args[0].model == "svm" and args[0].seed == 3 and args[0].out == str(tmp_path / "runs")
    elif command == "train --resume":
        assert args == (str(tmp_path / "run"), {"device": "cpu"})
    elif command == "repeat":
        assert args[1] == [3, 4] and kwargs["vary"] == "split" and kwargs["engine"]["name"] == "local"
    elif command == "compare":
        assert args[1] == "svm,random_forest" and kwargs["seeds"] == [4, 5] and kwargs["engine"]["jobs"] == 1
    else:
        assert args == (str(tmp_path / "run"),) and kwargs["cube"] == str(synthetic_scene.cube_npy)
    assert not (tmp_path / "runs").exists()  # the call was all the command did


def test_the_python_api_makes_the_same_call(synthetic_scene: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch, "_train_config")
    scene = hsi.load_scene(cube=synthetic_scene.cube_npy, gt=synthetic_scene.gt_npy)
    with pytest.raises(ConfigError, match="reached _train_config"):
        hsi.train(scene, model="svm", seed=3, quiet=True)
    ((args, kwargs),) = calls
    assert args[0].model == "svm" and args[0].seed == 3 and kwargs == {"progress": False}


@pytest.mark.parametrize("command", ["train", "repeat", "compare", "predict"])
def test_commands_call_no_experiment_directly(command: str) -> None:
    # The engines' names are declarations (--engine's choices); everything a command runs goes through hsi.api.
    tree = ast.parse((CLI / f"{command}.py").read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if (node.module or "").startswith("hsi.experiments")}
    assert imported <= {("hsi.experiments.engine", "ENGINES")}, imported
