"""One interface for every kind of model: ``fit``, ``predict_proba``, ``state`` / ``from_state``.

A :class:`Classifier` wraps what the model registry builds (a torch network on patches, or a
scikit-learn estimator on centre-pixel spectra), so that the steps of a run, the profiler and
``predict`` never ask which kind they hold. :func:`build_classifier` makes a new one from a
registered name; :func:`classifier_from_state` rebuilds a fitted one from a checkpoint's
entries. A state is tensors and plain data only: torch weights as tensors, a scikit-learn
estimator as skops bytes, loaded with an explicit list of trusted types; no pickled code.
"""

from __future__ import annotations

import abc
import copy
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from hsi._core.errors import CheckpointError, ConfigError, HSIError
from hsi._core.memory import check_fits_in_memory, format_bytes
from hsi.data.patches import PatchSource
from hsi.models import create_model, profile_model
from hsi.training.batching import DIHEDRAL, activation_bytes_per_patch, dihedral, inference_batch_size
from hsi.training.batchnorm import recalibrate_batchnorm
from hsi.training.crops import use_crops
from hsi.training.estimator_checks import SKOPS_TRUSTED_TYPES
from hsi.training.recipe import Recipe, train_batch_size
from hsi.training.trainer import EpochCallback, PixelSet, TrainState, autocast_for, fit

__all__ = [
    "Classifier",
    "FitReport",
    "FitSettings",
    "NetworkCallback",
    "NetworkResume",
    "Resume",
    "SklearnClassifier",
    "SKOPS_TRUSTED_TYPES",
    "TorchClassifier",
    "member_seed",
    "networks_from_state",
]


@dataclass(frozen=True)
class FitSettings:
    """How to fit: epochs, batch size and learning rate (networks), the run's seed and the recipe (None = paper)."""

    epochs: int
    batch_size: int
    lr: float
    seed: int
    recipe: Recipe | None = None
    train_input: str = "auto"  # auto | patches | crops (hsi.config.TrainInput)
    stage: str = ""  # what the progress bars name before the network, e.g. "round 1/2, " (self-training)


@dataclass
class NetworkResume:
    """Where one network's interrupted training continues: weights, optimiser state and training state."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None  # None: the network had trained all its epochs
    state: TrainState


@dataclass
class Resume:
    """Where an interrupted fit continues: the saved point of each network, by index (0 = the run's own)."""

    networks: dict[int, NetworkResume] = field(default_factory=dict)


#: Called after every epoch of a network: ``(network index, epoch, network, optimiser, state, stage_end)``;
#: ``stage_end`` is true after the last epoch a network trains before another one takes over (or it is done).
NetworkCallback = Callable[[int, int, nn.Module, torch.optim.Optimizer, TrainState, bool], None]


@dataclass
class FitReport:
    """What a fit did: one history row per epoch (empty for one-shot estimators) and the epoch kept.

    An ensemble's rows carry a ``network`` column (1-based); ``ensemble`` describes its networks
    (:meth:`hsi.training.ensemble.EnsembleClassifier.fit`).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int | None = None
    #: what the training steps ran on, ``patches`` or ``crops`` (None for one-shot estimators).
    train_input: str | None = None
    #: patches per optimiser step (the run's batch size, shrunk by the recipe's ``min_steps``).
    batch_size: int | None = None
    #: an ensemble's networks (seed, epochs trained, selected epoch, validation scores, kept, seconds),
    #: when it screened them (``screen_epoch``) and the margin that kept them; None for one model.
    ensemble: dict[str, Any] | None = None


class Classifier(abc.ABC):
    """A model that classifies pixels of a :class:`~hsi.data.patches.PatchSource`.

    Attributes:
        name: the registered model name.
        in_chans: input bands C; num_classes: classes K.
        patch_size: the patch side the run was configured with.
        receptive_field: the side of the window around a pixel that the model reads
            (``patch_size`` for a CNN, 1 for a centre-pixel model): the patch size of the
            source it is fed.
    """

    kind: ClassVar[str]

    def __init__(self, name: str, *, in_chans: int, num_classes: int, patch_size: int) -> None:
        self.name, self.in_chans, self.num_classes, self.patch_size = name, in_chans, num_classes, patch_size

    @property
    def receptive_field(self) -> int:
        return self.patch_size

    @property
    def n_parameters(self) -> int | None:
        """Trainable parameters, or None where the notion does not apply."""
        return None

    @abc.abstractmethod
    def fit(
        self, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: Resume | None = None, on_epoch_end: NetworkCallback | None = None,
    ) -> FitReport:
        """Fits on the ``train`` pixels (``val``: model selection where the model has epochs).

        ``resume``: the saved points its networks continue from; ``on_epoch_end``: called after
        every epoch of every network (a run's resume points).
        """

    @abc.abstractmethod
    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Class probabilities of pixels ``(rows[i], cols[i])``, shape (N, K) float32 on the source's device."""

    @abc.abstractmethod
    def inference_batch_size(self, source: PatchSource) -> int:
        """Pixels per :meth:`predict_proba` call that fit the source's device."""

    @property
    def supports_dense(self) -> bool:
        """Whether :meth:`predict_proba_dense` classifies a tile in one pass, equal to patch by patch."""
        return False

    def dense_batch_size(self, source: PatchSource, height: int, width: int) -> int:
        """Tiles of ``height`` x ``width`` output pixels per dense pass within one patch-wise pass's memory."""
        raise ConfigError(f"model {self.name!r} has no dense (fully convolutional) inference; use patches.")

    def predict_proba_dense(self, tiles: torch.Tensor) -> torch.Tensor:
        """Class probabilities of every pixel of padded tiles: (B, C, h + p - 1, w + p - 1) -> (B, K, h, w)."""
        raise ConfigError(f"model {self.name!r} has no dense (fully convolutional) inference; use patches.")

    @abc.abstractmethod
    def profile(self) -> dict[str, int | None]:
        """Parameters, MACs and activation bytes per patch (see :func:`hsi.models.profile_model`)."""

    def continued(self) -> Classifier | None:
        """A new, untrained model whose networks start from this model's weights (self-training's rounds train
        them on); None where nothing carries over (a scikit-learn estimator is fitted anew)."""
        return None

    def spec(self) -> dict[str, Any]:
        """The ``model`` entry of a checkpoint: what :func:`classifier_from_state` rebuilds from."""
        return {"name": self.name, "in_chans": self.in_chans, "num_classes": self.num_classes,
                "patch_size": self.patch_size}

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """Checkpoint entries: ``model`` (:meth:`spec`) and the fitted weights, as tensors and plain data."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> Classifier:
        """Rebuilds a fitted classifier from :meth:`state`'s entries."""


class TorchClassifier(Classifier):
    """A network mapping (N, C, p, p) patches to (N, K) logits, trained by :func:`~hsi.training.trainer.fit`.

    Training can run in stages (:meth:`train_until`, then :meth:`finish`), so that an ensemble
    can train several networks part of the way and continue only some of them.
    """

    kind = "torch"

    def __init__(self, name: str, network: nn.Module, *, in_chans: int, num_classes: int, patch_size: int,
                 seed: int = 0) -> None:
        super().__init__(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)
        self.network = network
        #: Test-time augmentation: mean softmax over the 8 flips/rotations (set by the recipe at fit).
        self.tta = False
        #: Seeds the network's batch order, dropout and augmentation (its initial weights were drawn from it).
        self.seed = seed
        #: Where training stands (None before :meth:`train_until`).
        self.training: TrainState | None = None
        self._seconds = 0.0

    @classmethod
    def create(cls, name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device,
               seed: int | None = None) -> TorchClassifier:
        network = create_model(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, seed=seed)
        return cls(name, network.to(device), in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                   seed=seed or 0)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters() if p.requires_grad)

    @property
    def seconds(self) -> float:
        """Seconds spent training this network in this process (:meth:`train_until` and :meth:`finish`)."""
        return self._seconds

    def fit(
        self, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: Resume | None = None, on_epoch_end: NetworkCallback | None = None,
    ) -> FitReport:
        """Trains, keeps the epoch the recipe's ``select`` ranks best on ``val`` (else the last), then
        recalibrates batch norm. (An ensemble of such networks: :class:`~hsi.training.ensemble.EnsembleClassifier`.)"""
        self.seed = settings.seed
        settings = self.fit_settings(source, train, settings)
        self.train_until(settings.epochs, source, train, val, settings=settings, progress=progress,
                         resume=resume.networks.get(0) if resume else None, on_epoch_end=on_epoch_end)
        selected = self.finish(source, train, settings=settings)
        return FitReport(self.history, selected, settings.train_input, settings.batch_size)

    def fit_settings(self, source: PatchSource, train: PixelSet, settings: FitSettings) -> FitSettings:
        """``settings`` resolved for this network: the batch shrunk by ``min_steps``, ``patches`` or ``crops``."""
        training = (settings.recipe or Recipe()).training
        settings = replace(settings, batch_size=train_batch_size(training, settings.batch_size, len(train)))
        crops = use_crops(settings.train_input, self.network, training, name=self.name, rows=train.rows,
                          cols=train.cols, height=source.height, width=source.width, batch_size=settings.batch_size)
        return replace(settings, train_input="crops" if crops else "patches")

    def train_until(
        self, epoch: int, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: NetworkResume | None = None, on_epoch_end: NetworkCallback | None = None,
        index: int = 0, desc: str = "train",
    ) -> None:
        """Trains on to ``epoch`` (of ``settings.epochs``; settings from :meth:`fit_settings`).

        Each epoch draws its batch order and dropout from ``(self.seed, epoch)``, so training in
        stages, or from a resume point, follows the uninterrupted path exactly.

        Args:
            resume: the saved point to continue from (used when this network has not trained yet).
            on_epoch_end: called after each epoch with ``index`` as the network's index.
            desc: what the progress bar names, after ``settings.stage``.
        """
        started = time.perf_counter()
        recipe = settings.recipe or Recipe()
        self.tta = recipe.post_processing.tta
        if self.training is None and resume is not None:
            self.network.load_state_dict(resume.model_state)
            resume.state.optimizer_state = resume.optimizer_state
            self.training = resume.state
        stop = min(epoch, settings.epochs)
        callback: EpochCallback | None = None
        if on_epoch_end is not None:
            def callback(done: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState,
                         last: bool) -> None:
                on_epoch_end(index, done, model, optimizer, state, last)
        if self.training is None or self.training.epoch < stop:
            self.training = fit(self.network, source, train, val, epochs=settings.epochs,
                                batch_size=settings.batch_size, lr=settings.lr, seed=self.seed, progress=progress,
                                state=self.training, on_epoch_end=callback, recipe=recipe,
                                crops=settings.train_input == "crops", stop_epoch=stop,
                                desc=f"{settings.stage}{desc}")
        self._seconds += time.perf_counter() - started

    @property
    def history(self) -> list[dict[str, float]]:
        """One row per epoch trained so far."""
        return list(self.training.history) if self.training is not None else []

    def finish(self, source: PatchSource, train: PixelSet, *, settings: FitSettings) -> int:
        """Loads the selected epoch's weights (the last where there are no validation pixels), recalibrates
        batch norm; returns the selected epoch."""
        started = time.perf_counter()
        state = self.training
        if state is None:
            raise ConfigError(f"network {self.name!r} has not trained; call train_until first.")
        selected = state.epoch
        if state.best_state is not None:
            self.network.load_state_dict(state.best_state)
            selected = state.best_epoch
        # The moving-average BN statistics lag fast-changing weights in short runs; recompute them.
        recalibrate_batchnorm(self.network, source, train, batch_size=settings.batch_size, seed=self.seed)
        if source.device.type == "cuda":
            torch.cuda.synchronize(source.device)
        self._seconds += time.perf_counter() - started
        return selected

    def _mean_proba(self, inputs: torch.Tensor, forward: Any) -> torch.Tensor:
        """Mean softmax over (with ``tta``) the 8 flips/rotations of ``inputs``.

        ``forward(x)`` returns logits whose last two axes are spatial where ``x``'s are (a dense
        map), or (N, K); each symmetry is undone on a map before averaging.
        """
        transforms = range(len(DIHEDRAL)) if self.tta else range(1)
        probas = []
        self.network.eval()
        for t in transforms:
            with autocast_for(inputs.device):
                logits = forward(dihedral(inputs, t))
            proba = logits.float().softmax(1)
            probas.append(dihedral(proba, t, inverse=True) if proba.ndim == 4 else proba)
        return probas[0] if len(probas) == 1 else torch.stack(probas).mean(0)

    @torch.inference_mode()
    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Softmax of the network, averaged over the 8 flips/rotations of each patch (``tta``)."""
        return self._mean_proba(source.gather(rows, cols), self.network)

    def inference_batch_size(self, source: PatchSource) -> int:
        return inference_batch_size(self.network, in_chans=source.n_channels, patch_size=source.patch_size,
                                    device=source.device)

    @property
    def supports_dense(self) -> bool:
        return bool(getattr(self.network, "supports_dense", False))

    def dense_batch_size(self, source: PatchSource, height: int, width: int) -> int:
        """Tiles per dense pass whose activations fit the bytes of one patch-wise inference pass.

        The budget is :meth:`inference_batch_size` patches times their activation bytes (both
        ways counted as the sum of every layer's output), so the dense path never holds more than
        the patch path: cache-sized on CPU, a share of the free memory on CUDA. At least 2: oneDNN
        runs one image's 3-D convolutions through an im2col workspace larger than a second tile
        (HybridSN, p=25, PCA 30: one 25x25 tile +80 MB of peak RSS, two +33 MB).
        """
        if not self.supports_dense:
            return super().dense_batch_size(source, height, width)
        p = source.patch_size
        budget = self.inference_batch_size(source) * activation_bytes_per_patch(
            self.network, in_chans=source.n_channels, patch_size=p)
        per_pixel = _dense_bytes_per_input_pixel(self.network, source.n_channels, p, source.device)
        return max(2, budget // (per_pixel * (height + p - 1) * (width + p - 1)))

    @torch.inference_mode()
    def predict_proba_dense(self, tiles: torch.Tensor) -> torch.Tensor:
        if not self.supports_dense:
            return super().predict_proba_dense(tiles)
        # Eval mode (dropout off): every layer then acts per pixel, so dense == patch by patch; a
        # flipped/rotated tile's map is the flipped/rotated map, undone before averaging (TTA).
        return self._mean_proba(tiles, cast(Any, self.network).forward_dense)

    def profile(self) -> dict[str, int | None]:
        return profile_model(self.network, patch_size=self.patch_size, in_chans=self.in_chans,
                             num_classes=self.num_classes)

    def continued(self) -> TorchClassifier:
        return TorchClassifier(self.name, copy.deepcopy(self.network), in_chans=self.in_chans,
                               num_classes=self.num_classes, patch_size=self.patch_size, seed=self.seed)

    def state(self) -> dict[str, Any]:
        """``model``, ``state_dict``; with TTA ``tta: true``."""
        state: dict[str, Any] = {"model": self.spec(), "state_dict": self.network.state_dict()}
        if self.tta:
            state["tta"] = True
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> TorchClassifier:
        networks = networks_from_state(state, device)
        if len(networks) != 1:
            raise CheckpointError(f"checkpoint of model {state['model']['name']!r} holds {len(networks)} networks; "
                                  "load it with classifier_from_state.")
        return networks[0]


def networks_from_state(state: dict[str, Any], device: torch.device) -> list[TorchClassifier]:
    """The fitted networks of a checkpoint: ``state_dict``, then each of ``members`` (an ensemble's others).

    Raises:
        CheckpointError: sizes that do not build the model, or weights that do not fit it.
    """
    spec = state["model"]
    # Built on the meta device first (no memory): sizes from an edited checkpoint must not
    # allocate a network larger than the weights the file actually holds.
    try:
        with torch.device("meta"):
            probe = create_model(str(spec["name"]), in_chans=int(spec["in_chans"]),
                                 num_classes=int(spec["num_classes"]), patch_size=int(spec["patch_size"]))
            # One patch's activations, counted on the meta device too (no memory).
            patch_bytes = activation_bytes_per_patch(probe, in_chans=int(spec["in_chans"]),
                                                     patch_size=int(spec["patch_size"]))
    except HSIError:
        raise
    except Exception:  # noqa: BLE001 - sizes no hsi-classify run writes
        raise CheckpointError(
            f"checkpoint sizes do not build model {spec['name']!r} (in_chans {spec['in_chans']}, num_classes "
            f"{spec['num_classes']}, patch_size {spec['patch_size']}); it was damaged or edited. "
            "Use one written by hsi-classify train."
        ) from None
    expected = {k: (tuple(v.shape), v.dtype) for k, v in probe.state_dict().items()}
    members = state.get("members", [])
    if not isinstance(members, list):
        raise CheckpointError(
            f"checkpoint of model {spec['name']!r} has ensemble members that are not a list of weights; it was "
            "damaged or edited. Use one written by hsi-classify train."
        )
    all_weights = [state.get("state_dict"), *members]
    for weights in all_weights:  # every network's weights fit the model before any network is built
        _check_weights(weights, expected, str(spec["name"]))
    # What building them allocates (a copy of each network's weights) and one patch's activations, against
    # the memory there is.
    network_bytes = sum(v.numel() * v.element_size() for v in probe.state_dict().values())
    check_fits_in_memory(
        len(all_weights) * network_bytes + patch_bytes,
        what=f"checkpoint of model {spec['name']!r} holds {len(all_weights)} network(s) of "
             f"{format_bytes(network_bytes)}; building them",
        fix="use a machine with more memory",
    )
    first = TorchClassifier.create(str(spec["name"]), in_chans=int(spec["in_chans"]),
                                   num_classes=int(spec["num_classes"]), patch_size=int(spec["patch_size"]),
                                   device=torch.device("cpu"))
    networks = [first, *(first.continued() for _ in members)]
    for classifier, weights in zip(networks, all_weights, strict=True):
        _load_weights(classifier.network, weights, expected, str(spec["name"]))
        classifier.tta = state.get("tta", False) is True
        classifier.network.to(device)
    return networks


def _load_weights(network: nn.Module, weights: Any, expected: dict[str, tuple[tuple[int, ...], torch.dtype]],
                  name: str) -> None:
    """Loads a checkpoint's ``weights`` into ``network`` after :func:`_check_weights`."""
    _check_weights(weights, expected, name)
    try:
        network.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError):
        raise CheckpointError(
            f"checkpoint weights do not fit model {name!r} (their types differ from the model's); "
            "the checkpoint was damaged or edited. Use one written by hsi-classify train."
        ) from None


def _check_weights(weights: Any, expected: dict[str, tuple[tuple[int, ...], torch.dtype]], name: str) -> None:
    """Checks a checkpoint's ``weights``: their names, shapes and dtypes are ``expected``'s, and every value is
    finite (a NaN weight would turn every answer into NaN)."""
    if not isinstance(weights, dict):
        raise CheckpointError(
            f"checkpoint of model {name!r} holds no network weights; use one written by hsi-classify train."
        )
    found = {k: (tuple(v.shape), v.dtype) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if expected != found:
        differ = sorted(set(expected) ^ set(found)) or sorted(k for k in expected if expected[k] != found[k])
        raise CheckpointError(
            f"checkpoint weights do not fit model {name!r} (first difference: {str(differ[0])[:80]!r}); "
            "the checkpoint was damaged or edited. Use one written by hsi-classify train."
        )
    not_finite = next((k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
                      None)
    if not_finite is not None:
        raise CheckpointError(
            f"checkpoint weights of model {name!r} are not finite ({not_finite[:80]!r} holds NaN or infinity); the "
            "checkpoint was damaged or edited. Use one written by hsi-classify train."
        )


def _dense_bytes_per_input_pixel(network: nn.Module, in_chans: int, patch_size: int, device: torch.device) -> int:
    """Bytes that every op output of ``network.forward_dense`` (views excluded) holds per tile input pixel.

    An op's output over a tile of L x L input pixels spans at most L x L positions, so its bytes
    are at most L^2 times its bytes per position (channels, and depth for 3-D maps, times the
    element size). Those are counted on two patch-sized tiles: the cost of two patches (two,
    as oneDNN runs a single image's 3-D convolutions through a large im2col workspace).
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class _BytesPerPosition(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if not func.is_view:
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor) and t.ndim >= 2:
                        self.total += t.numel() * t.element_size() // max(t.shape[-1] * t.shape[-2], 1)
            return out

    network.eval()
    tiles = torch.zeros(2, in_chans, patch_size, patch_size, device=device)
    with torch.inference_mode(), _BytesPerPosition() as counter:
        cast(Any, network).forward_dense(tiles)
    return max(counter.total // 2, 1)




class SklearnClassifier(Classifier):
    """A scikit-learn estimator on the spectrum (after PCA) of each pixel alone."""

    kind = "sklearn"

    def __init__(self, name: str, estimator: Any, *, in_chans: int, num_classes: int, patch_size: int) -> None:
        super().__init__(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)
        self.estimator = estimator

    @classmethod
    def create(cls, name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device,
               seed: int | None = None) -> SklearnClassifier:
        estimator = create_model(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, seed=seed)
        return cls(name, estimator, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)

    @property
    def receptive_field(self) -> int:
        return 1

    @staticmethod
    def _spectra(source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> np.ndarray:
        """The centre pixels' spectra, shape (N, C) float32."""
        radius = source.patch_size // 2
        return source.padded[:, rows + radius, cols + radius].T.float().cpu().numpy()

    def fit(
        self, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: Resume | None = None, on_epoch_end: NetworkCallback | None = None,
    ) -> FitReport:
        """Fits on the training and validation pixels together (it has no epochs to select)."""
        parts = [train] if val is None else [train, val]
        spectra = np.concatenate([self._spectra(source, p.rows, p.cols) for p in parts])
        targets = np.concatenate([p.targets.cpu().numpy() for p in parts])
        self.estimator.fit(spectra, targets)
        return FitReport()

    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Probabilities, or the one-hot vote where the estimator gives none (the SVM, without Platt scaling)."""
        spectra = self._spectra(source, rows, cols)
        proba = np.zeros((len(spectra), self.num_classes), dtype=np.float32)
        try:
            # An estimator's own scaling may overflow on values far beyond those it was fitted on (a checked
            # checkpoint's scaler, finite but tiny): scikit-learn then refuses its input, here in one line.
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                if hasattr(self.estimator, "predict_proba"):
                    # Columns follow the classes seen in fitting, which may miss a class.
                    proba[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = self.estimator.predict_proba(
                        spectra)
                else:
                    proba[np.arange(len(spectra)), np.asarray(self.estimator.predict(spectra), dtype=np.int64)] = 1
        except ValueError:
            raise CheckpointError(
                f"the {self.name} estimator cannot classify these pixels: scaled as the checkpoint says, their "
                "values are not finite (the checkpoint was edited, or the cube's values lie far beyond the training "
                "scene's); use the cube and checkpoint of one sensor and run."
            ) from None
        return torch.from_numpy(proba).to(source.device)

    def inference_batch_size(self, source: PatchSource) -> int:
        # Each batch holds (pixels, classes) float32 probabilities: at most 256 MiB of them, whatever the
        # class count a checkpoint declares (65,536 pixels up to 1,024 classes).
        return max(1, min(65_536, (256 << 20) // (4 * max(self.num_classes, 1))))

    def profile(self) -> dict[str, int | None]:
        return {"parameters": None, "macs_per_patch": None, "activation_bytes_per_patch": None}

    def state(self) -> dict[str, Any]:
        import skops.io

        # Stored, not deflated: a reader bounds what it reads by the payload's own size (estimator_checks).
        blob = np.frombuffer(skops.io.dumps(self.estimator, compression=zipfile.ZIP_STORED), dtype=np.uint8).copy()
        return {"model": self.spec(), "estimator_skops": torch.from_numpy(blob)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> SklearnClassifier:
        """Rebuilds the estimator with skops, checked before it is read and before it predicts
        (:func:`hsi.training.estimator_checks.load_estimator`)."""
        from hsi.training.estimator_checks import load_estimator

        spec = state["model"]
        name, in_chans, num_classes = str(spec["name"]), int(spec["in_chans"]), int(spec["num_classes"])
        estimator = load_estimator(bytes(state["estimator_skops"].numpy().tobytes()), name, n_features=in_chans,
                                   n_classes=num_classes)
        return cls(name, estimator, in_chans=in_chans, num_classes=num_classes, patch_size=int(spec["patch_size"]))


def member_seed(seed: int, index: int) -> int:
    """The seed of ensemble member ``index`` (0 = the run's own network, seeded ``seed``)."""
    return seed + 1_000_003 * index
