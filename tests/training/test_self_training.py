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
from hsi.training.classifier import FitSettings
from hsi.training.recipe import CompositionParts
from hsi.training.self_training import lost_classes, pseudo_labels, self_train
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
                     "--patch-size", "7", "--pca-components", "13", "--epochs", "12", "--lr", "0.005", "--batch-size", "16",
                     "--recipe", "paper", "--self-training", "2", "--pseudo-ratio", "2", "--pseudo-threshold", "0.5", "--unlabelled", pixels,
                     "--deterministic", "--out", str(out), "--quiet"])
        assert code == 0
        (run_dir,) = out.iterdir()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        outputs.append((np.load(run_dir / "prediction.npy"), load_file(str(run_dir / "model.safetensors")), metrics))
    (map_true, weights_true, metrics_true), (map_permuted, weights_permuted, metrics_permuted) = outputs
    record = metrics_true["self_training"]
    assert record["pixels"] == pixels and len(record["rounds"]) == 2
    assert all(r["pseudo_labels"] > 0 and r["kept"] for r in record["rounds"])  # the rounds did add pixels
    assert [(r["continued"], r["epochs"]) for r in record["rounds"]] == [(True, 4)] * 2  # 0.3 x 12 epochs, trained on
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
    assert (only["continued"], only["epochs"]) == (False, None)  # an estimator is fitted anew
    assert "| self-training | 1 round on " in report and "trained the model's networks on" not in report
    assert "pixels outside the labelled ground truth, none in a validation pixel's patch; no test pixel was read" in report


class _Sure:
    """A model that answers class ``sure[row % len(sure)]`` at 0.95 for pixel ``row`` (1/K everywhere when
    ``sure`` is empty); ``fit`` records the pixel set it was given and makes the model answer ``then``."""

    def __init__(self, sure: list[int], then: list[int] | None = None, num_classes: int = 3) -> None:
        self.sure, self.then, self.num_classes, self.fitted_on = sure, then, num_classes, None

    def inference_batch_size(self, source: Any) -> int:
        return 4

    def continued(self) -> None:  # as an estimator: each round's model is built anew
        return None

    def predict_proba(self, source: Any, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        proba = torch.full((len(rows), self.num_classes), 1 / self.num_classes)
        for i, row in enumerate(rows.tolist()):
            if self.sure:
                proba[i] = 0.05 / (self.num_classes - 1)
                proba[i, self.sure[row % len(self.sure)]] = 0.95
        return proba

    def fit(self, source: Any, pixels: PixelSet, val: Any, **kwargs: Any) -> str:
        self.fitted_on = pixels
        self.sure = self.then if self.then is not None else self.sure
        return "report"


def _self_train(first: Any, rounds: int, built: list[Any], *, then: list[list[int]] | None = None,
                candidates: int = 12) -> tuple[Any, Any, dict[str, Any]]:
    """``self_train`` from ``first`` on 6 training pixels of 3 classes; round r's model answers ``then[r - 1]``."""
    def build(seed: int) -> Any:
        built.append(_Sure(first.sure, then[len(built)] if then else None))
        return built[-1]

    pixels = PixelSet(torch.arange(6), torch.arange(6), torch.tensor([0, 1, 2, 0, 1, 2]))
    pool = PixelSet(torch.arange(candidates), torch.arange(candidates), torch.full((candidates,), -1))
    settings = FitSettings(epochs=1, batch_size=4, lr=1e-3, seed=0)
    return self_train(first, build, None, pixels, None, pool, num_classes=3, class_names=["a", "b", "c"],
                      parts=CompositionParts(self_training=rounds), settings=settings)


def test_no_confident_candidate_keeps_the_first_model() -> None:
    first, built = _Sure([]), []
    model, report, record = _self_train(first, 2, built)
    assert model is first and report is None and built == []
    (only,) = record["rounds"]  # the model is unchanged, so a second round would find nothing either
    assert only["pseudo_labels"] == 0 and not only["kept"] and record["candidates"] == 12
    assert record["stopped"] == ("round 1 was not kept (no candidate pixel is predicted with probability >= 0.9); "
                                 "the rounds stopped and the first model is kept")
    model, report, record = _self_train(first, 2, built, candidates=0)
    assert model is first and record["rounds"] == [] and record["candidates"] == 0 and record["stopped"] is None


def test_lost_classes_are_those_a_round_gets_mostly_wrong_where_the_model_before_got_them_mostly_right() -> None:
    targets = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    before = torch.tensor([0, 0, 1, 1, 0, 0, 0])  # classes 0 and 1 mostly right, 2 all wrong
    assert lost_classes(before, before, targets) == []
    assert lost_classes(before, torch.tensor([0, 1, 1, 1, 1, 2, 2]), targets) == [0]  # 1 of 2 is not more than half
    assert lost_classes(before, torch.tensor([0, 0, 1, 0, 0, 1, 1]), targets) == [1]  # 2 is not lost: never had it
    assert lost_classes(before, torch.zeros(7, dtype=torch.long), targets) == [1]


def test_a_round_whose_model_loses_a_class_of_the_training_pixels_is_discarded() -> None:
    # seen on real Salinas-A: an undertrained first model, sure of 1 class of 6, pseudo-labelled only that class
    # and the round's model called nearly every pixel that class (OA 67 % -> 24 % over 10 seeds)
    first, built = _Sure([0, 1, 2]), []
    model, report, record = _self_train(first, 2, built, then=[[0]])
    assert len(built) == 1 and model is first and report is None
    assert [(r["per_class"], r["kept"]) for r in record["rounds"]] == [([4, 4, 4], False)]
    assert record["stopped"] == ("round 1 was not kept (its model got at most half of the training pixels of b, c "
                                 "right, where the first model got more than half); the rounds stopped and the "
                                 "first model is kept")
    first, built = _Sure([0, 1, 2]), []  # rounds that keep every class: both are kept
    model, report, record = _self_train(first, 2, built, then=[[0, 1, 2], [0, 1, 2]])
    assert len(built) == 2 and model is built[-1] and report == "report" and record["stopped"] is None
    assert [r["kept"] for r in record["rounds"]] == [True, True]
    assert sorted(set(model.fitted_on.targets.tolist())) == [0, 1, 2] and len(model.fitted_on) == 6 + 12
    first, built = _Sure([0, 1, 2]), []  # round 2's model calls class 1's training pixels class 0: round 1's stays
    model, report, record = _self_train(first, 2, built, then=[[0, 1, 2], [0, 0, 2]])
    assert len(built) == 2 and model is built[0] and [r["kept"] for r in record["rounds"]] == [True, False]
    assert record["stopped"] == ("round 2 was not kept (its model got at most half of the training pixels of b right, "
                                 "where round 1's model got more than half); the rounds stopped and round 1's model "
                                 "is kept")


def test_a_round_that_does_not_train_keeps_the_first_models_map_and_says_so(
        synthetic_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", *synthetic_scene.args(), "--model", "svm", "--split", "per-class", "--train-per-class", "5",
            "--pca-components", "6", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    monkeypatch.setattr("hsi.training.self_training.lost_classes", lambda before, after, targets: [0])
    capsys.readouterr()
    assert main([*args, "--self-training", "2", "--pseudo-threshold", "0.5", "--out", str(tmp_path / "st")]) == 0
    warning = capsys.readouterr().err.strip().splitlines()
    assert [line for line in warning if "self-training" in line] == [
        "hsi-classify: warning: self-training: round 1 was not kept (its model got at most half of the training "
        "pixels of class 2 right, where the first model got more than half); the rounds stopped and the first model "
        "is kept. Pseudo-labels from a model this unsure teach little or mislead; train longer (--epochs) or leave "
        "--self-training off."]
    (plain,), (trained,) = (tmp_path / "plain").iterdir(), (tmp_path / "st").iterdir()
    assert np.array_equal(np.load(plain / "prediction.npy"), np.load(trained / "prediction.npy"))
    record = json.loads((trained / "metrics.json").read_text())["self_training"]
    assert [r["kept"] for r in record["rounds"]] == [False] and record["stopped"].startswith("round 1 was not kept")
    report = (trained / "report.md").read_text()
    assert f"**Warning: {warning[-1].removeprefix('hsi-classify: warning: ')}**" in report  # said once, as a warning
    assert "round 1: " in report and " (not kept)" in report and report.count("round 1 was not kept") == 1
    page = (trained / "report.html").read_text()
    panel = '<div class="warning"><strong>Warning: self-training: round 1 was not kept'
    assert page.count("round 1 was not kept") == 1 and page.index(panel) < page.index("Per-class")  # atop the page


def test_the_controls_dropped_rounds_are_recorded_not_warned(
        synthetic_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("hsi.training.self_training.lost_classes", lambda before, after, targets: [0])
    assert main(["train", *synthetic_scene.args(), "--model", "svm", "--split", "per-class", "--train-per-class", "5",
                 "--pca-components", "6", "--self-training", "1", "--pseudo-threshold", "0.5", "--control", "noise",
                 "--out", str(tmp_path), "--quiet"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "self-training" in line]
    assert len(warnings) == 1  # the real model's; the control's model is meant to learn nothing
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "control" / "metrics.json").read_text())["self_training"]
    assert [r["kept"] for r in record["rounds"]] == [False] and record["stopped"].startswith("round 1 was not kept")


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
    from hsi.training.classifier import FitReport, NetworkResume, Resume
    from hsi.training.self_training import round_network
    from hsi.training.trainer import TrainState

    class Sure:  # answers class (row % 3) with certainty: every candidate is a pseudo-label
        def inference_batch_size(self, source: Any) -> int:
            return 4

        def continued(self) -> None:
            return None

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


def test_a_rounds_model_starts_from_the_kept_networks_of_the_model_before() -> None:
    from hsi.training.classifier import SklearnClassifier, TorchClassifier
    from hsi.training.ensemble import EnsembleClassifier
    from hsi.training.self_training import _round_model

    shape = {"in_chans": 13, "num_classes": 3, "patch_size": 7, "device": torch.device("cpu")}
    ensemble = EnsembleClassifier.create("hybridsn", seed=0, size=3, **shape)
    ensemble.kept = [0, 2]  # the validation pixels dropped network 2
    built: list[int] = []

    def build(seed: int) -> Any:
        built.append(seed)
        return EnsembleClassifier.create("hybridsn", seed=seed, size=3, **shape)

    model, epochs, continued = _round_model(ensemble, build, 7, epochs=100, share=0.3)
    assert (epochs, continued, built) == (30, True, []) and isinstance(model, EnsembleClassifier)
    assert len(model.members) == 2 and model.kept == [0, 1]
    for copy, network in zip(model.members, ensemble.networks, strict=True):
        assert copy.network is not network.network and copy.training is None  # a new optimiser, its own weights
        assert all(torch.equal(a, b) for a, b in zip(copy.network.state_dict().values(),
                                                     network.network.state_dict().values(), strict=True))
    assert _round_model(ensemble, build, 7, epochs=2, share=0.1)[1] == 1  # at least one epoch
    model, epochs, continued = _round_model(ensemble, build, 7, epochs=100, share=0)  # 0: a new model, every epoch
    assert (epochs, continued, built, len(model.members)) == (100, False, [7], 3)
    single = TorchClassifier.create("hybridsn", seed=3, **shape)
    assert isinstance(single.continued(), TorchClassifier) and single.continued().seed == 3
    forest = SklearnClassifier.create("random_forest", seed=0, **shape)
    assert forest.continued() is None and _round_model(forest, build, 7, epochs=100, share=0.3)[1:] == (100, False)
