"""Fits a DnCNN on the noisy scene itself: no clean reference, no label (Noise2Void blind spots).

Why Noise2Void (Krull, Buchholz, Jug, CVPR 2019) and not Noise2Noise with added noise: the
scene's own noise is unknown in kind and level; Noise2Noise with synthetic noise added on top
learns to remove the *added* noise (whose model we choose), not necessarily what the sensor
put there. A blind-spot objective needs no noise model: a few pixels of each crop are replaced
by a random neighbour's value, and the network is scored on predicting the original noisy value
there. It cannot see a pixel's own noise at those places, so it can only predict the signal,
and the expected loss is the signal error plus the noise variance. The price, stated in
docs/denoising.md: noise that neighbours share (stripes along a column) is predictable from
the neighbours, so a blind-spot denoiser keeps it.

Each band is normalised by its own mean and standard deviation over the scene; the network
sees one band (plus ``neighbours`` adjacent bands each side) as an image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hsi._core.errors import ConfigError
from hsi.models.dncnn import DnCNN, dncnn

__all__ = ["DenoiseSettings", "Denoiser", "fit_denoiser"]

# Share of a crop's pixels that are blind spots per step (Krull et al. use about 0.2-2 %).
_MASK_RATIO = 0.02
# Blind-spot values come from a neighbour within this radius (a 5x5 window, the centre excluded).
_NEIGHBOUR_RADIUS = 2
# Bands denoised per forward pass; fixed, so train and predict compute exactly the same thing.
_APPLY_BANDS = 8


@dataclass(frozen=True)
class DenoiseSettings:
    """How the denoiser is built and fitted: network size, optimisation steps, crops, seed."""

    depth: int = 17
    width: int = 64
    neighbours: int = 0
    steps: int = 500
    batch_size: int = 16
    crop: int = 40
    lr: float = 1e-3
    seed: int = 0


class Denoiser:
    """A fitted band-wise DnCNN and the per-band normalisation it was fitted with.

    Args:
        network: the fitted :class:`~hsi.models.dncnn.DnCNN`.
        band_mean: per-band mean, shape (B,) float32.
        band_std: per-band standard deviation, shape (B,) float32 (> 0).
        train_seconds: how long fitting took.
    """

    def __init__(self, network: DnCNN, band_mean: np.ndarray, band_std: np.ndarray, *,
                 train_seconds: float = 0.0) -> None:
        self.network = network.eval()
        self.band_mean = np.asarray(band_mean, dtype=np.float32)
        self.band_std = np.asarray(band_std, dtype=np.float32)
        self.train_seconds = train_seconds

    @property
    def n_bands(self) -> int:
        """The band count this denoiser was fitted on."""
        return int(self.band_mean.shape[0])

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Denoises every band of a cube.

        Args:
            cube: shape (H, W, B) with B = :attr:`n_bands`.

        Returns:
            float32 of shape (H, W, B).
        """
        if cube.ndim != 3 or cube.shape[2] != self.n_bands:
            raise ConfigError(
                f"the denoiser was fitted on {self.n_bands}-band cubes; got shape {tuple(cube.shape)}. "
                "Use a cube of the same sensor, or train again."
            )
        device = next(self.network.parameters()).device
        stack = _band_stack(cube, self.band_mean, self.band_std, self.network.neighbours).to(device)
        channels = self.network.in_chans
        out = np.empty(cube.shape, dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, self.n_bands, _APPLY_BANDS):
                bands = range(start, min(start + _APPLY_BANDS, self.n_bands))
                batch = torch.stack([stack[b : b + channels] for b in bands])
                denoised = self.network(batch)[:, 0].cpu().numpy()
                out[:, :, start : bands.stop] = np.moveaxis(denoised, 0, -1)
        out *= self.band_std
        out += self.band_mean
        return out

    def state(self) -> dict[str, Any]:
        """Plain data and tensors for a checkpoint (no code)."""
        return {
            "kind": "dncnn",
            "neighbours": self.network.neighbours,
            "depth": self.network.depth,
            "width": self.network.width,
            "band_mean": self.band_mean,
            "band_std": self.band_std,
            "train_seconds": self.train_seconds,
            "weights": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device | None = None) -> Denoiser:
        """Rebuilds a fitted denoiser from :meth:`state` (arrays may be tensors or numpy).

        Raises:
            ValueError: sizes that are not integers, or weights that do not fit them (compared on the meta
                device first, so sizes from a file never build a network larger than its weights).
        """
        sizes = {key: state[key] for key in ("neighbours", "depth", "width")}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes.values()):
            raise ValueError("the denoiser's sizes are not integers")
        weights = {k: torch.as_tensor(v) for k, v in state["weights"].items()}
        if sizes["depth"] > len(weights):  # every layer holds at least one tensor
            raise ValueError("the denoiser is deeper than its weights")
        with torch.device("meta"):
            probe = dncnn(**sizes)
        if {k: (v.shape, v.dtype) for k, v in probe.state_dict().items()} != {
                k: (v.shape, v.dtype) for k, v in weights.items()}:
            raise ValueError("the denoiser's weights do not fit its sizes")
        network = dncnn(**sizes)
        network.load_state_dict(weights)
        network.to(device or torch.device("cpu"))
        as_array = lambda v: v.numpy() if torch.is_tensor(v) else np.asarray(v)  # noqa: E731
        return cls(network, as_array(state["band_mean"]), as_array(state["band_std"]),
                   train_seconds=float(state.get("train_seconds", 0.0)))


def _band_stats(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bands = cube.shape[2]
    mean, std = np.empty(bands, dtype=np.float32), np.empty(bands, dtype=np.float32)
    for b in range(bands):
        values = cube[:, :, b].astype(np.float64)
        mean[b], std[b] = values.mean(), values.std()
    std[~(std > 0)] = 1.0  # a constant band stays constant
    return mean, std


def _band_stack(cube: np.ndarray, mean: np.ndarray, std: np.ndarray, neighbours: int) -> torch.Tensor:
    """Normalised bands as images, shape (B + 2 neighbours, H, W), edge bands repeated at both ends."""
    normalised = (np.asarray(cube, dtype=np.float32) - mean) / std
    index = np.clip(np.arange(-neighbours, cube.shape[2] + neighbours), 0, cube.shape[2] - 1)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(normalised, -1, 0)[index]))


def _blind_spots(crops: torch.Tensor, centre: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Replaces a few centre-band pixels per crop by a random neighbour's value.

    Returns:
        (inputs, sample, rows, cols, targets): the masked crops and, per blind spot, its crop,
        position and original value.
    """
    n, _, size, _ = crops.shape
    count = max(1, round(_MASK_RATIO * size * size))
    sample = torch.arange(n).repeat_interleave(count)
    rows = torch.randint(0, size, (n * count,), generator=generator)
    cols = torch.randint(0, size, (n * count,), generator=generator)
    offsets = torch.tensor([(dy, dx) for dy in range(-_NEIGHBOUR_RADIUS, _NEIGHBOUR_RADIUS + 1)
                            for dx in range(-_NEIGHBOUR_RADIUS, _NEIGHBOUR_RADIUS + 1) if (dy, dx) != (0, 0)])
    pick = offsets[torch.randint(0, len(offsets), (n * count,), generator=generator)]
    # Out of the crop: mirror the offset (never zero, so the neighbour is never the pixel itself).
    near_rows = torch.where((rows + pick[:, 0] < 0) | (rows + pick[:, 0] >= size), rows - pick[:, 0], rows + pick[:, 0])
    near_cols = torch.where((cols + pick[:, 1] < 0) | (cols + pick[:, 1] >= size), cols - pick[:, 1], cols + pick[:, 1])
    targets = crops[sample, centre, rows, cols]
    inputs = crops.clone()
    inputs[sample, centre, rows, cols] = crops[sample, centre, near_rows, near_cols]
    return inputs, sample, rows, cols, targets


def fit_denoiser(cube: np.ndarray, settings: DenoiseSettings, *, device: torch.device | None = None) -> Denoiser:
    """Fits a DnCNN on random crops of the cube's bands with the blind-spot objective.

    Args:
        cube: the (noisy) scene, shape (H, W, B); no labels are used.
        settings: network size, steps, batch of crops, crop side, learning rate, seed.
        device: where to fit (default CPU).

    Returns:
        The fitted :class:`Denoiser` (in eval mode), with its fitting seconds.
    """
    device = device or torch.device("cpu")
    height, width, bands = cube.shape
    size = min(settings.crop, height, width)
    if size < 2 * _NEIGHBOUR_RADIUS + 1:
        raise ConfigError(f"the denoiser needs a scene of at least 5 x 5 pixels; got {height} x {width}.")
    started = time.perf_counter()
    mean, std = _band_stats(cube)
    stack = _band_stack(cube, mean, std, settings.neighbours).to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        network = dncnn(neighbours=settings.neighbours, depth=settings.depth, width=settings.width).to(device)
    channels = network.in_chans
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.lr)
    network.train()
    for _ in range(settings.steps):
        band = torch.randint(0, bands, (settings.batch_size,), generator=generator).tolist()
        top = torch.randint(0, height - size + 1, (settings.batch_size,), generator=generator).tolist()
        left = torch.randint(0, width - size + 1, (settings.batch_size,), generator=generator).tolist()
        crops = torch.stack([stack[b : b + channels, t : t + size, s : s + size]
                             for b, t, s in zip(band, top, left, strict=True)])
        inputs, sample, rows, cols, targets = _blind_spots(crops, settings.neighbours, generator)
        output = network(inputs)
        loss = torch.mean((output[sample, 0, rows, cols] - targets) ** 2)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return Denoiser(network, mean, std, train_seconds=time.perf_counter() - started)
