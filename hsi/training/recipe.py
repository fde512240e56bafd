"""Training recipes: named sets of training choices, each part its own setting.

A :class:`Recipe` says how a network is trained and how its answers are read out: the
optimiser and its weight decay, the learning-rate schedule, label smoothing, augmentation
of the training batches (the 8 flips/90-degree rotations of a patch and a spectral jitter),
the share of the training pixels held out to pick the epoch, test-time augmentation, the
number of ensemble members and a majority-vote smoothing of the map. :data:`RECIPES` holds
them by ``--recipe`` name:

* ``paper``: the HybridSN paper's protocol (Roy et al. 2020), exactly as before recipes
  existed: Adam at the run's ``--lr``, a fixed number of epochs, no augmentation, the last
  epoch's weights (unless the split draws validation pixels, as ``--split disjoint`` does).
* ``steady``: ``paper`` with at least 6 optimiser steps per epoch (``min_steps``: a few hundred
  training pixels in batches of 256 take 2 steps an epoch, too few for some networks to
  converge) and the mean of 2 networks from different seeds (``survivors``). Where the split
  draws validation pixels (the disjoint split) 5 networks start (``ensemble``), each trains a
  fifth of the epochs (``screen``), and the 2 best on the validation pixels train on (successive
  halving: on a hard split one seed's network misses a class that another's gets, and mostly
  shows it early); each keeps its epoch of highest validation accuracy rather than lowest
  validation loss (``select``: the loss picked networks of epoch 2-4 that miss whole classes),
  and only those within 2 points of the best there are kept (``member_margin``); a network that
  goes on stops once 5 epochs pass without a better validation score (``patience``: the same
  accuracy on the selection seeds, a third fewer network-epochs on disjoint-10). It costs 2
  networks' training, about 1.7-2.1 with validation pixels (5 networks trained to the end before).
  Flips of the training patches and at inference (``augment``,
  ``tta``) were measured on top and left out: no gain beyond the seed spread, 8x the inference
  (docs/accuracy.md).
* ``robust``: AdamW with weight decay, linear warm-up then cosine decay, label smoothing,
  flips/rotations and spectral jitter inside the batch gather, and the epoch of lowest
  validation loss on a stratified hold-out of the training pixels, test-time flips/rotations,
  and at least 8 steps per epoch.

The default recipe is ``RunConfig.recipe``'s default, ``steady`` (measured against ``paper`` in
docs/accuracy.md: on the disjoint split it removes two thirds to three quarters of ``paper``'s
error on each of three sets of 10 seeds; on the per-class splits a higher mean, not the halved
error the issue asked for; every backbone converges; ``robust`` fell behind). Every part is also a
:class:`~hsi.config.RunConfig` field (None there = the recipe's value),
so ``--recipe robust --no-augment`` is the recipe minus one part; :func:`resolve_recipe`
writes the values used back into the config, so ``config.json`` reproduces the run.

The parts fall into four stages, each the stage its option is declared with
(:data:`RECIPE_STAGES`), each read as one object by the code that acts on it: training
(:class:`TrainingParts`, the training loop), model selection (:class:`SelectionParts`, the kept
epoch), composition (:class:`CompositionParts`, the ensemble) and post-processing
(:class:`PostProcessing`: test-time flips in the network classifier, and the map's majority vote,
applied by :meth:`PostProcessing.apply` alone, under ``train``, ``predict`` and tiled prediction).

This module imports no torch (the CLI's ``--help`` reads its names); the torch parts are
:func:`hsi.training.batching.augment_patches` and :func:`make_optimizer`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from hsi._core.errors import ConfigError
from hsi._core.registry import Registry
from hsi._core.validation import is_smoothing_window
from hsi._core.windows import window_majority
from hsi.config import run_options

if TYPE_CHECKING:
    import torch
    from _typeshed import DataclassInstance

    from hsi.config import RunConfig

__all__ = [
    "ESTIMATOR_PARTS", "MIN_BATCH", "OPTIMIZERS", "PART_NAMES", "RECIPES", "RECIPE_STAGES", "SCHEDULES", "SELECTIONS",
    "CompositionParts", "PostProcessing", "Recipe", "SelectionParts", "TrainingParts",
    "applied_parts", "check_recipe", "decision_window", "is_smoothing_window", "lr_factor", "make_optimizer",
    "recipe_line", "recipe_of",
    "recipe_record", "register_recipe", "resolve_recipe", "screening_epoch", "train_batch_size",
]


def _constant(progress: float, warmup: float) -> float:
    return 1.0


def _cosine(progress: float, warmup: float) -> float:
    """Linear warm-up from 0 over the first ``warmup`` of training, then cosine decay to 0."""
    if progress < warmup:
        return (progress + 1e-3) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / max(1.0 - warmup, 1e-9)))


def _onecycle(progress: float, warmup: float) -> float:
    """One cycle (Smith 2018, torch's OneCycleLR shape): cosine up from 1/25 over ``warmup``, cosine down to ~0."""
    start, end = 1.0 / 25.0, 1e-4
    if progress < warmup:
        return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * progress / warmup))
    t = (progress - warmup) / max(1.0 - warmup, 1e-9)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t))


#: Learning-rate schedules by ``--schedule`` name: ``factor(progress, warmup)`` with progress in [0, 1).
SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "constant": _constant,
    "cosine": _cosine,
    "onecycle": _onecycle,
}
#: Optimisers by ``--optimizer`` name (built by :func:`make_optimizer`).
OPTIMIZERS = ("adam", "adamw")
#: How the kept epoch is ranked where there are validation pixels, by ``--select`` name.
SELECTIONS = ("val_loss", "val_accuracy")


#: Each part's value that does nothing (the ``paper`` recipe's), declared with its option (``RunConfig``).
_OFF: dict[str, Any] = {name: declared.off for name, declared in run_options().items() if declared.recipe_part}


@dataclass(frozen=True)
class TrainingParts:
    """The training stage's parts: how the optimiser steps (see :class:`Recipe` for each part)."""

    optimizer: str = _OFF["optimizer"]
    lr_scale: float = _OFF["lr_scale"]
    weight_decay: float = _OFF["weight_decay"]
    schedule: str = _OFF["schedule"]
    warmup: float = _OFF["warmup"]
    label_smoothing: float = _OFF["label_smoothing"]
    augment: bool = _OFF["augment"]
    jitter: float = _OFF["jitter"]
    context_mix: float = _OFF["context_mix"]
    min_steps: int = _OFF["min_steps"]
    cpu_bf16: bool = _OFF["cpu_bf16"]

    @property
    def augments(self) -> bool:
        """Whether training patches are transformed one by one (flips, jitter, context mix)."""
        return self.augment or self.jitter > 0 or self.context_mix > 0


@dataclass(frozen=True)
class SelectionParts:
    """The model-selection stage's parts: the validation hold-out and how the kept epoch is ranked on it."""

    val_ratio: float = _OFF["val_ratio"]
    select: str = _OFF["select"]
    patience: int = _OFF["patience"]


@dataclass(frozen=True)
class CompositionParts:
    """The composition stage's parts: how many networks train, screen and are kept (an ensemble), and the
    rounds of self-training that train the model again on pseudo-labelled pixels."""

    ensemble: int = _OFF["ensemble"]
    screen: float = _OFF["screen"]
    survivors: int = _OFF["survivors"]
    member_margin: float = _OFF["member_margin"]
    self_training: int = _OFF["self_training"]
    pseudo_threshold: float = _OFF["pseudo_threshold"]
    pseudo_ratio: float = _OFF["pseudo_ratio"]
    pseudo_epochs: float = _OFF["pseudo_epochs"]


@dataclass(frozen=True)
class PostProcessing:
    """The post-processing stage's parts: test-time flips/rotations (applied by a network classifier to its
    patches, :attr:`hsi.training.classifier.NetworkClassifier.tta`) and the majority vote on the class map
    (:meth:`apply`, the one function that smooths a map: in ``train``, ``predict`` and tiled prediction)."""

    tta: bool = _OFF["tta"]
    smooth: int = _OFF["smooth"]

    @property
    def margin(self) -> int:
        """The pixels the majority vote reads beyond a pixel, on each side (0 = no smoothing)."""
        return self.smooth // 2

    def window(self, patch_size: int) -> int:
        """The side of the window a pixel's class is read from: the patch, widened by map smoothing."""
        return decision_window(patch_size, self.smooth)

    def apply(self, labels: np.ndarray, *, n_classes: int, voters: np.ndarray | None = None) -> np.ndarray:
        """``labels`` (H, W) class indices after the map's post-processing: each pixel the most frequent class
        of the ``smooth x smooth`` window around it, among ``voters`` (None = all); unchanged where ``smooth`` is 0."""
        if not self.smooth:
            return labels
        return window_majority(labels, self.smooth, n_classes=n_classes, voters=voters)


#: The recipe's stages by the :data:`hsi._core.options.STAGES` name its options are declared with.
StageT = TypeVar("StageT", bound="DataclassInstance")  # one of the stages' dataclasses


class _Stage(Generic[StageT]):
    """A recipe's attribute that reads one stage's parts (``recipe.training`` -> :class:`TrainingParts`)."""

    def __init__(self, stage: type[StageT]) -> None:
        self.stage = stage

    def __get__(self, recipe: Recipe, owner: type | None = None) -> StageT:
        return recipe.stage(self.stage)


RECIPE_STAGES: dict[str, type] = {"training": TrainingParts, "selection": SelectionParts,
                                  "ensemble": CompositionParts, "post-processing": PostProcessing}


@dataclass(frozen=True)
class Recipe(PostProcessing, CompositionParts, SelectionParts, TrainingParts):
    """How a network is trained and read out; every field is a part, settable alone.

    Each part is declared once, as a :class:`~hsi.config.RunConfig` option (its type, range, help and
    ``off`` value, which is the default here: ``Recipe()`` is the ``paper`` recipe), and belongs to one
    stage class, whose fields a recipe inherits: flat (the names of the flags, config.json and
    checkpoints), in stage order; :attr:`training`, :attr:`selection`, :attr:`composition` and
    :attr:`post_processing` give them by stage.

    Attributes:
        optimizer: ``adam`` or ``adamw`` (:data:`OPTIMIZERS`).
        lr_scale: the peak learning rate is ``lr_scale`` times the run's ``--lr`` (a schedule
            that decays needs a higher peak for the same progress in few steps).
        weight_decay: decoupled weight decay (AdamW) or L2 (Adam); 0 = none.
        schedule: learning-rate schedule (:data:`SCHEDULES`), per optimiser step.
        warmup: share of the optimiser steps spent warming up (cosine, onecycle).
        label_smoothing: cross-entropy label smoothing of the training loss.
        augment: draw one of the 8 flips/90-degree rotations for every training patch.
        jitter: spectral jitter of training patches: per-patch brightness scale ~ N(1, jitter)
            and additive Gaussian noise of standard deviation ``jitter / 2`` (the PCA features'
            overall standard deviation is 1); 0 = none.
        context_mix: share of the training patches whose surroundings (all but the centre
            3 x 3) are replaced by those of another patch of the batch, so that the label has to
            be read from the centre: against learning the look of the few training fields, which
            spatially disjoint test ground does not share; 0 = none.
        val_ratio: share of each class's training pixels held out to pick the epoch (``select``),
            where the run gives no ``--val-ratio`` (``--split disjoint`` keeps its own spatially
            disjoint validation blocks); 0 = the last epoch.
        select: how that epoch is picked (:data:`SELECTIONS`): ``val_loss``, the lowest
            validation loss; ``val_accuracy``, the highest validation accuracy, ties to the lower
            loss. On spatially disjoint validation ground the loss can rise from a few confident
            errors after epoch 3 or 4 while the accuracy still climbs; the loss then keeps an
            undertrained network.
        patience: a network whose validation score (by ``select``) has not improved for this many
            epochs stops there and keeps its best epoch (:func:`hsi.training.trainer.patience_spent`);
            counted only in the training that runs to the last epoch (an ensemble's screening always
            runs its epochs); 0 = every epoch trains.
        tta: at inference, the mean softmax over the 8 flips/rotations of each patch.
        ensemble: networks trained from different seeds; their probabilities are averaged
            (:class:`~hsi.training.ensemble.EnsembleClassifier`).
        screen: where there are validation pixels and ``survivors`` is below ``ensemble``, every
            network trains this share of the epochs, then only the ``survivors`` best on the
            validation pixels train on (successive halving); 0 = no screening.
        survivors: how many networks train to the end (0 = all): after screening the best there,
            otherwise the first (nothing to rank on: the others never start).
        member_margin: where there are validation pixels, the ensemble keeps only the networks whose
            validation accuracy is at most this far below the best network's (a fraction; 1 = keep
            every network). On a hard disjoint split one seed's network can miss most of a class
            that another's gets; averaging their probabilities then costs the good network points.
        self_training: rounds of self-training (:mod:`hsi.training.self_training`; 0 = off): the fitted
            model labels the scene's unlabelled pixels (which ones: the run's ``--unlabelled``), keeps per
            class a seeded sample of its confident answers as pseudo-labels and the model's networks train on
            (``pseudo_epochs``) on the training and pseudo-labelled pixels.
        pseudo_threshold: the least probability a pseudo-label needs.
        pseudo_ratio: pseudo-labels added per class each round, in mean training pixels per class (all
            classes alike, so a class the model under-predicts is not left further behind).
        pseudo_epochs: each round trains the model's networks on, from their weights, for this share of the
            epochs (a new optimiser, new seeds for batch order); 0 = new networks from new seeds, every epoch
            (what rounds did before 2026-12-06 night: as accurate on the selection seeds, twice the training).
            A scikit-learn estimator is fitted anew either way.
        min_steps: at least this many optimiser steps per epoch: with few training pixels the
            batch shrinks to ``ceil(n_train / min_steps)`` patches (never below
            :data:`MIN_BATCH`), so a small training set still takes enough steps for the
            schedule to do its work, for the same patches per epoch; 0 = the run's batch size.
        cpu_bf16: train (forward, backward, validation) in bfloat16 autocast on a CPU with native
            bfloat16 (:func:`hsi.training.trainer.native_cpu_bf16`; float32 elsewhere). Weights,
            optimiser and batch-norm statistics stay float32, and prediction on a CPU is float32,
            so a checkpoint predicts the same on any CPU. CUDA trains in bfloat16 whatever this says.
        smooth: after the scene is classified, each pixel takes the most frequent class of the
            ``smooth x smooth`` window around it (majority vote; odd, 0 = off). A pixel's class then
            reads a window of ``patch + smooth - 1`` pixels: the disjoint split's guard band and the
            leakage audit widen to it (:meth:`window`).
    """

    def stage(self, stage: type[StageT]) -> StageT:
        """This recipe's values of the parts of ``stage`` (one of :data:`RECIPE_STAGES`)."""
        return stage(**{f.name: getattr(self, f.name) for f in dataclasses.fields(stage)})

    # Each stage is read by the one place that acts on it: the training loop, where the kept epoch is picked,
    # the ensemble (and self-training), the map's post-processing.
    training = _Stage(TrainingParts)
    selection = _Stage(SelectionParts)
    composition = _Stage(CompositionParts)
    post_processing = _Stage(PostProcessing)

    def parts(self) -> dict[str, Any]:
        """The recipe's settings, by field name (what config.json, metrics.json and report.md show)."""
        return dataclasses.asdict(self)


#: The names of a recipe's parts, in order: the :class:`~hsi.config.RunConfig` fields that override them.
PART_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Recipe))

#: Every recipe, by its ``--recipe`` name; the CLI's choices and messages come from here.
RECIPES: Registry[Recipe] = Registry[Recipe]("training recipe (--recipe)")


def register_recipe(name: str, recipe: Recipe, description: str) -> Recipe:
    """Registers ``recipe`` as ``--recipe name``, with one line of help."""
    return RECIPES.register(name, recipe, description)


register_recipe("paper", Recipe(),
                "the HybridSN paper's: Adam, fixed epochs, no augmentation, last epoch's weights")
register_recipe(
    "steady",
    Recipe(min_steps=6, ensemble=5, screen=0.2, survivors=2, select="val_accuracy", patience=5, member_margin=0.02),
    "paper's optimiser and epochs, at least 6 optimiser steps per epoch (smaller batches when labels are "
    "few), the mean of 2 networks from different seeds; where the split draws validation pixels, 5 networks "
    "train a fifth of the epochs and the 2 best there train on until 5 epochs pass without a better validation "
    "score, each keeps its epoch of highest validation accuracy, and only the networks within 2 points of the "
    "best there are kept",
)
register_recipe(
    "robust",
    Recipe(optimizer="adamw", weight_decay=1e-2, schedule="cosine", warmup=0.1, label_smoothing=0.1,
           augment=True, jitter=0.1, val_ratio=0.2, tta=True, ensemble=1, min_steps=8),
    "AdamW + weight decay, warm-up + cosine, label smoothing, flips/rotations + spectral jitter, "
    "epoch of lowest validation loss on a hold-out of the training pixels, test-time flips/rotations, "
    "at least 8 steps per epoch",
)


def decision_window(patch_size: int, smooth: int) -> int:
    """The side of the window a pixel's class reads: a ``patch_size`` patch, widened by a ``smooth`` majority vote."""
    return patch_size + smooth - 1 if smooth else patch_size


def check_recipe(recipe: Recipe) -> None:
    """Checks every part against its declaration and its registered choices; raises :class:`ConfigError`
    naming the flag."""
    for name, value in recipe.parts().items():
        run_options()[name].validate(value)
    for flag, value, allowed in (("--optimizer", recipe.optimizer, OPTIMIZERS), ("--select", recipe.select, SELECTIONS),
                                 ("--schedule", recipe.schedule, tuple(SCHEDULES))):
        if value not in allowed:
            raise ConfigError(f"{flag} must be one of {', '.join(allowed)}; got {value!r}.")
    if not 0 <= recipe.survivors <= recipe.ensemble:
        raise ConfigError(f"--survivors must be between 0 (all: no screening) and --ensemble ({recipe.ensemble}); "
                          f"got {recipe.survivors}.")


def screening_epoch(recipe: CompositionParts | Recipe, epochs: int, *, has_validation: bool) -> int | None:
    """The epoch after which an ensemble keeps only its ``survivors`` best networks; None: no screening.

    Screening needs validation pixels to rank on, fewer survivors than networks and a ``screen``
    share that leaves at least one epoch before and after it.
    """
    if not has_validation or recipe.screen <= 0 or not 0 < recipe.survivors < recipe.ensemble:
        return None
    epoch = max(1, round(recipe.screen * epochs))
    return epoch if epoch < epochs else None


def recipe_of(config: RunConfig) -> Recipe:
    """The config's recipe with every part the config sets (not None) in place of the recipe's own.

    Raises:
        UnknownNameError: unknown ``config.recipe`` (the message lists the recipes).
        ConfigError: a part out of range.
    """
    base = RECIPES.get(config.recipe)
    given = {name: getattr(config, name) for name in PART_NAMES if name != "val_ratio"}
    recipe = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    check_recipe(recipe)
    return recipe


#: The parts that act on a scikit-learn estimator (no epochs, batches or networks), as declared
#: (``option(..., estimator=True)``): self-training and the map's smoothing.
ESTIMATOR_PARTS = tuple(name for name, declared in run_options().items() if declared.recipe_part and declared.estimator)


def applied_parts(config: RunConfig) -> tuple[str, ...]:
    """The recipe parts that act on the config's model: every part for a network, :data:`ESTIMATOR_PARTS` else."""
    from hsi.models import MODELS  # here, not at the top: the CLI's --help reads this module without torch

    return PART_NAMES if MODELS.get(config.model).kind == "torch" else ESTIMATOR_PARTS


def resolve_recipe(config: RunConfig) -> RunConfig:
    """``config`` with every recipe part that acts on its model filled in (and ``val_ratio`` where it was
    None), as config.json shows them; a part that does not act on it (an estimator's network parts) stays None.

    The validation hold-out follows the split: a disjoint split keeps its own default
    (spatially disjoint blocks, :data:`hsi.config.DISJOINT_VAL_RATIO`); the other splits hold
    out the recipe's ``val_ratio`` of each class's training pixels.
    """
    recipe = recipe_of(config)
    applied = applied_parts(config)
    parts: dict[str, Any] = {k: v if k in applied else None for k, v in recipe.parts().items() if k != "val_ratio"}
    val_ratio = config.val_ratio
    if val_ratio is None:
        val_ratio = config.resolved_val_ratio if config.split == "disjoint" else recipe.val_ratio
    return dataclasses.replace(config, val_ratio=val_ratio, **parts)


def lr_factor(recipe: TrainingParts | Recipe, step: int, total_steps: int) -> float:
    """The schedule's multiplier of the learning rate at optimiser step ``step`` of ``total_steps``."""
    return SCHEDULES[recipe.schedule](step / max(total_steps, 1), recipe.warmup)


#: The smallest batch :attr:`Recipe.min_steps` shrinks to (batch-norm statistics need a few patches).
MIN_BATCH = 16


def train_batch_size(recipe: TrainingParts | Recipe, batch_size: int, n_train: int) -> int:
    """Patches per optimiser step for ``n_train`` training pixels: ``batch_size``, shrunk by ``min_steps``."""
    if recipe.min_steps <= 0 or n_train <= 0:
        return batch_size
    return max(min(batch_size, -(-n_train // recipe.min_steps)), min(MIN_BATCH, batch_size))


def make_optimizer(recipe: TrainingParts | Recipe, parameters: Iterable[torch.nn.Parameter],
                   lr: float) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``parameters`` at the peak learning rate ``lr * recipe.lr_scale``."""
    import torch

    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr * recipe.lr_scale, weight_decay=recipe.weight_decay)
    return torch.optim.Adam(parameters, lr=lr * recipe.lr_scale, weight_decay=recipe.weight_decay)


def recipe_record(config: RunConfig) -> dict[str, Any]:
    """The recipe a (resolved) config trains with: its name and every part that acts on its model, with the
    validation ratio used."""
    applied = (*applied_parts(config), "val_ratio")
    parts = {k: v for k, v in recipe_of(config).parts().items() if k in applied}
    return {"name": config.recipe, **parts, "val_ratio": config.resolved_val_ratio}


def recipe_line(record: dict[str, Any]) -> str:
    """One line for report.md: ``robust (optimizer adamw, weight decay 0.01, ...)``."""
    parts = ", ".join(f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
                      for k, v in record.items() if k != "name")
    return f"{record['name']} ({parts})"
