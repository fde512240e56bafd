"""New and saved classifiers of any kind: :func:`build_classifier` and :func:`classifier_from_state`.

Nothing above ``training/`` asks which kind a model is: a torch network, an ensemble of
networks (a recipe's ``ensemble`` above 1) or a scikit-learn estimator all come from here as a
:class:`~hsi.training.classifier.Classifier`.
"""

from __future__ import annotations

from typing import Any

import torch

from hsi.models import MODELS
from hsi.training.classifier import Classifier, SklearnClassifier, TorchClassifier
from hsi.training.ensemble import EnsembleClassifier
from hsi.training.recipe import Recipe

__all__ = ["build_classifier", "classifier_from_state"]


def build_classifier(
    name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device | str = "cpu",
    seed: int | None = None, recipe: Recipe | None = None,
) -> Classifier:
    """A new, unfitted classifier of the registered model ``name``.

    Args:
        name: registry key, e.g. ``"hybridsn"`` or ``"svm"``.
        in_chans: input bands C (after PCA); num_classes: classes K; patch_size: odd patch side p.
        device: where a network lives.
        seed: seeds the initial weights (torch) or ``random_state`` (scikit-learn); None = the
            global torch generator (seed it with :func:`hsi.training.seed.seeded_run`).
        recipe: a recipe whose ``ensemble`` is above 1 makes a network model an
            :class:`~hsi.training.ensemble.EnsembleClassifier` of that many networks (an
            estimator stays one estimator: the network parts do not apply to it).

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: the model does not accept these sizes.
    """
    where = torch.device(device)
    if MODELS.get(name).kind == SklearnClassifier.kind:
        return SklearnClassifier.create(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                                        device=where, seed=seed)
    size = recipe.composition.ensemble if recipe is not None else 1
    if size > 1:
        return EnsembleClassifier.create(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                                         device=where, seed=seed or 0, size=size)
    return TorchClassifier.create(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                                  device=where, seed=seed)


def classifier_from_state(state: dict[str, Any], device: torch.device | str = "cpu") -> Classifier:
    """Rebuilds the fitted classifier a checkpoint describes (its ``model`` entry names the model).

    A network checkpoint with ``members`` (an ensemble's other networks) becomes an
    :class:`~hsi.training.ensemble.EnsembleClassifier`.

    Raises:
        UnknownNameError: the checkpoint names a model this version does not have.
        CheckpointError: the weights do not fit the model, or the estimator is unreadable or foreign.
    """
    device = torch.device(device)
    if MODELS.get(str(state["model"]["name"])).kind == SklearnClassifier.kind:
        return SklearnClassifier.from_state(state, device)
    if state.get("members"):
        return EnsembleClassifier.from_state(state, device)
    return TorchClassifier.from_state(state, device)
