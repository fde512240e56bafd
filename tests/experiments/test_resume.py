"""Interrupted runs: Ctrl-C or SIGTERM leave a folder marked interrupted; --resume finishes it exactly.

A tiny synthetic scene, HybridSN with patch 9, 3 epochs, --deterministic: an uninterrupted run,
its twin (same seed) and a run interrupted after epoch 1 then resumed must end with the same
metrics (timings aside); an ensemble interrupted in its fourth network resumes in its fourth network.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hsi.experiments.train as train_module
from hsi.cli.main import main
from hsi.config import SCHEMA_VERSION
from hsi.experiments.run_dir import RESUME_FILE, guard_run, write_status
from hsi.experiments.train import clock_free


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 12 x 12 synthetic scene with 20 bands and 4 classes whose spectra differ."""
    d = tmp_path_factory.mktemp("synthetic_scene")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(12, 12))
    synthetic_cube = (2.0 * np.eye(20)[labels * 3] + 0.3 * rng.standard_normal((12, 12, 20))).astype(np.float32)
    paths = {"cube": d / "synthetic_cube.npy", "gt": d / "synthetic_gt.npy", "other_cube": d / "synthetic_other.npy"}
    np.save(paths["cube"], synthetic_cube)
    np.save(paths["gt"], labels.astype(np.uint8))
    np.save(paths["other_cube"], synthetic_cube + 1.0)  # same shape, other values
    return paths


def _train_args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--cube", str(files["cube"]), "--gt", str(files["gt"]), "--out", str(out), "--epochs", "3",
            "--patch-size", "9", "--pca-components", "15", "--batch-size", "32", "--val-ratio", "0.2",
            "--seed", "3", "--deterministic", "--quiet", "--recipe", "paper", *extra]


def _only_run(out: Path) -> Path:
    (run_dir,) = out.iterdir()
    return run_dir


def _metrics(run_dir: Path) -> dict:
    return clock_free(json.loads((run_dir / "metrics.json").read_text()))


def _status(run_dir: Path) -> str:
    return json.loads((run_dir / "status.json").read_text())["state"]


def _interrupted_after_epoch_1(files: dict[str, Path], out: Path, *extra: str, network: int = 0, epoch: int = 1
                               ) -> Path:
    """A run stopped by Ctrl-C right after epoch ``epoch`` of network ``network`` (0 = the first) was saved."""
    real_saver = train_module.epoch_saver

    def saver_then_ctrl_c(*args, **kwargs):
        save = real_saver(*args, **{**kwargs, "interval": 0.0})  # a resume point after every epoch

        def callback(index, epoch_done, model, optimizer, state, stage_end):
            save(index, epoch_done, model, optimizer, state, stage_end)
            if (index, epoch_done) == (network, epoch):
                raise KeyboardInterrupt

        return callback

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "epoch_saver", saver_then_ctrl_c)
        assert main(_train_args(files, out, *extra)) == 130
    return _only_run(out)


def _resume_recording(run_dir: Path) -> list[tuple[int, int]]:
    """Resumes ``run_dir`` to the end; the (network, epoch) of every epoch this session trained."""
    trained: list[tuple[int, int]] = []
    real_saver = train_module.epoch_saver

    def recording_saver(*args, **kwargs):
        save = real_saver(*args, **kwargs)

        def callback(index, epoch, *rest):
            trained.append((index, epoch))
            save(index, epoch, *rest)

        return callback

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "epoch_saver", recording_saver)
        assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    return trained


@pytest.fixture(scope="module")
def runs(synthetic_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two uninterrupted runs with the same seed, and one interrupted after epoch 1 (kept, plus a copy)."""
    result = {}
    for name in ("first", "twin"):
        out = tmp_path_factory.mktemp(name)
        assert main(_train_args(synthetic_files, out)) == 0
        result[name] = _only_run(out)
    result["interrupted"] = _interrupted_after_epoch_1(synthetic_files, tmp_path_factory.mktemp("interrupted"))
    spare = tmp_path_factory.mktemp("spare") / "copy"
    shutil.copytree(result["interrupted"], spare)  # for the tests that must not finish it
    result["spare"] = spare
    return result


def test_same_seed_deterministic_runs_give_identical_metrics(runs: dict[str, Path]) -> None:
    assert _metrics(runs["first"]) == _metrics(runs["twin"])
    assert np.array_equal(np.load(runs["first"] / "prediction.npy"), np.load(runs["twin"] / "prediction.npy"))


def test_interrupted_run_is_marked_and_holds_no_finished_report(runs: dict[str, Path]) -> None:
    run_dir = runs["spare"]
    assert _status(run_dir) == "interrupted"
    assert (run_dir / "config.json").is_file() and (run_dir / RESUME_FILE).is_file()
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "report.md").exists()
    assert not list(run_dir.glob(".*"))  # no temporary file left behind


def test_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(runs: dict[str, Path]) -> None:
    run_dir = runs["interrupted"]
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert _status(run_dir) == "complete" and not (run_dir / RESUME_FILE).exists()
    assert _metrics(run_dir) == _metrics(runs["first"])
    assert np.array_equal(np.load(run_dir / "prediction.npy"), np.load(runs["first"] / "prediction.npy"))
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 4  # header + the 3 epochs, the first from before the interruption
    assert main(["train", "--resume", str(run_dir)]) == 2  # complete now: nothing to resume


def test_a_run_with_a_denoiser_resumes_with_the_denoiser_it_started_with(
    synthetic_files: dict[str, Path], tmp_path: Path,
) -> None:
    denoise = ("--denoise", "dncnn", "--denoise-depth", "2", "--denoise-width", "4", "--denoise-steps", "3")
    assert main(_train_args(synthetic_files, tmp_path / "first", *denoise)) == 0
    run_dir = _interrupted_after_epoch_1(synthetic_files, tmp_path / "interrupted", *denoise)
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert _metrics(run_dir) == _metrics(_only_run(tmp_path / "first"))
    assert np.array_equal(np.load(run_dir / "prediction.npy"), np.load(_only_run(tmp_path / "first") / "prediction.npy"))


def test_a_run_folder_of_an_earlier_version_resumes_and_predict_reads_it(
        runs: dict[str, Path], synthetic_files: dict[str, Path], tmp_path: Path) -> None:
    # As made before config.json had a schema version and before the recipe parts screen and survivors
    # existed: migrate() reads them as off (they did not act then), in config.json and in resume.pt.
    from hsi.training.checkpoint import load_checkpoint, save_checkpoint

    run_dir = tmp_path / "earlier"
    shutil.copytree(runs["spare"], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert config.pop("schema_version") == SCHEMA_VERSION
    config["run"] = {k: v for k, v in config["run"].items() if k not in ("screen", "survivors")}
    (run_dir / "config.json").write_text(json.dumps(config))
    point = load_checkpoint(run_dir / RESUME_FILE)
    kept = ("kind", "split", "pca", "denoiser", "settings", "scene_fingerprint", "train_seconds")
    settings = {k: v for k, v in point["settings"].items() if k not in ("screen", "survivors")}
    save_checkpoint(run_dir / RESUME_FILE, {**{k: v for k, v in point.items() if k in kept}, "settings": settings})
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert _metrics(run_dir) == _metrics(runs["first"])
    assert main(["predict", "--checkpoint", str(run_dir), "--cube", str(synthetic_files["cube"]), "--out", str(tmp_path / "p"),
                 "--quiet"]) == 0
    (predicted,) = (tmp_path / "p").iterdir()
    assert np.array_equal(np.load(predicted / "prediction.npy"), np.load(runs["first"] / "prediction.npy"))


def _resume_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["train", "--resume", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hsi-classify: error: ") and "Traceback" not in err
    return err


def test_resume_refusals(runs: dict[str, Path], synthetic_files: dict[str, Path], tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    spare = runs["spare"]
    before = sorted(p.name for p in spare.iterdir())
    assert "already complete" in _resume_error([str(runs["first"])], capsys)
    assert "is not a folder" in _resume_error([str(tmp_path / "missing")], capsys)
    assert "has no readable config.json" in _resume_error([str(tmp_path)], capsys)
    assert "got --epochs as well" in _resume_error([str(spare), "--epochs", "9"], capsys)
    changed = _resume_error([str(spare), "--cube", str(synthetic_files["other_cube"])], capsys)
    assert "not the one run" in changed and "changed" in changed
    assert sorted(p.name for p in spare.iterdir()) == before and _status(spare) == "interrupted"

    tampered = tmp_path / "tampered"
    shutil.copytree(spare, tampered)
    payload = bytearray((tampered / RESUME_FILE).read_bytes())
    (tampered / RESUME_FILE).write_bytes(bytes(payload[: len(payload) // 2]))
    assert "delete it to restart" in _resume_error([str(tampered)], capsys)

    live = tmp_path / "live"
    shutil.copytree(spare, live)
    write_status(live, "running", pid=os.getppid(), host=__import__("socket").gethostname())
    assert "still running" in _resume_error([str(live)], capsys)


def test_guard_run_marks_interruptions_and_failures(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(KeyboardInterrupt), guard_run(run_dir, config={"seed": 0}):
        (run_dir / "metrics.json").write_text("{}")  # as if stopped between the last writes
        raise KeyboardInterrupt
    assert _status(run_dir) == "interrupted" and not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "config.json").read_text()) == {"schema_version": SCHEMA_VERSION, "run": {"seed": 0}}

    (run_dir / RESUME_FILE).write_bytes(b"kept")
    with pytest.raises(RuntimeError), guard_run(run_dir, resumed=True):
        raise RuntimeError("a resumed run failed")
    assert _status(run_dir) == "failed" and (run_dir / RESUME_FILE).is_file()  # still resumable

    with pytest.raises(RuntimeError), guard_run(run_dir):
        raise RuntimeError("a new run failed")
    assert not run_dir.exists()  # a new run leaves nothing half-made


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM is POSIX")
def test_sigterm_marks_the_run_interrupted(synthetic_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = _train_args(synthetic_files, out, "--epochs", "1000")
    process = subprocess.Popen([sys.executable, "-m", "hsi", *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(f"*/{RESUME_FILE}")):  # epoch 1 is done and saved
            assert process.poll() is None and time.monotonic() < deadline, "the run did not reach epoch 1"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert err.strip().endswith("hsi-classify: terminated") and "Traceback" not in err
    run_dir = _only_run(out)
    assert _status(run_dir) == "interrupted" and (run_dir / RESUME_FILE).is_file()
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "report.md").exists()


def test_an_ensemble_killed_in_its_fourth_network_resumes_in_its_fourth_network(
        synthetic_files: dict[str, Path], tmp_path: Path) -> None:
    # 4 networks screened after epoch 2 of 4 on the validation pixels, 2 go on: every network has its own point.
    ensemble = ("--recipe", "steady", "--ensemble", "4", "--screen", "0.5", "--survivors", "2", "--epochs", "4")
    assert main(_train_args(synthetic_files, tmp_path / "whole", *ensemble)) == 0
    run_dir = _interrupted_after_epoch_1(synthetic_files, tmp_path / "interrupted", *ensemble, network=3)
    assert sorted(p.name for p in run_dir.glob("resume-network-*.pt")) == [
        f"resume-network-{k}.pt" for k in range(4)]
    trained = _resume_recording(run_dir)
    assert trained[0] == (3, 2)  # the fourth network's second epoch: nothing before it is trained again
    assert _metrics(run_dir) == _metrics(_only_run(tmp_path / "whole"))
    assert np.array_equal(np.load(run_dir / "prediction.npy"),
                          np.load(_only_run(tmp_path / "whole") / "prediction.npy"))
    assert not list(run_dir.glob("resume*"))  # complete: every resume point removed
    ensemble_record = json.loads((run_dir / "metrics.json").read_text())["ensemble"]
    assert [n["epochs"] for n in ensemble_record["networks"]].count(4) == 2 and ensemble_record["screen_epoch"] == 2
    # Killed after screening, in a network that went on: the screening is ranked on its first 2 epochs again.
    survivor = next(n["network"] - 1 for n in ensemble_record["networks"] if n["epochs"] == 4)
    later = _interrupted_after_epoch_1(synthetic_files, tmp_path / "later", *ensemble, network=survivor, epoch=3)
    assert main(["train", "--resume", str(later), "--quiet"]) == 0
    assert _metrics(later) == _metrics(run_dir)


def test_clock_free_leaves_out_every_timing_and_keeps_the_rest() -> None:
    metrics = {"overall_accuracy": 0.9, "train_seconds": 1.0, "read_seconds": 2.0, "seed": 3,
               "ensemble": {"kept": [1], "networks": [{"seed": 1000003, "selected_epoch": 3, "seconds": 4.0}]},
               "self_training": {"pixels": "inductive", "rounds": [{"round": 1, "pseudo_labels": 7, "seconds": 5.0}]}}
    assert clock_free(metrics) == {"overall_accuracy": 0.9, "seed": 3,
                                   "ensemble": {"kept": [1], "networks": [{"seed": 1000003, "selected_epoch": 3}]},
                                   "self_training": {"pixels": "inductive", "rounds": [{"round": 1, "pseudo_labels": 7}]}}
    assert metrics["ensemble"]["networks"][0]["seconds"] == 4.0  # the run's own record is left as it was


@pytest.mark.parametrize(("network", "epoch"), [(0, 1), (0, 4)])  # in the screening; after the early stop
def test_a_run_that_stops_early_resumes_to_the_uninterrupted_run(
        synthetic_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, network: int,
        epoch: int) -> None:
    # Validation scores flat from epoch 1 (best: epoch 1): the surviving network stops after epoch 4 of 6.
    monkeypatch.setattr("hsi.training.trainer.evaluate", lambda *a, **k: (1.0, 0.5))
    early = ("--recipe", "steady", "--ensemble", "2", "--screen", "0.5", "--survivors", "1", "--patience", "3",
             "--epochs", "6")
    assert main(_train_args(synthetic_files, tmp_path / "whole", *early)) == 0
    whole = _metrics(_only_run(tmp_path / "whole"))
    assert [n["epochs"] for n in whole["ensemble"]["networks"]] == [4, 3]
    run_dir = _interrupted_after_epoch_1(synthetic_files, tmp_path / "interrupted", *early, network=network,
                                         epoch=epoch)
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert _metrics(run_dir) == whole


def test_a_self_training_run_killed_in_its_second_round_resumes_there(
        synthetic_files: dict[str, Path], tmp_path: Path) -> None:
    # 2 networks a model, 2 rounds: the run's own model keeps points 0-1, round 1's 2-3, round 2's 4-5. Each
    # round trains the networks before it on for 4 epochs (half of 8).
    rounds = ("--ensemble", "2", "--split", "per-class", "--train-per-class", "4", "--val-ratio", "0",
              "--self-training", "2", "--pseudo-threshold", "0.5", "--pseudo-epochs", "0.5", "--epochs", "8",
              "--batch-size", "4", "--lr", "0.005")
    assert main(_train_args(synthetic_files, tmp_path / "whole", *rounds)) == 0
    whole = _only_run(tmp_path / "whole")
    record = json.loads((whole / "metrics.json").read_text())["self_training"]
    assert [(r["continued"], r["epochs"], bool(r["pseudo_labels"])) for r in record["rounds"]] == [(True, 4, True)] * 2
    run_dir = _interrupted_after_epoch_1(synthetic_files, tmp_path / "interrupted", *rounds, network=5, epoch=1)
    assert sorted(p.name for p in run_dir.glob("resume-network-*.pt")) == [
        f"resume-network-{k}.pt" for k in range(6)]
    trained = _resume_recording(run_dir)
    assert trained == [(5, epoch) for epoch in range(2, 5)]  # round 2's second network, from its second epoch
    assert _metrics(run_dir) == _metrics(whole)
    assert np.array_equal(np.load(run_dir / "prediction.npy"), np.load(whole / "prediction.npy"))
    assert not list(run_dir.glob("resume*"))
