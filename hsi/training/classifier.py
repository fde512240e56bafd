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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hsi._core.errors import CheckpointError
from hsi.data.patches import PatchSource
from hsi.models import MODELS, create_model, profile_model
from hsi.training.batching import inference_batch_size
from hsi.training.batchnorm import recalibrate_batchnorm
from hsi.training.trainer import EpochCallback, PixelSet, TrainState, autocast_for, fit

__all__ = [
    "Classifier",
    "FitReport",
    "FitSettings",
    "Resume",
    "SklearnClassifier",
    "TorchClassifier",
    "build_classifier",
    "classifier_from_state",
]


@dataclass(frozen=True)
class FitSettings:
    """How to fit: epochs, batch size and learning rate (networks), and the run's seed."""

    epochs: int
    batch_size: int
    lr: float
    seed: int


@dataclass
class Resume:
    """Where an interrupted fit continues: weights, optimiser state and training state after an epoch."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    state: TrainState


@dataclass
class FitReport:
    """What a fit did: one history row per epoch (empty for one-shot estimators) and the epoch kept."""

    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int | None = None


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
        progress: bool = False, resume: Resume | None = None, on_epoch_end: EpochCallback | None = None,
    ) -> FitReport:
        """Fits on the ``train`` pixels (``val``: model selection where the model has epochs)."""

    @abc.abstractmethod
    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Class probabilities of pixels ``(rows[i], cols[i])``, shape (N, K) float32 on the source's device."""

    @abc.abstractmethod
    def inference_batch_size(self, source: PatchSource) -> int:
        """Pixels per :meth:`predict_proba` call that fit the source's device."""

    @abc.abstractmethod
    def profile(self) -> dict[str, int | None]:
        """Parameters, MACs and activation bytes per patch (see :func:`hsi.models.profile_model`)."""

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
    """A network mapping (N, C, p, p) patches to (N, K) logits, trained by :func:`~hsi.training.trainer.fit`."""

    kind = "torch"

    def __init__(self, name: str, network: nn.Module, *, in_chans: int, num_classes: int, patch_size: int) -> None:
        super().__init__(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)
        self.network = network

    @classmethod
    def create(cls, name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device,
               seed: int | None = None) -> TorchClassifier:
        network = create_model(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, seed=seed)
        return cls(name, network.to(device), in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters() if p.requires_grad)

    def fit(
        self, source: PatchSource, train: PixelSet, val: PixelSet | None, *, settings: FitSettings,
        progress: bool = False, resume: Resume | None = None, on_epoch_end: EpochCallback | None = None,
    ) -> FitReport:
        """Trains, keeps the epoch of lowest validation loss (else the last), then recalibrates batch norm."""
        if resume is not None:
            self.network.load_state_dict(resume.model_state)
        state = fit(self.network, source, train, val, epochs=settings.epochs, batch_size=settings.batch_size,
                    lr=settings.lr, seed=settings.seed, progress=progress,
                    state=resume.state if resume else None,
                    optimizer_state=resume.optimizer_state if resume else None, on_epoch_end=on_epoch_end)
        selected = state.epoch
        if state.best_state is not None:
            self.network.load_state_dict(state.best_state)
            selected = state.best_epoch
        # The moving-average BN statistics lag fast-changing weights in short runs; recompute them.
        recalibrate_batchnorm(self.network, source, train, batch_size=settings.batch_size, seed=settings.seed)
        if source.device.type == "cuda":
            torch.cuda.synchronize(source.device)
        return FitReport(state.history, selected)

    @torch.inference_mode()
    def predict_proba(self, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        with autocast_for(source.device):
            logits = self.network(source.gather(rows, cols))
        return logits.float().softmax(1)

    def inference_batch_size(self, source: PatchSource) -> int:
        return inference_batch_size(self.network, in_chans=source.n_channels, patch_size=source.patch_size,
                                    device=source.device)

    def profile(self) -> dict[str, int | None]:
        return profile_model(self.network, patch_size=self.patch_size, in_chans=self.in_chans,
                             num_classes=self.num_classes)

    def state(self) -> dict[str, Any]:
        return {"model": self.spec(), "state_dict": self.network.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> TorchClassifier:
        spec = state["model"]
        classifier = cls.create(str(spec["name"]), in_chans=int(spec["in_chans"]),
                                num_classes=int(spec["num_classes"]), patch_size=int(spec["patch_size"]),
                                device=torch.device("cpu"))
        try:
            classifier.network.load_state_dict(state["state_dict"])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(
                f"checkpoint weights do not fit model {spec['name']!r}: {str(err).splitlines()[0]}"
            ) from None
        classifier.network.to(device)
        return classifier


#: Types a scikit-learn checkpoint may hold beyond those skops trusts by default (its
#: scikit-learn estimators, numpy and builtins): the trees of a random forest.
SKOPS_TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)


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
        progress: bool = False, resume: Resume | None = None, on_epoch_end: EpochCallback | None = None,
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
        if hasattr(self.estimator, "predict_proba"):
            # Columns follow the classes seen in fitting, which may miss a class.
            proba[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = self.estimator.predict_proba(spectra)
        else:
            proba[np.arange(len(spectra)), np.asarray(self.estimator.predict(spectra), dtype=np.int64)] = 1.0
        return torch.from_numpy(proba).to(source.device)

    def inference_batch_size(self, source: PatchSource) -> int:
        return 65_536

    def profile(self) -> dict[str, int | None]:
        return {"parameters": None, "macs_per_patch": None, "activation_bytes_per_patch": None}

    def state(self) -> dict[str, Any]:
        import skops.io

        blob = np.frombuffer(skops.io.dumps(self.estimator), dtype=np.uint8).copy()
        return {"model": self.spec(), "estimator_skops": torch.from_numpy(blob)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> SklearnClassifier:
        import skops.io

        spec = state["model"]
        try:
            blob = bytes(state["estimator_skops"].numpy().tobytes())
            untrusted = sorted(set(skops.io.get_untrusted_types(data=blob)) - set(SKOPS_TRUSTED_TYPES))
        except Exception:  # skops raises many types for damaged data
            raise CheckpointError(
                f"checkpoint of model {spec['name']!r} holds no readable estimator; "
                "use a model.pt written by hsi-classify."
            ) from None
        if untrusted:
            raise CheckpointError(
                f"checkpoint of model {spec['name']!r} holds types hsi-classify does not load "
                f"({', '.join(untrusted[:3])}); it was not written by hsi-classify. Use a model.pt from a train run."
            )
        estimator = skops.io.loads(blob, trusted=list(SKOPS_TRUSTED_TYPES))
        return cls(str(spec["name"]), estimator, in_chans=int(spec["in_chans"]), num_classes=int(spec["num_classes"]),
                   patch_size=int(spec["patch_size"]))


_KINDS: dict[str, type[TorchClassifier] | type[SklearnClassifier]] = {
    TorchClassifier.kind: TorchClassifier,
    SklearnClassifier.kind: SklearnClassifier,
}


def build_classifier(
    name: str, *, in_chans: int, num_classes: int, patch_size: int, device: torch.device | str = "cpu",
    seed: int | None = None,
) -> Classifier:
    """A new, unfitted classifier of the registered model ``name``.

    Args:
        name: registry key, e.g. ``"hybridsn"`` or ``"svm"``.
        in_chans: input bands C (after PCA); num_classes: classes K; patch_size: odd patch side p.
        device: where a network lives.
        seed: seeds the initial weights (torch) or ``random_state`` (scikit-learn); None = the
            global torch generator (seed it with :func:`hsi.training.seed.seeded_run`).

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: the model does not accept these sizes.
    """
    kind = _KINDS[MODELS.get(name).kind]
    return kind.create(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size,
                       device=torch.device(device), seed=seed)


def classifier_from_state(state: dict[str, Any], device: torch.device | str = "cpu") -> Classifier:
    """Rebuilds the fitted classifier a checkpoint describes (its ``model`` entry names the model).

    Raises:
        UnknownNameError: the checkpoint names a model this version does not have.
        CheckpointError: the weights do not fit the model, or the estimator is unreadable or foreign.
    """
    kind = _KINDS[MODELS.get(str(state["model"]["name"])).kind]
    return kind.from_state(state, torch.device(device))

