#!/usr/bin/env python3
"""Writes the tiny SYNTHETIC scene the unit tests use instead of real data (torchgeo style).

Not real data: a seeded 30 x 26 pixel, 24-band cube of smooth made-up spectra plus noise,
and ground truth with four classes laid out as rectangular fields. Its label ids are
2, 3, 5 and 9 (not 1..K, like Salinas-A's), 0 is unlabelled, and a few rows and columns
are left unlabelled. Run ``python tests/data/synthetic_scene/data.py`` to rewrite the files;
the outputs are committed next to this script.

Files: ``synthetic_cube.mat`` (key ``cube``, int16, shape (30, 26, 24)),
``synthetic_gt.mat`` (key ``gt``, uint8, shape (30, 26)), ``synthetic_cube.npy`` and
``synthetic_gt.npy`` (the same arrays).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

HEIGHT, WIDTH, BANDS = 30, 26, 24
LABEL_IDS = (2, 3, 5, 9)
HERE = Path(__file__).resolve().parent


def make_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns (cube (H, W, B) int16, gt (H, W) uint8)."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    # Four fields in a 2 x 2 layout, split by an unlabelled cross, each ~13 x 12 pixels.
    gt[1:14, 1:12] = LABEL_IDS[0]
    gt[1:14, 14:25] = LABEL_IDS[1]
    gt[16:29, 1:12] = LABEL_IDS[2]
    gt[16:29, 14:25] = LABEL_IDS[3]
    wavelengths = np.linspace(0.0, 1.0, BANDS)
    means = {
        0: 1000.0 + 800.0 * np.sin(3.0 * wavelengths),
        LABEL_IDS[0]: 2000.0 + 1500.0 * wavelengths,
        LABEL_IDS[1]: 3500.0 - 1500.0 * wavelengths,
        LABEL_IDS[2]: 2500.0 + 900.0 * np.cos(6.0 * wavelengths),
        LABEL_IDS[3]: 1800.0 + 1200.0 * (wavelengths - 0.5) ** 2 * 4.0,
    }
    cube = np.empty((HEIGHT, WIDTH, BANDS), dtype=np.float64)
    for label, mean in means.items():
        mask = gt == label
        cube[mask] = mean + rng.normal(0.0, 120.0, size=(int(mask.sum()), BANDS))
    return np.round(cube).astype(np.int16), gt


def main() -> None:
    cube, gt = make_scene()
    scipy.io.savemat(HERE / "synthetic_cube.mat", {"cube": cube}, do_compression=True)
    scipy.io.savemat(HERE / "synthetic_gt.mat", {"gt": gt}, do_compression=True)
    np.save(HERE / "synthetic_cube.npy", cube)
    np.save(HERE / "synthetic_gt.npy", gt)


if __name__ == "__main__":
    main()
