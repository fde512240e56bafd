"""An ensemble of networks behind the one :class:`~hsi.training.classifier.Classifier` interface.

:class:`EnsembleClassifier` holds networks of one registered model trained from different seeds
(:func:`~hsi.training.classifier.member_seed`: initial weights, batch order, dropout) and
averages the softmax of those it keeps. The recipe's composition parts say how many it trains
and which it keeps (:class:`~hsi.training.recipe.Recipe`):

* ``ensemble``: how many networks may start.
* ``survivors``: how many train to the end (0 = all). Where the split draws validation pixels
  and ``screen`` is set (successive halving), every network trains the first ``screen`` share of
  the epochs and then only the ``survivors`` best on the validation pixels (highest accuracy,
  ties to the lower loss) train on: on a hard disjoint split a seed's network that misses a
  class mostly shows it early, and a network stopped there costs a fraction of one trained to
  the end. Otherwise there is nothing to rank on: the first ``survivors`` networks train and
  the others never start.
* ``member_margin``: of the networks trained to the end, those more than this far below the
  best on the validation pixels are dropped.
"""

from __future__ import annotations

from typing import Any

import torch

from hsi.data.patches import PatchSource
from hsi.training.classifier import (
    Classifier,
    FitReport,
    FitSettings,
    NetworkCallback,
    Resume,
    TorchClassifier,
    member_seed,
    networks_from_state,
)
from hsi.training.recipe import Recipe, screening_epoch
from hsi.training.trainer import PixelSet, best_epoch_row, evaluate

__all__ = ["EnsembleClassifier"]


class EnsembleClassifier(Classifier):
    """Networks of one model from different seeds; probabilities averaged over the kept ones.

    Attributes:
        members: every network, in seed order (``members[0]`` is seeded with the run's own seed).
        kept: indices into ``members`` of the networks whose probabilities are averaged.
    """

    kind = "ensemble"

    def __init__(self, members: list[TorchClassifier], kept: list[int] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one network.")
        first = members[0]
        super().__init__(first.name, in_chans=first.in_chans, num_classes=first.num_classes,
                         patch_size=first.patch_size)
        self.members = members
        self.kept = list(range(len(members))) if kept is None else list(kept)

    @classmethod
    def create(cls, name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device,
               seed: int, size: int) -> EnsembleClassifier:
        """``size`` new networks of model ``name``, member ``k`` seeded :func:`member_seed` ``(seed, k)``."""
        return cls([TorchClassifier.create(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                                           device=device, seed=member_seed(seed, k)) for k in range(size)])

    @property
    def networks(self) -> list[TorchClassifier]:
        """The kept networks, whose probabilities are averaged."""
        return [self.members[i] for i in self.kept]

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of every kept network together (what the saved model holds)."""
        return sum(network.n_parameters for network in self.networks)

    def fit(
        self, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: Resume | None = None, on_epoch_end: NetworkCallback | None = None,
    ) -> FitReport:
        """Trains the networks one after another as the recipe's composition parts say (module docstring).

        Returns:
            A report whose history holds every network's epochs (a ``network`` column, 1-based),
            whose ``selected_epoch`` is the first kept network's, and whose ``ensemble`` entry lists
            each network: seed, epochs trained, selected epoch, validation accuracy and loss, kept, seconds.
        """
        recipe = settings.recipe or Recipe()
        composition, select = recipe.composition, recipe.selection.select
        for index, member in enumerate(self.members):  # batch order, dropout, augmentation
            member.seed = member_seed(settings.seed, index)
        settings = self.members[0].fit_settings(source, train, settings)
        has_val = val is not None and len(val) > 0
        screen = screening_epoch(composition, settings.epochs, has_validation=has_val)
        saved = resume.networks if resume is not None else {}
        n = len(self.members)

        def train_to(index: int, epoch: int) -> None:
            self.members[index].train_until(
                epoch, source, train, val, settings=settings, progress=progress, resume=saved.get(index),
                on_epoch_end=on_epoch_end, index=index, desc=f"network {index + 1}/{n}")

        continuing = list(range(n))
        if screen is not None:
            for index in continuing:
                train_to(index, screen)
            ranked = sorted(continuing,
                            key=lambda i: _screening_rank(self.members[i].history[:screen], select, i))
            continuing = sorted(ranked[:composition.survivors])
        elif 0 < composition.survivors < n:  # nothing to rank on: the first networks, the others never start
            del self.members[composition.survivors:]
            continuing, n = list(range(composition.survivors)), composition.survivors
        for index in continuing:
            train_to(index, settings.epochs)
        selected = {index: self.members[index].finish(source, train, settings=settings) for index in continuing}
        scores: dict[int, tuple[float, float]] = {}
        self.kept = continuing
        if has_val and val is not None:
            batch_size = self.members[0].inference_batch_size(source)
            scores = {i: evaluate(self.members[i].network, source, val, batch_size=batch_size) for i in continuing}
            best = max(accuracy for _, accuracy in scores.values())
            self.kept = [i for i in continuing if scores[i][1] >= best - composition.member_margin - 1e-9]
        history = [{"network": index + 1, **row} for index, member in enumerate(self.members)
                   for row in member.history]
        networks = [self._network_record(i, selected.get(i), scores.get(i), select) for i in range(n)]
        record: dict[str, Any] = {"networks": networks, "kept": [i + 1 for i in self.kept]}
        if screen is not None:
            record["screen_epoch"] = screen
        if has_val:
            record["member_margin"] = composition.member_margin
            if recipe.selection.patience:
                record["patience"] = recipe.selection.patience
        return FitReport(history, selected[self.kept[0]], settings.train_input, settings.batch_size, record)

    def _network_record(self, index: int, selected: int | None, score: tuple[float, float] | None, select: str
                        ) -> dict[str, Any]:
        member = self.members[index]
        trained = member.training.epoch if member.training is not None else 0
        row: dict[str, Any] = {"network": index + 1, "seed": member.seed, "epochs": trained,
                               "selected_epoch": selected, "kept": index in self.kept, "seconds": member.seconds}
        if score is not None:
            row["val_loss"], row["val_accuracy"] = score
        elif (best := best_epoch_row(member.history, select)) is not None:  # stopped at screening: its best there
            row["val_accuracy"], row["val_loss"] = best["val_accuracy"], best["val_loss"]
        return row

    @torch.inference_mode()
    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The mean of the kept networks' probabilities, shape (N, K)."""
        return _mean([network.predict_proba(source, rows, cols) for network in self.networks])

    def inference_batch_size(self, source: PatchSource) -> int:
        # The networks run one after another on each batch: one network's activations at a time.
        return self.members[0].inference_batch_size(source)

    @property
    def receptive_field(self) -> int:
        return self.members[0].receptive_field

    @property
    def supports_dense(self) -> bool:
        return self.members[0].supports_dense

    def dense_batch_size(self, source: PatchSource, height: int, width: int) -> int:
        return self.members[0].dense_batch_size(source, height, width)

    @torch.inference_mode()
    def predict_proba_dense(self, tiles: torch.Tensor) -> torch.Tensor:
        return _mean([network.predict_proba_dense(tiles) for network in self.networks])

    def profile(self) -> dict[str, int | None]:
        """One network's MACs and activations (they run one after another), every kept network's parameters."""
        return {**self.members[0].profile(), "parameters": self.n_parameters}

    def continued(self) -> EnsembleClassifier:
        """The kept networks, each to train on from its weights (the ones not kept do not carry over)."""
        return EnsembleClassifier([network.continued() for network in self.networks])

    def state(self) -> dict[str, Any]:
        """The kept networks: the first as ``state_dict``, the others as ``members`` (as single networks are read)."""
        first, *others = self.networks
        state = first.state()
        if others:
            state["members"] = [network.network.state_dict() for network in others]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EnsembleClassifier:
        return cls(networks_from_state(state, device))


def _screening_rank(history: list[dict[str, float]], select: str, index: int) -> tuple[float, float, int]:
    """Sort key of a network at screening, from its epochs up to the screening epoch (so that a run resumed
    after screening ranks as it did): the validation accuracy and loss of the epoch it keeps by ``select``,
    the higher accuracy first, ties to the lower loss, then to the earlier network."""
    best = best_epoch_row(history, select)
    if best is None:
        return 0.0, float("inf"), index
    return -best["val_accuracy"], best["val_loss"], index


def _mean(probas: list[torch.Tensor]) -> torch.Tensor:
    return probas[0] if len(probas) == 1 else torch.stack(probas).mean(0)
