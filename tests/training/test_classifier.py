"""The one model interface: every kind fits, predicts and round-trips through a checkpoint alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hsi._core.errors import CheckpointError
from hsi.data.patches import PatchSource
from hsi.evaluation.predict import predict_scene
from hsi.training.checkpoint import load_checkpoint, save_checkpoint
from hsi.training.classifier import FitSettings, SklearnClassifier, TorchClassifier
from hsi.training.factory import build_classifier, classifier_from_state
from hsi.training.seed import seeded_run
from hsi.training.trainer import PixelSet

SETTINGS = FitSettings(epochs=2, batch_size=32, lr=1e-3, seed=0)


def _synthetic(n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A SYNTHETIC 12 x 10 x 6 cube whose classes differ in mean spectrum, and its labels."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(n_classes), 12 * 10 // n_classes)[: 12 * 10].reshape(12, 10)
    cube = (labels[..., None] * 2.0 + rng.normal(0, 0.3, (12, 10, 6))).astype(np.float32)
    return cube, labels


def _pixels(source: PatchSource, labels: np.ndarray, mask: np.ndarray) -> PixelSet:
    rows, cols = source.pixel_coordinates(mask)
    return PixelSet(rows, cols, torch.from_numpy(labels[mask].astype(np.int64)))


@pytest.mark.parametrize("name", ["svm", "random_forest", "hybridsn_2d3d"])
def test_every_kind_round_trips_through_a_checkpoint(name: str, tmp_path: Path) -> None:
    cube, labels = _synthetic()
    classifier = build_classifier(name, in_chans=6, num_classes=3, patch_size=5, seed=0)
    source = PatchSource(cube, patch_size=classifier.receptive_field)
    train = np.zeros_like(labels, dtype=bool)
    train[::2, ::3] = True
    report = classifier.fit(source, _pixels(source, labels, train), None, settings=SETTINGS)
    before = predict_scene(classifier, source)
    assert before.shape == labels.shape and set(np.unique(before)) <= {0, 1, 2}

    save_checkpoint(tmp_path / "model.pt", {**classifier.state(), "extra": 1})
    loaded = classifier_from_state(load_checkpoint(tmp_path / "model.pt"))
    assert type(loaded) is type(classifier)
    assert np.array_equal(predict_scene(loaded, source), before)
    if isinstance(classifier, SklearnClassifier):
        assert classifier.receptive_field == 1 and report.history == [] and report.selected_epoch is None
        assert (before[~train] == labels[~train]).mean() > 0.9  # separable spectra
    else:
        assert isinstance(classifier, TorchClassifier)
        assert classifier.receptive_field == 5 and len(report.history) == 2


def test_probabilities_cover_classes_missing_from_training() -> None:
    cube, labels = _synthetic()
    classifier = build_classifier("random_forest", in_chans=6, num_classes=4, patch_size=1, seed=0)
    source = PatchSource(cube, patch_size=1)
    classifier.fit(source, _pixels(source, labels, labels >= 0), None, settings=SETTINGS)
    rows, cols = source.pixel_coordinates()
    proba = classifier.predict_proba(source, rows, cols)
    assert proba.shape == (120, 4) and torch.allclose(proba.sum(1), torch.ones(120))
    assert (proba[:, 3] == 0).all()


class _Foreign:
    """A type no hsi-classify checkpoint holds."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_an_estimator_of_foreign_types_is_refused() -> None:
    import skops.io

    blob = np.frombuffer(skops.io.dumps(_Foreign()), dtype=np.uint8).copy()
    state = {"model": {"name": "svm", "in_chans": 6, "num_classes": 3, "patch_size": 1},
             "estimator_skops": torch.from_numpy(blob)}
    with pytest.raises(CheckpointError, match="holds types hsi-classify does not load .*_Foreign"):
        classifier_from_state(state)
    state["estimator_skops"] = torch.zeros(10, dtype=torch.uint8)
    with pytest.raises(CheckpointError, match="holds no readable estimator"):
        classifier_from_state(state)


def test_seeded_run_restores_the_callers_generator_and_switches() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_run(7, deterministic=True):
        inside = torch.rand(2)
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expected)
    assert not torch.are_deterministic_algorithms_enabled()
    with seeded_run(7, deterministic=False):
        assert torch.equal(torch.rand(2), inside)


def test_a_run_that_keeps_torch_s_default_determinism_does_not_import_inductor() -> None:
    # torch.use_deterministic_algorithms imports torch._inductor on its first call: a second of an SVM's run.
    import subprocess
    import sys

    code = ("import sys; from hsi.training.seed import seeded_run\n"
            "with seeded_run(0, deterministic=False): pass\n"
            "print('torch._inductor' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
