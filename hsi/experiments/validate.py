"""Checks of a run's settings and input files that import neither torch nor scikit-learn.

The CLI runs :func:`check_run_inputs` before anything heavy is imported, so a mistyped dataset, a
missing file or a bad value is answered in a fraction of a second (a test checks ``sys.modules``).
:func:`hsi.experiments.steps.validate_config` runs the same checks, plus the model name.
"""

from __future__ import annotations

from pathlib import Path

from hsi._core.errors import ConfigError
from hsi.config import RunConfig
from hsi.data.corrupt import parse_corruptions
from hsi.data.io import check_input_file
from hsi.data.padding import PAD_MODES
from hsi.data.scene import NAN_POLICIES, ensure_scene_files
from hsi.data.specs import get_spec
from hsi.data.splits import SPLITS, SplitSettings, check_split_settings
from hsi.experiments.run_dir import check_writable
from hsi.features.controls import CONTROLS, NO_CONTROL
from hsi.training.recipe import recipe_of

__all__ = ["check_input_files", "check_run_inputs", "check_settings", "split_settings"]


def _check_registered(value: str, flag: str, names: list[str]) -> None:
    if value not in names:
        raise ConfigError(f"{flag} must be one of {', '.join(names)}; got {value!r}.")


def split_settings(config: RunConfig) -> SplitSettings:
    """The split options of a config, resolved (validation ratio, split seed)."""
    return SplitSettings(
        train_ratio=config.train_ratio, val_ratio=config.resolved_val_ratio, patch_size=config.patch_size,
        seed=config.resolved_split_seed, train_per_class=config.train_per_class, block_size=config.block_size,
        train_gt=config.train_gt, test_gt=config.test_gt,
        guard_size=recipe_of(config).post_processing.window(config.patch_size),
    )


def check_settings(config: RunConfig) -> None:
    """Checks every setting that needs neither the data nor torch (all but the model name); raises ConfigError."""
    if (config.dataset is None) == (config.cube is None):
        raise ConfigError("give either --dataset NAME or --cube FILE --gt FILE (exactly one of the two).")
    if config.cube is not None and config.gt is None:
        raise ConfigError("--cube needs --gt FILE (the ground-truth labels of the same scene).")
    if config.dataset is not None:
        get_spec(config.dataset)  # unknown names fail here, with the close match
    config.check()  # every option's type, choices and range, as declared
    _check_registered(config.pad_mode, "--pad-mode", PAD_MODES.names())
    _check_registered(config.split, "--split", SPLITS.names())
    _check_registered(config.control, "--control", [NO_CONTROL, *CONTROLS.names()])
    _check_registered(config.nan_policy, "--nan-policy", list(NAN_POLICIES))
    check_split_settings(config.split, split_settings(config))
    parse_corruptions(config.corrupt)  # unknown kinds and bad levels fail before any file is written
    recipe_of(config)  # unknown recipe, parts out of range
    check_writable(config.out)


def check_input_files(config: RunConfig) -> None:
    """Raises unless the config's input files are on disk; a built-in scene's missing files are downloaded
    (when allowed) here, so that a failed download is told before torch is imported."""
    if config.dataset is not None:
        ensure_scene_files(config.dataset, data_dir=config.data_dir, download=config.download)
    for role, path in (("cube", config.cube), ("gt", config.gt), ("gt", config.train_gt), ("gt", config.test_gt)):
        if path is not None:
            check_input_file(Path(path), role)


def check_run_inputs(config: RunConfig) -> None:
    """:func:`check_settings`, then :func:`check_input_files`: what a run can check before loading anything."""
    check_settings(config)
    check_input_files(config)
