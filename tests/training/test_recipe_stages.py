"""The recipe by stage: training, model selection, composition and post-processing, each part in the stage
its option is declared with, and the one function that post-processes a class map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hsi._core.windows import window_majority
from hsi.config import RunConfig, run_options
from hsi.training.checkpoint import RunModel
from hsi.training.recipe import (
    ESTIMATOR_PARTS,
    PART_NAMES,
    RECIPE_STAGES,
    RECIPES,
    PostProcessing,
    Recipe,
    recipe_record,
    resolve_recipe,
)


def test_each_part_sits_in_the_stage_its_option_is_declared_with() -> None:
    by_stage = {stage: [f.name for f in dataclasses.fields(parts)] for stage, parts in RECIPE_STAGES.items()}
    assert sorted(name for names in by_stage.values() for name in names) == sorted(PART_NAMES)  # each part once
    for stage, names in by_stage.items():
        assert {run_options()[name].stage for name in names} == {stage}
    for parts in RECIPE_STAGES.values():  # a stage's defaults are the parts' off values, as Recipe()'s
        assert all(f.default == getattr(Recipe(), f.name) for f in dataclasses.fields(parts))


@pytest.mark.parametrize("name", RECIPES.names())
def test_the_stage_accessors_hold_the_recipes_values(name: str) -> None:
    recipe = RECIPES.get(name)
    stages = (recipe.training, recipe.selection, recipe.composition, recipe.post_processing)
    values = {k: v for stage in stages for k, v in dataclasses.asdict(stage).items()}
    assert values == recipe.parts()
    assert recipe.training.augments == recipe.augments and recipe.window(5) == recipe.post_processing.window(5)


def test_post_processing_is_the_majority_vote_of_its_window_and_nothing_without_one() -> None:
    labels = np.random.default_rng(0).integers(0, 4, (9, 11))
    voters = np.random.default_rng(1).random((9, 11)) > 0.3
    assert PostProcessing().apply(labels, n_classes=4) is labels
    assert PostProcessing(tta=True).apply(labels, n_classes=4) is labels  # tta acts on a network's patches
    smoothed = PostProcessing(smooth=3).apply(labels, n_classes=4, voters=voters)
    np.testing.assert_array_equal(smoothed, window_majority(labels, 3, n_classes=4, voters=voters))
    assert PostProcessing(smooth=5).margin == 2 and PostProcessing(smooth=5).window(7) == 11
    assert PostProcessing().margin == 0 and PostProcessing().window(7) == 7


@pytest.mark.parametrize(("config", "expected"), [
    ({"smooth": 5, "tta": None}, PostProcessing(smooth=5)),  # an estimator's config: tta does not act on it
    ({"smooth": 0, "tta": True}, PostProcessing(tta=True)),
    ({}, PostProcessing()),  # a run made before map smoothing or recipes existed
])
def test_a_checkpoints_post_processing_is_read_in_one_place(config: dict, expected: PostProcessing) -> None:
    model = RunModel(classifier_state={}, pca={}, denoiser=None, class_ids=(1,), class_names=("a",), palette=("#000",),
                     scene_name="s", n_bands=1, rgb_bands=(), wavelengths=None, pad_mode="reflect", config=config)
    assert model.post_processing == expected


def test_an_svm_records_no_part_that_never_acts_on_it() -> None:
    svm = resolve_recipe(RunConfig(model="svm", recipe="robust"))
    assert svm.tta is None and svm.ensemble is None and svm.select is None
    assert set(recipe_record(svm)) == {"name", *ESTIMATOR_PARTS, "val_ratio"}  # no tta, no network part
    assert set(ESTIMATOR_PARTS) == {"self_training", "pseudo_threshold", "pseudo_ratio", "smooth"}
    network = recipe_record(resolve_recipe(RunConfig(model="hybridsn", recipe="robust")))
    assert network["tta"] is True and set(network) == {"name", *PART_NAMES}
