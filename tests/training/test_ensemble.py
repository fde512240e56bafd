"""Ensembles: a Classifier of their own, trained in stages, screened and pruned on validation pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hsi._core.errors import CheckpointError
from hsi.data.patches import PatchSource
from hsi.training.batching import dihedral
from hsi.training.classifier import FitSettings, TorchClassifier, member_seed
from hsi.training.ensemble import EnsembleClassifier
from hsi.training.factory import build_classifier, classifier_from_state
from hsi.training.recipe import Recipe, screening_epoch
from hsi.training.trainer import PixelSet

ATOL = 1e-5
Scene = tuple[PatchSource, PixelSet]


def _hybridsn_ensemble(tta: bool, size: int) -> tuple[EnsembleClassifier, PatchSource]:
    classifier = EnsembleClassifier.create("hybridsn", in_chans=13, num_classes=5, patch_size=9,
                                           device=torch.device("cpu"), seed=0, size=size)
    for member in classifier.members:
        member.tta = tta
    cube = np.random.default_rng(2).standard_normal((12, 10, 13)).astype(np.float32)
    return classifier, PatchSource(cube, patch_size=9, pad_mode="reflect")


def test_probabilities_are_the_mean_over_networks_and_symmetries_and_dense_equals_patches() -> None:
    classifier, source = _hybridsn_ensemble(tta=True, size=2)
    rows, cols = torch.meshgrid(torch.arange(3, 8), torch.arange(2, 9), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    proba = classifier.predict_proba(source, rows, cols)
    patches = source.gather(rows, cols)
    with torch.inference_mode():
        expected = torch.stack([m.network(dihedral(patches, t)).softmax(1) for m in classifier.members
                                for t in range(8)]).mean(0)
    torch.testing.assert_close(proba, expected, atol=ATOL, rtol=1e-4)
    classifier.members[0].tta = False
    assert not torch.allclose(classifier.members[0].predict_proba(source, rows, cols), proba, atol=1e-3)
    classifier.members[0].tta = True
    tiles = torch.stack([source.padded[:, 3:3 + 5 + 8, 2:2 + 7 + 8]])  # a 5 x 7 tile: not square
    dense = classifier.predict_proba_dense(tiles)[0]
    torch.testing.assert_close(dense, proba.T.reshape(-1, 5, 7), atol=ATOL, rtol=1e-4)
    classifier.kept = [1]  # only the kept networks count
    torch.testing.assert_close(classifier.predict_proba(source, rows, cols),
                               classifier.members[1].predict_proba(source, rows, cols))


def test_an_ensemble_round_trips_through_the_state_as_single_networks_are_read() -> None:
    classifier, source = _hybridsn_ensemble(tta=True, size=3)
    classifier.kept = [0, 2]
    state = classifier.state()
    assert state["tta"] is True and len(state["members"]) == 1  # the kept networks only
    loaded = classifier_from_state(state)
    assert isinstance(loaded, EnsembleClassifier) and len(loaded.networks) == 2 and loaded.members[0].tta
    rows, cols = torch.arange(6), torch.arange(6)
    torch.testing.assert_close(loaded.predict_proba(source, rows, cols), classifier.predict_proba(source, rows, cols))
    assert loaded.n_parameters == 2 * classifier.members[0].n_parameters  # every kept network counts
    plain = build_classifier("hybridsn", in_chans=13, num_classes=5, patch_size=9, seed=0).state()
    assert "tta" not in plain and "members" not in plain  # a paper run's checkpoint is as before
    assert isinstance(classifier_from_state(plain), TorchClassifier)
    bad = {**state, "members": [{"x": torch.zeros(1)}]}
    with pytest.raises(CheckpointError, match="do not fit model 'hybridsn'"):
        classifier_from_state(bad)


def test_the_factory_builds_an_ensemble_for_networks_only() -> None:
    recipe = Recipe(ensemble=3)
    ensemble = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=7, recipe=recipe)
    assert isinstance(ensemble, EnsembleClassifier) and [m.seed for m in ensemble.members] == [
        member_seed(7, k) for k in range(3)]
    single = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=7, recipe=Recipe())
    assert isinstance(single, TorchClassifier)
    forest = build_classifier("random_forest", in_chans=4, num_classes=3, patch_size=1, seed=7, recipe=recipe)
    assert not isinstance(forest, EnsembleClassifier)  # the network parts do not apply to an estimator


def test_training_in_stages_follows_the_uninterrupted_path(three_class_scene: Scene) -> None:
    source, pixels = three_class_scene
    settings = FitSettings(epochs=4, batch_size=16, lr=1e-3, seed=3, recipe=Recipe(select="val_accuracy"))
    whole = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=3)
    whole.fit(source, pixels, pixels, settings=settings)
    staged = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=3)
    assert isinstance(staged, TorchClassifier)
    resolved = staged.fit_settings(source, pixels, settings)
    for epoch in (1, 3, 4):
        staged.train_until(epoch, source, pixels, pixels, settings=resolved)
        assert staged.training is not None and staged.training.epoch == epoch
    staged.finish(source, pixels, settings=resolved)
    def clock_free(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert clock_free(staged.history) == clock_free(whole.history)  # type: ignore[attr-defined]
    for name, value in whole.network.state_dict().items():  # type: ignore[attr-defined]
        torch.testing.assert_close(staged.network.state_dict()[name], value)


# three HybridSN fits of 2 epochs: a few seconds on a 2-core machine
def test_an_ensemble_trains_every_network_from_its_own_seed_and_reports_each(three_class_scene: Scene) -> None:
    source, pixels = three_class_scene
    classifier = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=4,
                                  recipe=Recipe(ensemble=2, tta=True))
    settings = FitSettings(epochs=2, batch_size=32, lr=1e-3, seed=4, recipe=Recipe(ensemble=2, tta=True))
    report = classifier.fit(source, pixels, None, settings=settings)
    assert isinstance(classifier, EnsembleClassifier) and all(m.tta for m in classifier.members)
    assert [row["network"] for row in report.history] == [1, 1, 2, 2]  # every network's epochs, named
    assert report.ensemble is not None and report.ensemble["kept"] == [1, 2]
    assert [(n["network"], n["seed"], n["epochs"], n["kept"]) for n in report.ensemble["networks"]] == [
        (1, 4, 2, True), (2, member_seed(4, 1), 2, True)]
    assert "screen_epoch" not in report.ensemble and "member_margin" not in report.ensemble  # no validation
    first, second = (m.network.state_dict() for m in classifier.members)
    assert any(not torch.equal(v, second[k]) for k, v in first.items())
    # The run's own network is the one a single-network run of the same seed trains.
    single = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=4)
    single.fit(source, pixels, None, settings=dataclasses.replace(settings, recipe=Recipe(tta=True)))
    assert [{k: v for k, v in r.items() if k not in ("network", "seconds")} for r in report.history[:2]] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in single.history]  # type: ignore[attr-defined]


def _scored(monkeypatch: pytest.MonkeyPatch, classifier: EnsembleClassifier, scores: dict[int, tuple[float, float]],
            ) -> None:
    """Validation (loss, accuracy) of each network by index, at the end and at screening."""
    monkeypatch.setattr("hsi.training.ensemble.evaluate",
                        lambda network, *a, **k: scores[next(i for i, m in enumerate(classifier.members)
                                                              if m.network is network)])
    monkeypatch.setattr("hsi.training.ensemble._screening_rank",
                        lambda history, select, i: (-scores[i][1], scores[i][0], i))


def test_the_screening_rank_reads_the_epochs_up_to_screening_only() -> None:
    from hsi.training.ensemble import _screening_rank

    rows = [{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5}, {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.7},
            {"epoch": 3, "val_accuracy": 0.9, "val_loss": 0.4}, {"epoch": 4, "val_accuracy": 0.7, "val_loss": 0.3}]
    assert _screening_rank(rows, "val_accuracy", 2) == (-0.9, 0.4, 2)  # highest accuracy, ties to the lower loss
    assert _screening_rank(rows, "val_loss", 2) == (-0.7, 0.3, 2)  # the epoch of lowest loss, as select keeps it
    assert _screening_rank(rows[:2], "val_accuracy", 0) == (-0.9, 0.7, 0)  # later epochs do not count
    assert _screening_rank([{"epoch": 1, "train_loss": 1.0}], "val_accuracy", 1) == (0.0, float("inf"), 1)


@pytest.mark.parametrize(("margin", "kept"), [(0.02, [2, 3]), (0.2, [1, 2, 3]), (0.0, [2])])
def test_member_margin_keeps_the_networks_near_the_best_on_validation(
        monkeypatch: pytest.MonkeyPatch, three_class_scene: Scene, margin: float, kept: list[int]) -> None:
    source, pixels = three_class_scene
    recipe = Recipe(ensemble=3, member_margin=margin)
    classifier = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0, recipe=recipe)
    assert isinstance(classifier, EnsembleClassifier)
    _scored(monkeypatch, classifier, {0: (0.9, 0.80), 1: (0.2, 0.95), 2: (0.3, 0.94)})  # the run's own is weakest
    report = classifier.fit(source, pixels, pixels, settings=FitSettings(epochs=1, batch_size=32, lr=1e-3, seed=4,
                                                                         recipe=recipe))
    assert report.ensemble is not None and report.ensemble["kept"] == kept and classifier.kept == [k - 1 for k in kept]
    assert [n["val_accuracy"] for n in report.ensemble["networks"]] == [0.80, 0.95, 0.94]
    assert report.ensemble["member_margin"] == margin and report.selected_epoch == 1


def test_screening_continues_only_the_survivors_best_on_validation(
        monkeypatch: pytest.MonkeyPatch, three_class_scene: Scene) -> None:
    source, pixels = three_class_scene
    recipe = Recipe(ensemble=3, screen=0.5, survivors=2, member_margin=1.0)
    classifier = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0, recipe=recipe)
    assert isinstance(classifier, EnsembleClassifier)
    # At screening: network 2 best, networks 1 and 3 tie on accuracy and the lower loss (3) goes on.
    _scored(monkeypatch, classifier, {0: (0.5, 0.9), 1: (0.2, 0.95), 2: (0.4, 0.9)})
    settings = FitSettings(epochs=4, batch_size=32, lr=1e-3, seed=0, recipe=recipe)
    report = classifier.fit(source, pixels, pixels, settings=settings)
    assert report.ensemble is not None and report.ensemble["screen_epoch"] == 2
    assert [n["epochs"] for n in report.ensemble["networks"]] == [2, 4, 4]
    assert report.ensemble["kept"] == [2, 3] and not report.ensemble["networks"][0]["kept"]
    stopped = report.ensemble["networks"][0]  # its scores: the epoch it keeps (select val_loss) among those trained
    best = min((r for r in report.history if r["network"] == 1), key=lambda r: r["val_loss"])
    assert (stopped["val_accuracy"], stopped["val_loss"]) == (best["val_accuracy"], best["val_loss"])
    assert [row["network"] for row in report.history] == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    # Without validation pixels there is nothing to rank on: the first 2 train every epoch, the third never starts.
    monkeypatch.undo()
    unscreened = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0, recipe=recipe)
    report = unscreened.fit(source, pixels, None, settings=settings)
    assert report.ensemble is not None and [n["epochs"] for n in report.ensemble["networks"]] == [4, 4]
    assert isinstance(unscreened, EnsembleClassifier) and len(unscreened.members) == 2


@pytest.mark.parametrize(("recipe", "epochs", "validation", "expected"), [
    (Recipe(ensemble=5, screen=0.2, survivors=2), 30, True, 6),
    (Recipe(ensemble=5, screen=0.2, survivors=2), 30, False, None),  # nothing to rank on
    (Recipe(ensemble=5, screen=0.2, survivors=5), 30, True, None),  # every network goes on
    (Recipe(ensemble=5, screen=0.2, survivors=0), 30, True, None),  # 0 = all
    (Recipe(ensemble=5, screen=0.0, survivors=2), 30, True, None),  # off
    (Recipe(ensemble=5, screen=0.2, survivors=2), 2, True, 1),  # at least one epoch before
    (Recipe(ensemble=5, screen=0.9, survivors=2), 2, True, None),  # and one after
])
def test_the_screening_epoch(recipe: Recipe, epochs: int, validation: bool, expected: int | None) -> None:
    assert screening_epoch(recipe, epochs, has_validation=validation) == expected


def test_patience_stops_a_network_after_its_best_epoch_but_never_in_the_screening(
        monkeypatch: pytest.MonkeyPatch, three_class_scene: Scene) -> None:
    source, pixels = three_class_scene
    monkeypatch.setattr("hsi.training.trainer.evaluate", lambda *a, **k: (1.0, 0.5))  # best at epoch 1, then flat
    single = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0)
    report = single.fit(source, pixels, pixels, settings=FitSettings(epochs=6, batch_size=32, lr=1e-3, seed=0,
                                                                     recipe=Recipe(patience=2)))
    assert [row["epoch"] for row in report.history] == [1, 2, 3] and report.selected_epoch == 1
    # An ensemble's screening (epochs 1-3 of 6) trains every epoch; the survivor then stops 3 epochs after its best.
    recipe = Recipe(ensemble=2, screen=0.5, survivors=1, patience=3)
    ensemble = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0, recipe=recipe)
    report = ensemble.fit(source, pixels, pixels, settings=FitSettings(epochs=6, batch_size=32, lr=1e-3, seed=0,
                                                                       recipe=recipe))
    assert report.ensemble is not None and report.ensemble["patience"] == 3
    assert [(n["epochs"], n["selected_epoch"]) for n in report.ensemble["networks"]] == [(4, 1), (3, None)]
    # Without validation pixels nothing ranks the epochs: every epoch trains.
    plain = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0)
    report = plain.fit(source, pixels, None, settings=FitSettings(epochs=3, batch_size=32, lr=1e-3, seed=0,
                                                                  recipe=Recipe(patience=1)))
    assert len(report.history) == 3
