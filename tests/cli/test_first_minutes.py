"""The first ten minutes: a data or flag mistake is told at once (before torch is imported), on one error,
a long error is broken after its sentences on a terminal, and an output path that is a file is named so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hsi.cli.main as cli_main
from hsi.cli.output import ERROR_WIDTH, error_text, sentence_lines

HEAVY = ("torch", "sklearn", "matplotlib")

_PROBE = """
import json, sys
from hsi.cli.main import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny valid custom scene (cube and ground truth as .npy)."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    np.save(folder / "cube.npy", rng.random((12, 10, 20)).astype(np.float32))
    np.save(folder / "gt.npy", rng.integers(0, 4, size=(12, 10)).astype(np.uint8))
    return {"cube": folder / "cube.npy", "gt": folder / "gt.npy"}


def _cases(scene: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], str]]:
    custom = ["--cube", str(scene["cube"]), "--gt", str(scene["gt"]), "--out", str(tmp / "runs")]
    (tmp / "a_file").write_text("not a folder")
    return {
        "unknown dataset": (["train", "--dataset", "indian_pine"], "did you mean indian_pines?"),
        "missing cube file": (["train", "--cube", str(tmp / "nope.npy"), "--gt", str(scene["gt"])], "not found"),
        "bad patch size": (["train", *custom, "--patch-size", "4"], "odd"),
        "zero epochs": (["train", *custom, "--epochs", "0"], "--epochs must be >= 1"),
        "out is a file": (["train", *custom[:4], "--out", str(tmp / "a_file")], "is a file"),
        "files not on disk, no download": (["train", "--dataset", "indian_pines", "--no-download"],
                                           "downloading is off"),
        "download fails": (["train", "--dataset", "indian_pines"], "the download failed"),
        "repeat, unknown dataset": (["repeat", "--dataset", "salinas_b", "--runs", "2"], "did you mean salinas_a"),
        "compare, unknown dataset": (["compare", "--models", "svm", "--dataset", "salinas_b"], "salinas_a"),
        "inspect, unknown dataset": (["inspect", "--dataset", "indian_pine"], "did you mean indian_pines?"),
        "predict, missing cube file": (["predict", "--checkpoint", str(tmp / "run"), "--cube", str(tmp / "nope.npy")],
                                       "cube file not found"),
    }


CASE_NAMES = [
    "unknown dataset", "missing cube file", "bad patch size", "zero epochs", "out is a file",
    "files not on disk, no download", "download fails", "repeat, unknown dataset", "compare, unknown dataset",
    "inspect, unknown dataset", "predict, missing cube file",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_a_mistake_is_told_before_torch_is_imported(case: str, scene: dict[str, Path], tmp_path: Path) -> None:
    argv, words = _cases(scene, tmp_path)[case]
    env = {**os.environ, "HSI_DATA_DIR": str(tmp_path / "data"), "HSI_CACHE_DIR": str(tmp_path / "cache"),
           "HSI_DATASET_MIRROR": str(tmp_path / "no_mirror")}  # a download fails at once, without the network
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, done.stderr
    assert done.stderr.startswith("hsi-classify: error: ") and len(done.stderr.strip().splitlines()) == 1
    assert words in done.stderr and "drawing the" not in done.stderr  # no "loading ... and drawing the split"
    assert result["loaded"] == [], f"{case}: {result['loaded']} imported before the error"
    assert not (tmp_path / "runs").exists()


def test_out_naming_a_file_says_so(scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file")
    argv = ["train", "--cube", str(scene["cube"]), "--gt", str(scene["gt"]), "--epochs", "1", "--quiet"]
    assert cli_main.main([*argv, "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert f"--out {blocker} is a file; expected a folder (or a path that does not exist yet)" in err
    assert "--out runs" in err and len(err.strip().splitlines()) == 1
    assert cli_main.main([*argv, "--out", str(blocker / "runs")]) == 2
    assert f"lies inside {blocker}, which is a file" in capsys.readouterr().err


def test_predict_out_naming_a_file_says_so(tmp_path: Path) -> None:
    from hsi._core.errors import ConfigError
    from hsi.experiments.run_dir import check_writable

    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file; expected a folder"):
        check_writable(tmp_path / "f")
    check_writable(tmp_path / "new" / "folder")  # a path that does not exist yet is fine


LONG = ("Indian Pines file(s) Indian_pines_corrected.mat not found (looked in /home/user/data/indian_pines, "
        "/home/user/.cache/hsi-classify/indian_pines) and the download failed: could not download "
        "Indian_pines_corrected.mat: each of its 3 addresses failed with 'cannot connect: [Errno -2] Name or service "
        "not known' (http://www.ehu.eus/ccwintco/uploads/6/67/Indian_pines_corrected.mat, "
        "http://www.ehu.es/ccwintco/uploads/6/67/Indian_pines_corrected.mat, "
        "https://huggingface.co/datasets/danaroth/indian_pines/resolve/main/Indian_pines_corrected.mat). Download "
        "it by hand into /home/user/data/indian_pines, or set HSI_DATASET_MIRROR to a mirror serving "
        "<mirror>/<dataset>/<file>. Or point --data-dir or HSI_DATA_DIR at a folder holding indian_pines/<file>.")


def test_sentence_lines_break_after_sentences() -> None:
    lines = sentence_lines(LONG)
    assert " ".join(lines) == LONG  # nothing lost or added
    assert all(len(line) <= ERROR_WIDTH or " " not in line for line in lines)  # only an address may be longer
    assert any(line.startswith("Download it by hand") for line in lines)
    assert lines[-1] == "Or point --data-dir or HSI_DATA_DIR at a folder holding indian_pines/<file>."
    assert sentence_lines("Short. Two sentences, e.g. this.") == ["Short. Two sentences, e.g. this."]


def test_error_text_is_one_line_for_a_script_and_wrapped_on_a_terminal() -> None:
    assert error_text(LONG, wrap=False) == f"hsi-classify: error: {LONG}"
    first, *rest = error_text(LONG, wrap=True).splitlines()
    assert first.startswith("hsi-classify: error: Indian Pines file(s) Indian_pines_corrected.mat not found")
    assert rest and all(line.startswith("  ") for line in rest)


def test_the_offline_message_is_wrapped_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "stderr_is_terminal", lambda: True)
    code = cli_main.main(["train", "--dataset", "indian_pines", "--data-dir", str(tmp_path / "data"),
                          "--out", str(tmp_path / "r")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) > 2
    assert lines[0].startswith("hsi-classify: error: Indian Pines file(s) ")
    assert all(len(line) <= ERROR_WIDTH or " " not in line.strip() for line in lines)
    assert any(line.strip().startswith("Download it by hand") for line in lines)
