"""Training recipes: paper == the loop before recipes, each part of the new default (TTA and ensembles:
test_ensemble.py)."""

from __future__ import annotations

import argparse
import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from hsi._core.errors import ConfigError, UnknownNameError
from hsi.config import RunConfig
from hsi.data.patches import PatchSource
from hsi.training.batching import DIHEDRAL, augment_patches, dihedral
from hsi.training.classifier import FitSettings
from hsi.training.factory import build_classifier
from hsi.training.recipe import (
    MIN_BATCH,
    RECIPES,
    Recipe,
    lr_factor,
    make_optimizer,
    recipe_line,
    recipe_of,
    recipe_record,
    resolve_recipe,
    train_batch_size,
)
from hsi.training.trainer import PixelSet, fit

ATOL = 1e-5


class TinyNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_chans, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _train(problem: tuple[PatchSource, PixelSet], recipe: Recipe | None, epochs: int = 4,
           **kwargs: object) -> tuple[nn.Module, list[float]]:
    source, pixels = problem
    torch.manual_seed(0)
    model = TinyNet()
    state = fit(model, source, pixels, None, epochs=epochs, batch_size=16, lr=0.05, seed=1, progress=False,
                recipe=recipe, **kwargs)  # type: ignore[arg-type]
    return model, [row["train_loss"] for row in state.history]


# ---------------------------------------------------------------- the registry and the config


def test_paper_is_the_loop_without_a_recipe(separable_problem: tuple[PatchSource, PixelSet]) -> None:
    assert RECIPES.get("paper") == Recipe()
    paper, paper_loss = _train(separable_problem, RECIPES.get("paper"))
    plain, plain_loss = _train(separable_problem, None)
    assert paper_loss == plain_loss
    for key, value in plain.state_dict().items():
        assert torch.equal(value, paper.state_dict()[key])


def test_each_part_of_the_new_default_changes_training(separable_problem: tuple[PatchSource, PixelSet]) -> None:
    robust = RECIPES.get("robust")
    _, paper_loss = _train(separable_problem, RECIPES.get("paper"))
    for part in ("optimizer", "schedule", "label_smoothing", "augment", "jitter"):
        only = dataclasses.replace(Recipe(), **{part: getattr(robust, part)})
        if part == "optimizer":
            only = dataclasses.replace(only, weight_decay=robust.weight_decay)
        if part == "schedule":
            only = dataclasses.replace(only, warmup=robust.warmup)
        _, loss = _train(separable_problem, only)
        assert loss != paper_loss, part
    _, scaled_loss = _train(separable_problem, Recipe(lr_scale=2.0))  # the peak learning rate, a part of its own
    assert scaled_loss != paper_loss


def test_robust_recipe_learns_and_resumes_exactly(separable_problem: tuple[PatchSource, PixelSet]) -> None:
    robust = RECIPES.get("robust")
    model, losses = _train(separable_problem, robust, epochs=8)
    source, pixels = separable_problem
    with torch.no_grad():
        accuracy = (model(source.gather(pixels.rows, pixels.cols)).argmax(1) == pixels.targets).float().mean()
    assert accuracy > 0.9
    saved: dict[str, object] = {}

    class Interrupted(Exception):
        pass

    def interrupt(epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer, state: object, last: bool) -> None:
        if epoch == 3:  # an 8-epoch run stopped after epoch 3: the schedule spans 8 epochs
            saved.update(copy.deepcopy({"model": net.state_dict(), "opt": optimizer.state_dict(), "state": state}))
            raise Interrupted

    with pytest.raises(Interrupted):
        _train(separable_problem, robust, epochs=8, on_epoch_end=interrupt)
    resumed = TinyNet()
    resumed.load_state_dict(saved["model"])  # type: ignore[arg-type]
    state = fit(resumed, source, pixels, None, epochs=8, batch_size=16, lr=0.05, seed=1, progress=False,
                recipe=robust, state=saved["state"], optimizer_state=saved["opt"])  # type: ignore[arg-type]
    assert [r["train_loss"] for r in state.history] == losses  # the schedule follows the global step
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key])


def test_config_parts_override_the_recipe_and_land_in_the_config() -> None:
    config = RunConfig(dataset="x", recipe="robust", augment=False, ensemble=3, split="per-class", train_per_class=5)
    recipe = recipe_of(config)
    assert recipe.augment is False and recipe.ensemble == 3 and recipe.optimizer == "adamw"
    resolved = resolve_recipe(config)
    assert resolved.val_ratio == pytest.approx(0.2)  # held out of the training pixels
    assert resolved.schedule == "cosine" and resolved.augment is False and resolved.tta is True
    assert resolve_recipe(resolved) == resolved  # config.json reproduces the run
    record = recipe_record(resolved)
    assert record["name"] == "robust" and record["ensemble"] == 3 and record["val_ratio"] == pytest.approx(0.2)
    assert recipe_line(record).startswith("robust (optimizer adamw, lr scale 1, weight decay 0.01,")
    # A disjoint split keeps its own validation blocks; an explicit --val-ratio wins; paper holds out nothing.
    assert resolve_recipe(dataclasses.replace(config, split="disjoint")).val_ratio == pytest.approx(0.2)
    assert resolve_recipe(dataclasses.replace(config, val_ratio=0.0)).val_ratio == 0.0
    paper = resolve_recipe(RunConfig(dataset="x", recipe="paper"))
    assert paper.val_ratio == 0.0 and paper.optimizer == "adam" and paper.augment is False and paper.ensemble == 1
    # The default, steady: paper's optimiser, no hold-out and no flips, plus min_steps, the epoch of best
    # validation accuracy (where the split draws validation pixels) and 5 networks.
    steady = resolve_recipe(RunConfig(dataset="x"))
    assert steady.recipe == "steady" and steady.val_ratio == 0.0 and steady.optimizer == "adam"
    assert (steady.augment, steady.tta, steady.min_steps, steady.ensemble) == (False, False, 6, 5)
    assert steady.select == "val_accuracy" and paper.select == "val_loss"
    assert steady.member_margin == 0.02 and paper.member_margin == 1.0


def test_bad_recipe_settings_are_refused_with_the_flag() -> None:
    with pytest.raises(UnknownNameError, match="recipe"):
        recipe_of(RunConfig(recipe="robustt"))
    with pytest.raises(ConfigError, match="--label-smoothing must be between 0 and 0.99; got 1.5"):
        recipe_of(RunConfig(label_smoothing=1.5))
    with pytest.raises(ConfigError, match="--ensemble must be >= 1"):
        recipe_of(RunConfig(ensemble=0))
    with pytest.raises(ConfigError, match="--schedule must be one of constant, cosine, onecycle"):
        recipe_of(RunConfig(schedule="step"))
    with pytest.raises(ConfigError, match="--select must be one of val_loss, val_accuracy; got 'acc'"):
        recipe_of(RunConfig(select="acc"))
    with pytest.raises(ConfigError, match="--member-margin must be between 0 and 1; got 2"):
        recipe_of(RunConfig(member_margin=2.0))
    for window in (1, 4, 33, -3):
        with pytest.raises(ConfigError, match=f"--smooth must be 0 \\(off\\) or an odd window side from 3 to 31; "
                                              f"got {window}"):
            recipe_of(RunConfig(smooth=window))
    assert recipe_of(RunConfig(smooth=5)).window(7) == 11 and recipe_of(RunConfig()).window(7) == 7


def test_recipe_flags_reach_the_config() -> None:
    from hsi.cli.train import add_run_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args(["--recipe", "robust", "--no-augment", "--tta", "--ensemble", "2", "--jitter", "0",
                              "--select", "val_accuracy", "--smooth", "3"])
    config = config_from_args(args)
    assert (config.recipe, config.augment, config.tta, config.ensemble, config.jitter) == ("robust", False, True, 2, 0)
    assert recipe_of(config).select == "val_accuracy" and recipe_of(config).smooth == 3
    assert config_from_args(parser.parse_args([])).augment is None  # None: the recipe decides


# ---------------------------------------------------------------- the parts


@pytest.mark.parametrize(("select", "kept"), [("val_loss", 2), ("val_accuracy", 4)])
def test_select_ranks_the_epochs_by_loss_or_by_accuracy_then_loss(
        separable_problem: tuple[PatchSource, PixelSet], monkeypatch: pytest.MonkeyPatch, select: str,
        kept: int) -> None:
    # (val loss, val accuracy) of epochs 1-4: the loss is lowest at 2; the accuracy peaks at 3 and 4,
    # where 4 has the lower loss.
    scores = iter([(1.0, 0.5), (0.5, 0.8), (0.9, 0.9), (0.7, 0.9)])
    monkeypatch.setattr("hsi.training.trainer.evaluate", lambda *args, **kwargs: next(scores))
    source, pixels = separable_problem
    state = fit(TinyNet(), source, pixels, pixels, epochs=4, batch_size=16, lr=0.05, seed=1, progress=False,
                recipe=Recipe(select=select))
    assert state.best_epoch == kept and state.best_state is not None
    assert (state.best_val_loss, state.best_val_accuracy) == [(0.5, 0.8), (0.7, 0.9)][kept // 4]


@pytest.mark.parametrize("kind", ["cosine", "onecycle"])
def test_schedules_warm_up_then_decay(kind: str) -> None:
    recipe = Recipe(schedule=kind, warmup=0.1)
    factors = [lr_factor(recipe, step, 100) for step in range(100)]
    assert factors[0] < 0.1 and max(factors) == pytest.approx(1.0, abs=0.02)
    peak = int(np.argmax(factors))
    assert 8 <= peak <= 11
    assert all(a >= b for a, b in zip(factors[peak:], factors[peak + 1:], strict=False))  # decays after the peak
    assert factors[-1] < 0.01
    assert {lr_factor(Recipe(), s, 100) for s in range(100)} == {1.0}


def test_dihedral_group_and_inverse() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    images = {tuple(dihedral(x, t).flatten().tolist()) for t in range(len(DIHEDRAL))}
    assert len(images) == 8  # the 8 symmetries of a square, all distinct
    for t in range(8):
        assert torch.equal(dihedral(dihedral(x, t), t, inverse=True), x)
        assert torch.equal(dihedral(x, t)[..., 2, 2], x[..., 2, 2])  # the centre pixel stays


def test_augment_patches_draws_symmetries_and_jitter_from_its_generator() -> None:
    x = torch.randn(256, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    flipped = augment_patches(x, torch.Generator().manual_seed(1), flips=True)
    again = augment_patches(x, torch.Generator().manual_seed(1), flips=True)
    assert torch.equal(flipped, again)  # pure: the generator alone decides
    which = [next(t for t in range(8) if torch.equal(dihedral(x[i], t), flipped[i])) for i in range(len(x))]
    assert set(which) == set(range(8))  # every patch is one symmetry of itself; all 8 are drawn
    assert torch.equal(augment_patches(x, torch.Generator(), flips=False, jitter=0.0), x)
    jittered = augment_patches(x, torch.Generator().manual_seed(2), flips=False, jitter=0.1)
    ratio = (jittered / x).flatten(1).median(1).values  # each patch's brightness scale, noise aside
    assert 0.05 < float(ratio.std()) < 0.15 and abs(float(ratio.mean()) - 1.0) < 0.03
    assert 0.03 < float((jittered - x * ratio[:, None, None, None]).std()) < 0.08  # noise std jitter / 2


def test_min_steps_shrinks_the_batch_of_a_small_training_set_only() -> None:
    assert train_batch_size(Recipe(), 256, 48) == 256  # off: the run's batch
    assert train_batch_size(Recipe(min_steps=8), 256, 428) == 54  # ceil(428 / 8): 8 steps per epoch
    assert train_batch_size(Recipe(min_steps=8), 256, 20_000) == 256  # enough steps already
    assert train_batch_size(Recipe(min_steps=8), 256, 48) == MIN_BATCH  # never below MIN_BATCH
    assert train_batch_size(Recipe(min_steps=8), 8, 48) == 8  # nor above the run's batch
    with pytest.raises(ConfigError, match="--min-steps must be between 0 and 10000"):
        recipe_of(RunConfig(min_steps=-1))


def test_min_steps_takes_that_many_optimiser_steps_per_epoch(
        monkeypatch: pytest.MonkeyPatch, three_class_scene: tuple[PatchSource, PixelSet]) -> None:
    import hsi.training.trainer as trainer

    steps: list[int] = []

    def counting_optimizer(*args: object, **kwargs: object) -> torch.optim.Optimizer:
        optimizer = make_optimizer(*args, **kwargs)  # type: ignore[arg-type]
        optimizer.register_step_post_hook(lambda *_: steps.append(1))
        return optimizer

    monkeypatch.setattr(trainer, "make_optimizer", counting_optimizer)
    source, pixels = three_class_scene
    seen = []
    for recipe in (Recipe(), Recipe(min_steps=4)):
        steps.clear()
        classifier = build_classifier("hybridsn_2d3d", in_chans=4, num_classes=3, patch_size=9, seed=0)
        report = classifier.fit(source, pixels, None, settings=FitSettings(epochs=2, batch_size=256, lr=1e-3,
                                                                           seed=0, recipe=recipe))
        seen.append((report.batch_size, len(steps)))
    # 81 pixels: one step of 81 patches per epoch; min_steps 4: batches of ceil(81 / 4) = 21, 4 steps.
    assert seen == [(256, 2), (21, 8)]


def test_context_mix_keeps_each_centre_and_takes_the_surroundings_of_another_patch() -> None:
    x = torch.arange(6, dtype=torch.float32)[:, None, None, None].expand(6, 2, 7, 7).clone()  # patch i is all i
    mixed = augment_patches(x, torch.Generator().manual_seed(0), flips=False, context_mix=1.0)
    assert torch.equal(mixed[:, :, 2:5, 2:5], x[:, :, 2:5, 2:5])  # the centre 3 x 3 is the patch's own
    surroundings = mixed[:, 0, 0, 0]
    assert sorted(surroundings.tolist()) == list(range(6))  # a permutation of the batch's patches
    assert bool((mixed[:, :, 0] == surroundings[:, None, None]).all())  # the whole ring from that one patch
    again = augment_patches(x, torch.Generator().manual_seed(0), flips=False, context_mix=1.0)
    assert torch.equal(mixed, again)
    assert torch.equal(augment_patches(x, torch.Generator(), flips=False, context_mix=0.0), x)
    some = augment_patches(x, torch.Generator().manual_seed(1), flips=False, context_mix=0.5)
    assert torch.equal(some[:, :, 3, 3], x[:, :, 3, 3])


def test_an_estimator_records_only_the_parts_that_act_on_it() -> None:
    # A scikit-learn model has no epochs, batches or networks: only self-training and post-processing act on it.
    forest = resolve_recipe(RunConfig(model="random_forest", smooth=3))
    assert forest.ensemble is None and forest.min_steps is None and forest.select is None and forest.smooth == 3
    assert recipe_record(forest) == {"name": "steady", "self_training": 0, "pseudo_threshold": 0.9, "pseudo_ratio": 3.0,
                                     "smooth": 3, "val_ratio": 0.0}
    network = resolve_recipe(RunConfig(model="hybridsn"))
    assert network.ensemble == RECIPES.get("steady").ensemble and network.min_steps == 6
    assert recipe_of(forest) == recipe_of(dataclasses.replace(forest, model="hybridsn"))  # the recipe itself stands
