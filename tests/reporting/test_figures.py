"""Every figure function returns a Figure that saves to a non-empty PNG (synthetic inputs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from hsi._core.errors import ConfigError, DataFormatError
from hsi.evaluation import agreement_map, classification_summary
from hsi.reporting import figures as G
from hsi.reporting.files import atomic_save_figure

RNG = np.random.default_rng(0)
NAMES = ["synthetic class A", "synthetic class B", "C"]
PALETTE = ["#ff0000", "#00ff00", "#0000ff"]


def _synthetic_runs(n_runs: int = 4) -> list[dict]:
    rng = np.random.default_rng(1)
    runs = []
    for _ in range(n_runs):
        y = rng.integers(0, 3, size=90)
        p = np.where(rng.random(90) < 0.85, y, rng.integers(0, 3, size=90))
        runs.append(classification_summary(y, p, class_names=NAMES))
    runs[0]["per_class"]["C"]["accuracy"] = None
    return runs


def _masks(h: int = 12, w: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    codes = np.random.default_rng(2).integers(0, 5, size=(h, w))
    return codes == 1, codes == 2, codes == 3, codes == 4


CASES: dict[str, Callable[[], Figure]] = {
    "classification_map_tall": lambda: G.classification_map(
        RNG.integers(-1, 3, size=(1476, 256)), class_names=NAMES, palette=PALETTE, title="synthetic tall"
    ),
    "classification_map_wide": lambda: G.classification_map(
        RNG.integers(0, 3, size=(64, 400)), class_names=NAMES, title=None
    ),
    "error_map": lambda: G.error_map(_masks()[2], RNG.random((12, 9)) < 0.8),
    "false_colour": lambda: G.false_colour(RNG.random((10, 8, 6), dtype=np.float32), (5, 3, 1)),
    "confusion": lambda: G.confusion_figure(np.array([[5, 1, 0], [2, 7, 0], [0, 0, 0]]), NAMES),
    "confusion_counts_large": lambda: G.confusion_figure(
        RNG.integers(0, 9, size=(24, 24)), [f"c{i}" for i in range(24)], normalize=False
    ),
    "training_curve": lambda: G.training_curve(
        [
            {
                "epoch": e,
                "train_loss": 1 / e,
                "train_accuracy": 1 - 1 / (e + 1),
                "val_loss": (1.2 / e if e % 2 == 0 else None),
                "val_accuracy": (0.9 if e % 2 == 0 else None),
            }
            for e in range(1, 11)
        ]
    ),
    "training_curve_no_val": lambda: G.training_curve([{"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.5}]),
    "split_map": lambda: G.split_map(*_masks()[:3], excluded_mask=_masks()[3]),
    "split_map_no_val": lambda: G.split_map(_masks()[0], None, _masks()[2]),
    "stability": lambda: G.stability_figure(_synthetic_runs(), NAMES),
    "agreement": lambda: G.agreement_figure(agreement_map(RNG.integers(0, 3, size=(5, 20, 30)))[1]),
    "bar_chart": lambda: G.bar_chart(
        [
            {
                "name": "hybridsn",
                "overall_accuracy": {"mean": 0.97, "std": 0.01},
                "average_accuracy": {"mean": 0.95, "std": 0.02},
                "kappa": {"mean": 0.96, "std": 0.01},
            },
            {
                "name": "svm",
                "overall_accuracy": 0.85,
                "overall_accuracy_std": 0.03,
                "average_accuracy": 0.8,
                "kappa": None,
            },
        ]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_figure_saves_png(name: str, tmp_path: Path) -> None:
    fig = CASES[name]()
    assert isinstance(fig, Figure)
    out = atomic_save_figure(fig, tmp_path / f"{name}.png", dpi=40)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 500


def test_scene_figure_follows_aspect_ratio() -> None:
    tall = G.classification_map(np.zeros((1476, 256), dtype=int), class_names=NAMES)
    wide = G.classification_map(np.zeros((256, 1476), dtype=int), class_names=NAMES)
    tw, th = tall.get_size_inches()
    ww, wh = wide.get_size_inches()
    assert th > tw and ww > wh
    ax = tall.axes[0]
    assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0
    assert ax.get_aspect() == 1.0


def test_classification_map_colours() -> None:
    fig = G.classification_map(np.array([[-1, 0], [1, 2]]), class_names=NAMES, palette=PALETTE)
    image = fig.axes[0].get_images()[0]
    rgba = image.to_rgba(image.get_array())
    np.testing.assert_allclose(rgba[..., :3].reshape(-1, 3), [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [*NAMES, "unlabelled"]
    outside = G.classification_map(np.array([[-1, 0]]), class_names=NAMES, missing_label="no data")
    assert [t.get_text() for t in outside.legends[0].get_texts()] == [*NAMES, "no data"]


def test_split_map_names_the_pixels_in_no_set_unlabelled() -> None:
    """One name for unlabelled pixels in every figure (the error map and class maps say "unlabelled" too)."""
    train, val, test, excluded = _masks()
    labels = [t.get_text() for t in G.split_map(train, val, test, excluded_mask=excluded).legends[0].get_texts()]
    rest = int((~(train | val | test | excluded)).sum())
    assert labels[-1] == f"unlabelled: {rest:,}" and not any(label.startswith("other") for label in labels)


def test_invalid_inputs() -> None:
    with pytest.raises(DataFormatError, match=r"-1\.\.2"):
        G.classification_map(np.array([[3]]), class_names=NAMES)
    with pytest.raises(ConfigError, match="palette"):
        G.classification_map(np.array([[0]]), class_names=NAMES, palette=["#ff0000"])
    with pytest.raises(DataFormatError, match="disjoint"):
        m = np.ones((2, 2), dtype=bool)
        G.split_map(m, None, m)
    with pytest.raises(DataFormatError, match="shape"):
        G.error_map(np.ones((2, 2), dtype=bool), np.ones((3, 2), dtype=bool))
    with pytest.raises(ConfigError, match="rgb_bands"):
        G.false_colour(np.zeros((2, 2, 3), dtype=np.float32), (0, 1, 3))
    with pytest.raises(DataFormatError, match="square"):
        G.confusion_figure(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(DataFormatError, match="missing"):
        G.training_curve([{"epoch": 1}])
    with pytest.raises(DataFormatError, match=r"\[0, 1\]"):
        G.agreement_figure(np.full((2, 2), 3.0))


def test_training_curve_draws_every_network_and_says_which_were_kept() -> None:
    def rows(network: int, epochs: int) -> list[dict]:
        return [{"network": network, "epoch": e, "train_loss": 1.0 / e, "train_accuracy": 1 - 0.5 / e,
                 "val_loss": 1.2 / e, "val_accuracy": 1 - 0.6 / e} for e in range(1, epochs + 1)]

    history = rows(1, 2) + rows(2, 6) + rows(3, 6)  # network 1 stopped at screening, 3 dropped at the end
    fig = G.training_curve(history, kept=[2])
    _, accuracy = fig.axes
    labels = [t.get_text() for t in accuracy.get_legend().get_texts()]
    assert labels == ["network 1 (stopped after epoch 2)", "network 2 (kept)", "network 3 (dropped)"]
    alphas = {line.get_label(): line.get_alpha() for line in accuracy.get_lines() if line.get_label()[0] != "_"}
    assert alphas == {"network 1 (stopped after epoch 2)": 0.35, "network 2 (kept)": 1.0, "network 3 (dropped)": 0.35}
    assert accuracy.get_title() == "Accuracy of 3 networks" and len(accuracy.get_lines()) == 6  # training and validation
    # With patience a network that went on can stop early and still be dropped: the record, not its length, says so.
    early = rows(1, 2) + rows(2, 6) + rows(3, 4)
    labels = [t.get_text() for t in G.training_curve(early, kept=[2], stopped=[1]).axes[1].get_legend().get_texts()]
    assert labels == ["network 1 (stopped after epoch 2)", "network 2 (kept)", "network 3 (dropped)"]
