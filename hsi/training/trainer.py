"""The training loop: batches gathered (and augmented) on the device, the recipe's optimiser and schedule,
cross-entropy, optional validation."""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from tqdm.auto import tqdm

from hsi.data.patches import PatchSource
from hsi.training.batching import augment_patches, inference_batch_size, train_micro_batch
from hsi.training.crops import crop_windows
from hsi.training.recipe import Recipe, TrainingParts, lr_factor, make_optimizer
from hsi.training.seed import epoch_seed

log = logging.getLogger(__name__)


@dataclass
class PixelSet:
    """Pixels of one part of a split, as tensors on the patch source's device (shapes (N,))."""

    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass
class TrainState:
    """What a resumed run needs: the epoch reached, weights, optimiser, history, best weights."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float = float("inf")
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    #: the optimiser's state when :func:`fit` returned (not part of a resume point's training state:
    #: that saves the optimiser apart); :func:`fit` continues from it when called again with ``stop_epoch``.
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False)


#: Called after every epoch: ``(epoch, model, optimiser, state, last)``; ``last`` is true after the last epoch this
#: :func:`fit` call trains (its ``stop_epoch``, or the epoch its patience ran out).
EpochCallback = Callable[[int, nn.Module, torch.optim.Optimizer, TrainState, bool], None]


@functools.cache
def native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16); emulated, it is slower than float32."""
    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private: absent in some torch builds
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def training_precision(device: torch.device, cpu_bf16: bool = False) -> str:
    """What a training step on ``device`` computes in: ``bfloat16`` (CUDA; a CPU with ``cpu_bf16`` and native
    bfloat16) or ``float32``."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16 and native_cpu_bf16()):
        return "bfloat16"
    return "float32"


def autocast_for(device: torch.device, cpu_bf16: bool = False) -> AbstractContextManager[Any]:
    """bf16 mixed precision where :func:`training_precision` says so (no loss scaling needed); full precision
    elsewhere. Called without ``cpu_bf16`` (inference, batch-norm statistics), a CPU computes in float32."""
    if training_precision(device, cpu_bf16) == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, source: PatchSource, pixels: PixelSet, *, batch_size: int, cpu_bf16: bool = False
             ) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` (in eval mode) on ``pixels`` (``cpu_bf16``: as :func:`autocast_for`)."""
    model.eval()
    # Summed on the device: one host sync at the end, not two per batch.
    total_loss = torch.zeros((), device=source.device)
    correct = torch.zeros((), device=source.device, dtype=torch.long)
    for start in range(0, len(pixels), batch_size):
        stop = start + batch_size
        patches = source.gather(pixels.rows[start:stop], pixels.cols[start:stop])
        targets = pixels.targets[start:stop]
        with autocast_for(source.device, cpu_bf16):
            logits = model(patches)
        total_loss += nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        correct += (logits.argmax(1) == targets).sum()
    n = max(len(pixels), 1)
    return float(total_loss) / n, int(correct) / n


def fit(
    model: nn.Module, source: PatchSource, train: PixelSet, val: PixelSet | None = None, *,
    epochs: int, batch_size: int, lr: float, seed: int,
    state: TrainState | None = None, optimizer_state: dict[str, Any] | None = None,
    on_epoch_end: EpochCallback | None = None, progress: bool = True, micro_batch: int | None = None,
    recipe: Recipe | None = None, crops: bool = False, stop_epoch: int | None = None, desc: str = "train",
) -> TrainState:
    """Trains ``model`` in place for ``epochs`` epochs (continuing from ``state`` if given).

    Each epoch's batch order and dropout draw from a generator seeded by ``(seed, epoch)``,
    so a run resumed at epoch e repeats the uninterrupted run. With ``val`` the weights of
    the best epoch by the recipe's ``select`` are kept in ``state.best_state``; the model
    holds the last epoch's.

    Args:
        model: a network taking (N, C, p, p) patches and returning (N, K) logits.
        source: the patch source (its device is the training device).
        train: training pixels; val: validation pixels or None.
        epochs: total number of epochs (including those already done in ``state``).
        batch_size: patches per optimiser step.
        lr: base learning rate (the recipe scales it: ``lr_scale``, schedule).
        seed: the run's seed.
        state: a state to resume from; optimizer_state: the optimiser's saved state.
        on_epoch_end: called after every epoch (:data:`EpochCallback`; used to save resumable checkpoints).
        progress: show a progress bar.
        micro_batch: patches per forward/backward pass; gradients of the passes of one
            batch are summed, so each optimiser step still uses the batch's mean gradient.
            None picks it from the device (see :func:`hsi.training.batching.train_micro_batch`:
            the whole batch on CUDA, cache-sized passes on CPU).
        recipe: optimiser, schedule, label smoothing and augmentation (see
            :mod:`hsi.training.recipe`); None = ``paper`` (Adam at ``lr``, constant, none).
        crops: train on scene crops (:mod:`hsi.training.crops`: one dense pass per crop, the
            loss at its training pixels; same per-pixel gradients, neighbours share a step)
            instead of patch batches; needs a model with an exact dense pass and no augmentation.
        stop_epoch: stop after this epoch (None = ``epochs``); the schedule still spans ``epochs``,
            so a later call with the returned state goes on exactly as an uninterrupted run.
        desc: the progress bar's label (e.g. ``network 3/5``).

    Returns:
        The final :class:`TrainState`.
    """
    sizes = {"in_chans": source.n_channels, "patch_size": source.patch_size, "device": source.device}
    if micro_batch is None:
        micro_batch = train_micro_batch(model, batch_size=batch_size, **sizes)
    eval_batch = inference_batch_size(model, **sizes) if val is not None and len(val) else batch_size
    state = state or TrainState()
    recipe = recipe or Recipe()
    optimizer = make_optimizer(recipe.training, model.parameters(), lr)
    saved = optimizer_state if optimizer_state is not None else state.optimizer_state
    if saved is not None:
        optimizer.load_state_dict(saved)
    loop = _Loop(model, source, train, optimizer, recipe.training, recipe.selection.select, lr=lr, seed=seed,
                 epochs=epochs, batch_size=batch_size, micro_batch=micro_batch)
    step = _crop_step if crops else _patch_step
    stop = epochs if stop_epoch is None else min(stop_epoch, epochs)
    bar = tqdm(range(state.epoch, stop), desc=desc, unit="epoch", disable=not progress, leave=False,
               initial=state.epoch, total=epochs)
    # Early stopping only in training that runs to the last epoch: a stage that stops sooner (an ensemble's
    # screening) trains every one of its epochs.
    patience = recipe.selection.patience if stop == epochs else 0
    for epoch in bar:
        if patience_spent(state, patience):
            break
        started = time.perf_counter()
        row = _train_epoch(loop, epoch, step)
        if val is not None and len(val):
            _validate(loop, val, row, state, batch_size=eval_batch)
        row["seconds"] = time.perf_counter() - started
        state.history.append(row)
        state.epoch = epoch + 1
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
        log.info("epoch %d: %s", epoch + 1, row)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, model, optimizer, state, state.epoch == stop or patience_spent(state, patience))
    bar.close()
    state.optimizer_state = optimizer.state_dict()
    return state


def patience_spent(state: TrainState, patience: int) -> bool:
    """Whether a network's training stops early: ``patience`` epochs (> 0) have passed since its best
    validation epoch. Read from the state alone, so a resumed run stops where the uninterrupted one did."""
    return patience > 0 and state.best_epoch > 0 and state.epoch - state.best_epoch >= patience


@dataclass(frozen=True)
class _Loop:
    """What every epoch and optimiser step of one :func:`fit` call reads."""

    model: nn.Module
    source: PatchSource
    train: PixelSet
    optimizer: torch.optim.Optimizer
    training: TrainingParts  # the recipe's training stage
    select: str  # the recipe's model selection: how the kept epoch is ranked
    lr: float
    seed: int
    epochs: int
    batch_size: int
    micro_batch: int


@dataclass
class _Totals:
    """An epoch's summed training loss and count of correct pixels, kept on the device (no host sync per batch)."""

    loss: torch.Tensor
    correct: torch.Tensor

    def add(self, part_loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss += part_loss.detach()
        self.correct += (logits.detach().argmax(1) == targets).sum()


#: One optimiser step's forward and backward passes: ``step(loop, batch, generator, totals)``
#: (:func:`_patch_step` or :func:`_crop_step`); gradients accumulate in the model.
_Step = Callable[[_Loop, torch.Tensor, torch.Generator, _Totals], None]


def _train_epoch(loop: _Loop, epoch: int, step: _Step) -> dict[str, float]:
    """One epoch over the training pixels in the order drawn for ``(seed, epoch)``; its loss and accuracy row."""
    train, recipe, device = loop.train, loop.training, loop.source.device
    generator = torch.Generator().manual_seed(epoch_seed(loop.seed, epoch))
    torch.manual_seed(epoch_seed(loop.seed, epoch))  # dropout draws
    order = torch.randperm(len(train), generator=generator).to(device)
    loop.model.train()
    totals = _Totals(torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long))
    steps_per_epoch = -(-len(train) // loop.batch_size)
    for index, batch in enumerate(order.split(loop.batch_size)):
        if recipe.schedule != "constant":  # a function of the global step: a resumed run follows it too
            for group in loop.optimizer.param_groups:
                group["lr"] = loop.lr * recipe.lr_scale * lr_factor(recipe, epoch * steps_per_epoch + index,
                                                                    loop.epochs * steps_per_epoch)
        loop.optimizer.zero_grad(set_to_none=True)
        step(loop, batch, generator, totals)
        loop.optimizer.step()
    return {
        "epoch": epoch + 1,
        "train_loss": float(totals.loss) / len(train),
        "train_accuracy": int(totals.correct) / len(train),
    }


def _passes(batch: torch.Tensor, micro_batch: int) -> tuple[torch.Tensor, ...]:
    """Positions in ``batch`` of each forward/backward pass: equal slices (sizes differ by at most one).

    The sum of (pass loss sum / batch size) is the batch's mean loss, so the summed gradients of
    the passes are the batch gradient.
    """
    return torch.arange(len(batch), device=batch.device).tensor_split(-(-len(batch) // micro_batch))


def _loss_sum(logits: torch.Tensor, targets: torch.Tensor, recipe: TrainingParts) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.float(), targets, reduction="sum", label_smoothing=recipe.label_smoothing)


def _patch_step(loop: _Loop, batch: torch.Tensor, generator: torch.Generator, totals: _Totals) -> None:
    """A batch of patches, gathered (and augmented) pass by pass; each pass takes its own backward."""
    train, recipe = loop.train, loop.training
    for positions in _passes(batch, loop.micro_batch):
        part = batch[positions]
        targets = train.targets[part]
        patches = loop.source.gather(train.rows[part], train.cols[part])
        if recipe.augments:
            patches = augment_patches(patches, generator, flips=recipe.augment, jitter=recipe.jitter,
                                      context_mix=recipe.context_mix)
        with autocast_for(loop.source.device, loop.training.cpu_bf16):
            logits = loop.model(patches)
        part_loss = _loss_sum(logits, targets, recipe)
        (part_loss / len(batch)).backward()
        totals.add(part_loss, logits, targets)


def _crop_step(loop: _Loop, batch: torch.Tensor, generator: torch.Generator, totals: _Totals) -> None:
    """A batch on scene crops (:mod:`hsi.training.crops`): the convolutions run once for the whole batch and
    only the head runs per pass, on the same slices as :func:`_patch_step` so that dropout draws the same
    masks; their shared graph takes one backward."""
    train, recipe, device = loop.train, loop.training, loop.source.device
    with autocast_for(device, recipe.cpu_bf16):
        windows = crop_windows(loop.model, loop.source, train.rows[batch], train.cols[batch],
                               flips=generator if recipe.augment else None)
    crop_loss = torch.zeros((), device=device)
    for positions in _passes(batch, loop.micro_batch):
        targets = train.targets[batch[positions]]
        with autocast_for(device, recipe.cpu_bf16):
            logits = cast(Any, loop.model).forward_head(windows[positions])
        part_loss = _loss_sum(logits, targets, recipe)
        crop_loss = crop_loss + part_loss / len(batch)
        totals.add(part_loss, logits, targets)
    crop_loss.backward()


def _validate(loop: _Loop, val: PixelSet, row: dict[str, float], state: TrainState, *, batch_size: int) -> None:
    """Adds the validation loss and accuracy to the epoch's ``row``; keeps the weights when the epoch is the best."""
    row["val_loss"], row["val_accuracy"] = evaluate(loop.model, loop.source, val, batch_size=batch_size,
                                                         cpu_bf16=loop.training.cpu_bf16)
    if _improves(row, state, loop.select):
        state.best_val_loss, state.best_val_accuracy = row["val_loss"], row["val_accuracy"]
        state.best_epoch = int(row["epoch"])
        state.best_state = copy.deepcopy(loop.model.state_dict())


def best_epoch_row(history: list[dict[str, float]], select: str) -> dict[str, float] | None:
    """The row of the epoch :func:`fit` keeps under ``select`` among ``history``'s (the same rule,
    :func:`_improves`); None when no row has validation scores."""
    state, best = TrainState(), None
    for row in history:
        if "val_loss" in row and _improves(row, state, select):
            state.best_val_loss, state.best_val_accuracy, best = row["val_loss"], row["val_accuracy"], row
    return best


def _improves(row: dict[str, float], state: TrainState, select: str) -> bool:
    """Whether this epoch's validation ``row`` beats the best so far under ``select`` (see :class:`Recipe`)."""
    if select == "val_accuracy" and row["val_accuracy"] != state.best_val_accuracy:
        return row["val_accuracy"] > state.best_val_accuracy
    return row["val_loss"] < state.best_val_loss
