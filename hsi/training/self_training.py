"""Self-training: the scene's unlabelled pixels, labelled by the model itself, train it again.

Where labels are few, a split's training pixels can miss part of a class's spectra; the scene's other
pixels show that spread, labelled or not. Each round (a recipe's ``self_training``) the fitted model
labels the *candidate* pixels, keeps per class a seeded sample of its confident answers (probability at
least ``pseudo_threshold``, at most ``round x pseudo_ratio x`` the mean training pixels per class: every class
alike, so one the model under-predicts is not left further behind) as pseudo-labels, and the model's networks
train on from their weights (a new optimiser, new seeds for the batch order) for ``pseudo_epochs`` of the epochs,
on the training and pseudo-labelled pixels (validation pixels unchanged); a scikit-learn estimator, or
``pseudo_epochs`` 0, is fitted anew from new seeds (as accurate on the selection seeds, for twice the
training: docs/accuracy.md). A round whose model gets a class of the training pixels mostly wrong, where the
model before got it mostly right, is discarded and the rounds stop (:func:`lost_classes`): its pseudo-labels
taught it to forget what the labels say (seen with undertrained first models, sure of one class or a few:
the round's new model called nearly every pixel those classes; docs/accuracy.md). Which pixels are candidates is
the caller's choice (a run's ``--unlabelled``); only their positions in the patch source are read here,
never a label. Each round's networks keep resume points as the first model's do, under indices of their
own (:func:`round_network`), so an interrupted run continues in the round and network where it stopped;
the rounds before are rebuilt from their finished points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from hsi.data.patches import PatchSource
from hsi.training.classifier import Classifier, FitReport, FitSettings, NetworkCallback, Resume
from hsi.training.recipe import CompositionParts
from hsi.training.trainer import PixelSet

__all__ = ["lost_classes", "pseudo_labels", "round_network", "round_seed", "self_train"]

#: Seeds of round r's model are ``seed + r x ROUND_SEED_STEP`` (an ensemble's networks step by 1,000,003).
ROUND_SEED_STEP = 7_919


def round_seed(seed: int, round_index: int) -> int:
    """The seed of the model trained in self-training round ``round_index`` (0 = the run's own model)."""
    return seed + ROUND_SEED_STEP * round_index


def round_network(round_index: int, network: int, size: int) -> int:
    """The index under which network ``network`` of round ``round_index``'s model keeps its resume point: round
    r's ``size`` networks follow round r - 1's (0 .. size - 1 are the run's own model's)."""
    return round_index * size + network


def _round_resume(resume: Resume | None, round_index: int, size: int) -> Resume | None:
    """The saved points of round ``round_index``'s networks, by their index within the round."""
    if resume is None:
        return None
    first = round_network(round_index, 0, size)
    return Resume({i - first: point for i, point in resume.networks.items() if first <= i < first + size})


def _round_callback(callback: NetworkCallback | None, round_index: int, size: int) -> NetworkCallback | None:
    """``callback`` with each network's index within the round turned into its index in the run."""
    if callback is None:
        return None

    def shifted(network: int, epoch: int, model: Any, optimizer: Any, state: Any, stage_end: bool) -> None:
        callback(round_network(round_index, network, size), epoch, model, optimizer, state, stage_end)

    return shifted


def pseudo_labels(proba: torch.Tensor, *, quota: int, threshold: float, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, at most ``quota`` candidates predicted as that class with probability >= ``threshold``: a
    sample seeded by ``seed``, not the most confident (those saturate at 1.0, sit in the class's core and
    teach least; a sample spreads over the class's spectra and over the scene).

    Args:
        proba: (N, K) class probabilities of the candidates.

    Returns:
        ``(index, classes)``: (M,) indices into the candidates, in ascending order, and their predicted classes.
    """
    confidence, classes = proba.max(1)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(proba), generator=generator).to(proba.device)
    chosen = []
    for k in range(proba.shape[1]):
        eligible = order[(classes[order] == k) & (confidence[order] >= threshold)]
        chosen.append(eligible[:quota])
    index = torch.sort(torch.cat(chosen)).values if chosen else torch.zeros(0, dtype=torch.long)
    return index, classes[index]


def lost_classes(before: torch.Tensor, after: torch.Tensor, targets: torch.Tensor) -> list[int]:
    """The classes of the training pixels that a round's model lost: the model before got more than half of the
    class's training pixels right (``before``: (N,) its predicted classes), the round's model (``after``) at most
    half. ``targets``: (N,) the training pixels' classes."""
    lost = []
    for k in torch.unique(targets).tolist():
        mine = targets == k
        if 2 * int((before[mine] == k).sum()) > int(mine.sum()) >= 2 * int((after[mine] == k).sum()):
            lost.append(k)
    return lost


def _predicted_proba(classifier: Classifier, source: PatchSource, pixels: PixelSet) -> torch.Tensor:
    """(N, K) probabilities of ``pixels``, in inference-sized batches."""
    step = max(classifier.inference_batch_size(source), 1)
    parts = [classifier.predict_proba(source, pixels.rows[i:i + step], pixels.cols[i:i + step])
             for i in range(0, len(pixels), step)]
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def _predicted(classifier: Classifier, source: PatchSource, pixels: PixelSet) -> torch.Tensor:
    """(N,) the classes ``classifier`` predicts for ``pixels``, on the device of their targets."""
    return _predicted_proba(classifier, source, pixels).argmax(1).to(pixels.targets.device)


def _round_model(model: Classifier, build: Callable[[int], Classifier], seed: int, epochs: int, share: float
                 ) -> tuple[Classifier, int, bool]:
    """A round's model and its epochs: ``model``'s networks, to train on for ``share`` of ``epochs``; where
    ``share`` is 0 or nothing carries over (a scikit-learn estimator), ``build(seed)``'s new model for every epoch.
    The third value says which (True: continued)."""
    carried = model.continued() if share > 0 else None
    if carried is None:
        return build(seed), epochs, False
    return carried, max(1, round(share * epochs)), True


def self_train(
    first: Classifier, build: Callable[[int], Classifier], source: PatchSource, train: PixelSet,
    val: PixelSet | None, candidates: PixelSet, *, parts: CompositionParts, settings: FitSettings,
    num_classes: int, class_names: Sequence[str] | None = None, progress: bool = False, resume: Resume | None = None,
    on_epoch_end: NetworkCallback | None = None,
) -> tuple[Classifier, FitReport | None, dict[str, Any]]:
    """The rounds of self-training that follow the fitted ``first`` model.

    Args:
        first: the model fitted on ``train`` alone.
        build: ``build(seed)`` -> a new, unfitted model of the same kind (a round where nothing carries over).
        candidates: the pixels that may be pseudo-labelled (their ``targets`` are never read).
        class_names: the classes' names, for the record's words (None: their indices).
        settings: how ``first`` was fitted; each round fits with its own seed (:func:`round_seed`).
        resume: the run's saved points: a round's networks continue from theirs (:func:`round_network`).
        on_epoch_end: the run's resume saver, called with each network's index in the run.

    Returns:
        The last model kept, its fit report (None when no round was kept: ``first`` stays) and a record: per
        round the pseudo-labels per class, their least probability, whether its model continued the one before
        (and for how many epochs), whether it was kept and its seconds,
        and why the rounds stopped early (``stopped``; None when every round was kept).
    """
    model, report = first, None
    mean_per_class = len(train) / max(num_classes, 1)
    size = max(parts.ensemble, 1)  # networks per model: each round's take the next block of indices
    rounds, stopped = [], None
    for r in range(1, parts.self_training + 1 if len(candidates) else 1):  # no candidate: nothing to learn
        started = time.perf_counter()
        quota = math.ceil(r * parts.pseudo_ratio * mean_per_class)
        proba = _predicted_proba(model, source, candidates)
        index, classes = pseudo_labels(proba, quota=quota, threshold=parts.pseudo_threshold,
                                       seed=round_seed(settings.seed, r))
        lost: list[int] = []
        continued, epochs = False, 0
        if len(index):  # else nothing is confident enough: a new model would learn what this one did
            grown = PixelSet(torch.cat([train.rows, candidates.rows[index]]),
                             torch.cat([train.cols, candidates.cols[index]]),
                             torch.cat([train.targets, classes.to(train.targets.device)]))
            round_model, epochs, continued = _round_model(model, build, round_seed(settings.seed, r),
                                                          settings.epochs, parts.pseudo_epochs)
            round_settings = replace(settings, seed=round_seed(settings.seed, r), epochs=epochs,
                                     stage=f"round {r}/{parts.self_training}, ")
            round_report = round_model.fit(source, grown, val, settings=round_settings,
                                           progress=progress, resume=_round_resume(resume, r, size),
                                           on_epoch_end=_round_callback(on_epoch_end, r, size))
            lost = lost_classes(_predicted(model, source, train), _predicted(round_model, source, train),
                                train.targets)
            if not lost:
                model, report = round_model, round_report
        kept = bool(len(index)) and not lost
        rounds.append({"round": r, "pseudo_labels": len(index), "continued": continued,
                       "epochs": epochs if continued else None,
                       "per_class": torch.bincount(classes, minlength=num_classes).tolist(),
                       "least_probability": float(proba.max(1).values[index].min()) if len(index) else None,
                       "quota_per_class": quota, "kept": kept, "seconds": time.perf_counter() - started})
        if not kept:  # the model is unchanged, so a further round would draw from the same answers
            before = "the first model" if r == 1 else f"round {r - 1}'s model"
            if lost:
                names = ", ".join(class_names[k] if class_names else str(k) for k in lost)
                why = (f"its model got at most half of the training pixels of {names} right, where {before} got "
                       "more than half")
            else:
                why = f"no candidate pixel is predicted with probability >= {parts.pseudo_threshold:g}"
            stopped = f"round {r} was not kept ({why}); the rounds stopped and {before} is kept"
            break
    record = {"rounds": rounds, "candidates": len(candidates), "threshold": parts.pseudo_threshold,
              "ratio": parts.pseudo_ratio, "stopped": stopped}
    return model, report, record
