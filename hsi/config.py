"""The run configuration: one flat, typed record of every setting of a run.

Each run writes it, resolved, to ``config.json``; ``RunConfig.from_dict`` reads it back,
so any figure can be reproduced from its run folder alone.

Choice-valued settings are declared once. Plain switches are ``Literal`` types here
(:data:`PcaFit`, :data:`Inference`; :func:`choices` reads them). Settings backed by an implementation are
registries beside it: ``split`` in :data:`hsi.data.splits.SPLITS`, ``pad_mode`` in
:data:`hsi.data.padding.PAD_MODES`, ``control`` in :data:`hsi.features.controls.CONTROLS`,
``nan_policy`` in :data:`hsi.data.scene.NAN_POLICIES`, ``model`` in
:data:`hsi.models.MODELS`. The CLI's choices, the validation and the messages come from
those declarations.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from hsi._core.errors import ConfigError

#: Which pixels the PCA is fitted on: the training side only, or every pixel (the paper's way).
PcaFit = Literal["train", "all"]
#: How the full scene is classified: one fully convolutional pass where the model has an exact
#: one (``auto`` picks it, else patch by patch), always ``dense`` (an error if it has none), or ``patches``.
Inference = Literal["auto", "dense", "patches"]
#: What a training step runs on: patch batches, or scene crops (one dense pass per crop, the loss at
#: its training pixels: the same gradients per pixel; hsi.training.crops; a dense-capable model only);
#: ``auto`` takes crops where they are exact and compute at most half the positions (hsi.training.crops.use_crops).
TrainInput = Literal["auto", "patches", "crops"]
#: The band reduction: principal components, or minimum noise fraction (components by signal-to-noise).
Reduce = Literal["pca", "mnf"]
#: A denoiser fitted on the scene itself (no label) and applied before the reduction.
Denoise = Literal["none", "dncnn"]
#: Whether ``train`` reads the cube window by window instead of loading it: ``auto`` when the cube
#: file is one the lazy readers handle and its float32 size exceeds a share of the free memory
#: (hsi.data.scene.lazy_decision), ``on`` always (such files only), ``off`` never.
Lazy = Literal["auto", "on", "off"]

# A spatially disjoint estimate needs its epoch chosen on spatially disjoint pixels too,
# not fixed in advance or, worse, by looking at the test score.
DISJOINT_VAL_RATIO = 0.2


@dataclass
class RunConfig:
    """Every setting of a ``train`` run; defaults follow the HybridSN paper (Roy et al. 2020)."""

    # data
    dataset: str | None = None
    cube: str | None = None
    gt: str | None = None
    cube_key: str | None = None
    gt_key: str | None = None
    data_dir: str | None = None
    download: bool = True
    nan_policy: str = "error"
    corrupt: list[str] = dataclasses.field(default_factory=list)  # KIND:LEVEL items (data/corrupt.py)
    # features
    pca_components: int = 30
    pca_fit: PcaFit = "train"
    pca_sample_pixels: int = 200_000  # PCA/MNF fitted on a seeded sample of at most this many fitting pixels
    patch_size: int = 25
    pad_mode: str = "constant"
    reduce: Reduce = "pca"
    denoise: Denoise = "none"
    denoise_depth: int = 17  # DnCNN layers (the paper's 17); fewer on a CPU
    denoise_width: int = 64  # DnCNN channels (the paper's 64)
    denoise_neighbours: int = 0  # adjacent bands each side given to the denoiser as input channels
    denoise_steps: int = 500  # blind-spot training steps of 16 crops
    # split
    split: str = "random"
    train_ratio: float = 0.3
    val_ratio: float | None = None  # None = DISJOINT_VAL_RATIO with --split disjoint, else 0
    train_per_class: int | None = None
    block_size: int | None = None
    train_gt: str | None = None
    test_gt: str | None = None
    control: str = "none"
    # model and training
    model: str = "hybridsn"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    # training recipe (hsi.training.recipe.RECIPES); each part None = the recipe's value
    recipe: str = "steady"
    optimizer: str | None = None
    lr_scale: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    warmup: float | None = None
    label_smoothing: float | None = None
    augment: bool | None = None
    jitter: float | None = None
    context_mix: float | None = None
    select: str | None = None
    tta: bool | None = None
    ensemble: int | None = None
    screen: float | None = None
    survivors: int | None = None
    member_margin: float | None = None
    min_steps: int | None = None
    smooth: int | None = None
    seed: int = 0
    split_seed: int | None = None  # seed of the split and PCA; None = use ``seed``
    device: str = "auto"
    deterministic: bool = False
    inference: Inference = "auto"
    train_input: TrainInput = "auto"
    lazy: Lazy = "auto"  # written back resolved ("on"/"off") into config.json
    # output
    out: str = "runs"

    @property
    def resolved_split_seed(self) -> int:
        """The seed of the train/test split (and of the PCA fitted on it): ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def resolved_val_ratio(self) -> float:
        """Validation pixels per training pixel: ``val_ratio``, else 0.2 for a disjoint split and 0 otherwise."""
        if self.val_ratio is not None:
            return self.val_ratio
        return DISJOINT_VAL_RATIO if self.split == "disjoint" else 0.0

    def check_choices(self) -> None:
        """Checks every ``Literal``-typed setting against its declared values.

        Raises:
            ConfigError: a value outside its ``Literal``; the message names the flag and the choices.
        """
        for name in dataclasses.asdict(self):
            allowed = choices(name)
            value = getattr(self, name)
            if allowed and value not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}; got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Returns the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Builds a config; unknown keys raise :class:`ConfigError` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"config has unknown keys {unknown}; expected only {sorted(known)}. Remove or rename them."
            )
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | Path) -> RunConfig:
        """Reads a ``config.json`` written by a run (its ``run`` section, or the whole file)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"could not read config {path}: {err}") from None
        return cls.from_dict(data.get("run", data))


def choices(setting: str) -> tuple[str, ...]:
    """The values a ``Literal``-typed :class:`RunConfig` setting may take (empty for other settings)."""
    return _literal_choices().get(setting, ())


@functools.cache
def _literal_choices() -> dict[str, tuple[str, ...]]:
    # Resolving the string annotations is slow (~10 ms a call): once per process.
    hints = get_type_hints(RunConfig)
    return {name: tuple(get_args(h)) for name, h in hints.items() if getattr(h, "__origin__", None) is Literal}
