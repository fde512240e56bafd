"""The feature front-end of a run: optional denoiser, then the band reduction (PCA or MNF).

``train`` fits it (:func:`fit_reducer`, :func:`denoise_settings` + :func:`~hsi.training.denoise_fit.fit_denoiser`),
the run's checkpoint stores it (the reducer's ``pca`` entry and, with a denoiser, its
``denoiser`` entry), and ``predict`` applies exactly the same computation to a new cube with
:func:`apply_features`: one function, so train and predict cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch

from hsi._core.errors import CheckpointError, ConfigError
from hsi.config import RunConfig, choices
from hsi.features.mnf import SpectralMNF, shift_differences
from hsi.features.pca import SpectralPCA
from hsi.training.checkpoint import RunModel
from hsi.training.denoise_fit import Denoiser, DenoiseSettings

__all__ = ["apply_features", "denoise_settings", "fit_reducer", "frontend_radius"]


def fit_reducer(name: str, cube: np.ndarray, fit_mask: np.ndarray, *, n_components: int,
                seed: int | None, max_fit_pixels: int = 200_000) -> SpectralPCA:
    """Fits the reduction ``name`` (``pca`` or ``mnf``, :data:`hsi.config.Reduce`) on the pixels of ``fit_mask``.

    MNF's noise covariance comes from neighbouring-pixel differences over the whole scene: a
    statistic of the sensor, label-free (as the denoiser is); its signal covariance, like
    PCA's, only from the fitting pixels.

    Args:
        cube: shape (H, W, B).
        fit_mask: shape (H, W) bool, the pixels whose spectra the reduction is fitted on.
        max_fit_pixels: at most this many of them, a seeded sample (:func:`hsi.features.pca.fit_sample`).

    Returns:
        The fitted reducer; its ``transform`` maps (H, W, B) to (H, W, n_components).
    """
    if name == "pca":
        return SpectralPCA(n_components, seed=seed, max_fit_pixels=max_fit_pixels).fit(cube[fit_mask])
    if name == "mnf":
        return SpectralMNF(n_components, seed=seed, max_fit_pixels=max_fit_pixels).fit(
            cube[fit_mask], differences=shift_differences(cube))
    raise ConfigError(f"--reduce must be one of {', '.join(choices('reduce'))}; got {name!r}.")


def denoise_settings(config: RunConfig) -> DenoiseSettings | None:
    """The denoiser a config asks for (``None`` with ``--denoise none``); seeded by the split seed (data side)."""
    if config.denoise == "none":
        return None
    return DenoiseSettings(depth=config.denoise_depth, width=config.denoise_width,
                           neighbours=config.denoise_neighbours, steps=config.denoise_steps,
                           seed=config.resolved_split_seed)


def apply_features(model: RunModel, cube: np.ndarray, *, device: torch.device | None = None) -> np.ndarray:
    """Applies a run model's front-end (its denoiser, if any, then its PCA or MNF) to a cube.

    Args:
        model: what :func:`hsi.training.checkpoint.load_run_model` returns.
        cube: shape (H, W, B), B the band count the run was trained on.
        device: where the denoiser runs (default CPU).

    Returns:
        float32 of shape (H, W, n_components): what the classifier was trained on.

    Raises:
        CheckpointError: the cube's band count differs from the checkpoint's.
    """
    if model.denoiser is not None:
        try:
            denoiser = Denoiser.from_state(model.denoiser, device)
        except (KeyError, TypeError, ValueError, RuntimeError):  # torch's load_state_dict raises RuntimeError
            raise CheckpointError(
                "checkpoint's denoiser entry is incomplete or does not fit its network (damaged or edited after "
                "saving); use an intact copy of the run, or train again."
            ) from None
        if cube.ndim != 3 or cube.shape[2] != denoiser.n_bands:
            raise CheckpointError(
                f"checkpoint's denoising front-end was fitted on {denoiser.n_bands}-band cubes; got a cube of shape "
                f"{tuple(cube.shape)}. Use a scene from the same sensor, or train a model for this one."
            )
        cube = denoiser.apply(cube)
    with np.errstate(over="ignore", invalid="ignore"):  # said below, in one line
        features = SpectralPCA.from_state_dict(model.pca).transform(cube)
    if not np.isfinite(features).all():  # a NaN feature turns every answer into the first class, silently
        raise CheckpointError(
            "checkpoint's front end (its denoiser and PCA) turns this cube into values that are not finite: the "
            "checkpoint was edited, or the cube's values lie far beyond the training scene's. Use the cube and "
            "checkpoint of one sensor and run."
        )
    return features


def frontend_radius(model: RunModel) -> int:
    """How many pixels around a pixel its front-end features read: 0 for PCA/MNF alone (per pixel),
    the DnCNN's depth with a denoiser (each 3x3 convolution reaches one pixel further).

    Tiled prediction needs this much halo on top of the classifier's, so tiles equal the whole scene.
    """
    return int(model.denoiser["depth"]) if model.denoiser is not None else 0
