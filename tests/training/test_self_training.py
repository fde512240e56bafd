"""Self-training (issue 34): pseudo-labels drawn per class, and proof that no test label is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from hsi.cli.main import main
from hsi.training.self_training import pseudo_labels
from hsi.training.trainer import PixelSet

pytestmark = pytest.mark.usefixtures("figures_not_drawn")


def test_pseudo_labels_take_a_seeded_sample_per_class_above_the_threshold() -> None:
    proba = torch.tensor([[0.95, 0.05], [0.99, 0.01], [0.6, 0.4], [0.02, 0.98], [1.0, 0.0], [0.3, 0.7]])
    index, classes = pseudo_labels(proba, quota=2, threshold=0.9, seed=0)
    assert index.tolist() == sorted(index.tolist())
    assert classes.tolist() == proba[index].argmax(1).tolist()
    # class 0: three candidates above 0.9 (rows 0, 1, 4), two kept; class 1: only row 3 (0.7 is below)
    assert (classes == 0).sum() == 2 and set(index[classes == 0].tolist()) <= {0, 1, 4}
    assert index[classes == 1].tolist() == [3]
    again = pseudo_labels(proba, quota=2, threshold=0.9, seed=0)[0]
    assert torch.equal(index, again)  # seeded
    drawn = {tuple(pseudo_labels(proba, quota=2, threshold=0.9, seed=s)[0].tolist()) for s in range(20)}
    assert len(drawn) > 1  # a sample, not the top of the confidence order
    assert len(pseudo_labels(proba, quota=5, threshold=0.999, seed=0)[0]) == 1  # only 1.0 passes


def _permuted_outside(gt: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """``gt`` whose every labelled pixel outside ``train`` has its class id sent through a cyclic shift of
    the ids (a permutation that moves every id)."""
    ids = np.unique(gt[gt > 0])
    shift = {int(a): int(b) for a, b in zip(ids, np.roll(ids, 1 + seed % (len(ids) - 1)), strict=True)}
    out = gt.copy()
    outside = (gt > 0) & ~train
    out[outside] = [shift[int(v)] for v in gt[outside]]
    return out


@pytest.mark.parametrize("pixels", ["transductive", "inductive"])
def test_no_label_outside_the_training_pixels_is_read(synthetic_scene: Any, tmp_path: Path, pixels: str) -> None:
    gt = np.load(synthetic_scene.gt_npy)
    rng = np.random.default_rng(0)
    train = np.zeros(gt.shape, dtype=bool)
    for class_id in np.unique(gt[gt > 0]):
        rows, cols = np.nonzero(gt == class_id)
        pick = rng.choice(len(rows), 6, replace=False)
        train[rows[pick], cols[pick]] = True
    outputs = []
    for name, labels in (("true", gt), ("permuted", _permuted_outside(gt, train, seed=1))):
        assert name == "true" or (labels[~train] != gt[~train]).sum() == ((gt > 0) & ~train).sum()
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "gt.npy", labels)
        np.save(folder / "train.npy", np.where(train, labels, 0))
        np.save(folder / "test.npy", np.where(train, 0, labels))
        out = folder / "runs"
        code = main(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(folder / "gt.npy"),
                     "--split", "masks", "--train-gt", str(folder / "train.npy"), "--test-gt", str(folder / "test.npy"),
                     "--patch-size", "7", "--pca-components", "13", "--epochs", "8", "--lr", "0.005", "--batch-size", "16",
                     "--recipe", "paper", "--self-training", "2", "--pseudo-ratio", "2", "--pseudo-threshold", "0.5", "--unlabelled", pixels,
                     "--deterministic", "--out", str(out), "--quiet"])
        assert code == 0
        (run_dir,) = out.iterdir()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        outputs.append((np.load(run_dir / "prediction.npy"), load_file(str(run_dir / "model.safetensors")), metrics))
    (map_true, weights_true, metrics_true), (map_permuted, weights_permuted, metrics_permuted) = outputs
    record = metrics_true["self_training"]
    assert record["pixels"] == pixels and len(record["rounds"]) == 2
    assert all(r["pseudo_labels"] > 0 for r in record["rounds"])  # the rounds did add pixels
    expected = (~train).sum() if pixels == "transductive" else (gt == 0).sum()
    assert record["candidates"] == expected
    assert np.array_equal(map_true, map_permuted)  # the same map ...
    assert weights_true.keys() == weights_permuted.keys()
    assert [k for k in weights_true if weights_true[k].tobytes() != weights_permuted[k].tobytes()] == []  # same model
    assert metrics_true["overall_accuracy"] != metrics_permuted["overall_accuracy"]  # the test labels did differ
    assert record == {**metrics_permuted["self_training"],
                      "rounds": [{**r, "seconds": t["seconds"]} for r, t in
                                 zip(metrics_permuted["self_training"]["rounds"], record["rounds"], strict=True)]}


@pytest.mark.parametrize("model", ["svm", "random_forest"])
def test_an_estimator_self_trains_through_the_same_interface(synthetic_scene: Any, tmp_path: Path, model: str) -> None:
    out = tmp_path / "runs"
    code = main(["train", *synthetic_scene.args(), "--model", model, "--split", "per-class", "--train-per-class", "5",
                 "--pca-components", "6", "--self-training", "1", "--pseudo-ratio", "2", "--pseudo-threshold", "0.5",
                 "--unlabelled", "inductive",
                 "--out", str(out), "--quiet"])
    assert code == 0
    (run_dir,) = out.iterdir()
    record = json.loads((run_dir / "metrics.json").read_text())["self_training"]
    (only,) = record["rounds"]
    assert record["pixels"] == "inductive" and only["quota_per_class"] == 10 and 0 < only["pseudo_labels"] <= 40
    report = (run_dir / "report.md").read_text()
    assert "| self-training | 1 round on " in report
    assert "pixels outside the labelled ground truth, none in a validation pixel's patch; no test pixel was read" in report


def test_no_confident_candidate_keeps_the_first_model() -> None:
    from hsi.training.recipe import CompositionParts
    from hsi.training.self_training import self_train

    class Unsure:  # a model that answers 1/K everywhere: nothing passes the threshold
        def inference_batch_size(self, source: Any) -> int:
            return 4

        def predict_proba(self, source: Any, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            return torch.full((len(rows), 3), 1 / 3)

    def build(seed: int) -> Any:
        raise AssertionError("no round should train a new model")

    first: Any = Unsure()
    pixels = PixelSet(torch.arange(6), torch.arange(6), torch.tensor([0, 1, 2, 0, 1, 2]))
    candidates = PixelSet(torch.arange(10), torch.arange(10), torch.full((10,), -1))
    settings: Any = type("Settings", (), {"seed": 0})()
    model, report, record = self_train(first, build, None, pixels, None, candidates, num_classes=3,
                                       parts=CompositionParts(self_training=2), settings=settings)
    assert model is first and report is None
    assert [r["pseudo_labels"] for r in record["rounds"]] == [0, 0] and record["candidates"] == 10
    empty = PixelSet(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    model, report, record = self_train(first, build, None, pixels, None, empty, num_classes=3,
                                       parts=CompositionParts(self_training=2), settings=settings)
    assert model is first and record["rounds"] == [] and record["candidates"] == 0


@pytest.mark.parametrize("pixels", ["transductive", "inductive"])
def test_no_pixel_whose_patch_holds_a_validation_pixel_is_a_candidate(pixels: str) -> None:
    """A pseudo-label inside a validation pixel's patch would teach that patch: the validation score that picks
    epochs and networks would stop being spatially independent."""
    from types import SimpleNamespace

    from hsi.config import RunConfig
    from hsi.data.splits import Split
    from hsi.experiments.steps import unlabelled_pixels

    labels = np.full((12, 14), -1)
    labels[:, :9] = 0  # a labelled field and an unlabelled strip at the right
    train, val = np.zeros(labels.shape, dtype=bool), np.zeros(labels.shape, dtype=bool)
    train[1, 1] = True
    val[6, 8] = True
    split = Split(train, val, (labels >= 0) & ~train & ~val, np.zeros_like(train))
    scene: Any = SimpleNamespace(labels=labels)
    config = RunConfig(patch_size=5, unlabelled="inductive" if pixels == "inductive" else "transductive")

    mask = unlabelled_pixels(config, scene, split)

    rows, cols = np.indices(labels.shape)
    near_val = (abs(rows - 6) <= 2) & (abs(cols - 8) <= 2)  # their 5 x 5 patch holds the validation pixel
    expected = ~train & ~near_val & (labels < 0 if pixels == "inductive" else True)
    assert np.array_equal(mask, expected)
    no_val = Split(train, np.zeros_like(val), split.test, split.excluded)
    assert unlabelled_pixels(config, scene, no_val)[6, 8 if pixels == "transductive" else 10]  # nothing to keep away from


def test_each_round_names_its_bars_and_keeps_resume_points_of_its_own() -> None:
    """Round r's networks save under r x (networks per model) + k and continue from those points; their
    progress bars say which round they belong to."""
    from hsi.training.classifier import FitReport, FitSettings, NetworkResume, Resume
    from hsi.training.recipe import CompositionParts
    from hsi.training.self_training import round_network, self_train
    from hsi.training.trainer import TrainState

    class Sure:  # answers class (row % 3) with certainty: every candidate is a pseudo-label
        def inference_batch_size(self, source: Any) -> int:
            return 4

        def predict_proba(self, source: Any, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(rows % 3, 3).float()

    fits: list[tuple[str, list[int]]] = []
    saved: list[int] = []

    class Round(Sure):
        def fit(self, source: Any, train: PixelSet, val: Any, *, settings: FitSettings, progress: bool = False,
                resume: Resume | None = None, on_epoch_end: Any = None) -> FitReport:
            fits.append((settings.stage, sorted(resume.networks) if resume else []))
            for k in range(2):
                on_epoch_end(k, 1, None, None, None, True)
            return FitReport()

    point = NetworkResume({}, None, TrainState())
    resume = Resume({0: point, 1: point, round_network(1, 0, 2): point, round_network(2, 1, 2): point})
    pixels = PixelSet(torch.arange(6), torch.arange(6), torch.tensor([0, 1, 2, 0, 1, 2]))
    candidates = PixelSet(torch.arange(6, 12), torch.arange(6, 12), torch.full((6,), -1))
    first: Any = Sure()
    source: Any = None  # the fakes read no patch
    build: Any = lambda seed: Round()  # noqa: E731
    self_train(first, build, source, pixels, None, candidates, num_classes=3,
               parts=CompositionParts(ensemble=2, self_training=2), settings=FitSettings(1, 4, 0.1, seed=0),
               resume=resume, on_epoch_end=lambda network, *rest: saved.append(network))
    assert fits == [("round 1/2, ", [0]), ("round 2/2, ", [1])]  # round 1 network 0 = 2; round 2 network 1 = 5
    assert saved == [2, 3, 4, 5]
