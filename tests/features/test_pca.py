"""SpectralPCA: fitted on chosen pixels, float32 out, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError, NotFittedError
from hsi.features.pca import SpectralPCA


def synthetic_cube() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((10, 12, 3)) @ rng.random((3, 20)) * 1000).astype(np.float32)


def test_pca_reduces_to_float32_and_round_trips() -> None:
    cube = synthetic_cube()
    pca = SpectralPCA(3).fit(cube.reshape(-1, 20))
    out = pca.transform(cube)
    assert out.shape == (10, 12, 3) and out.dtype == np.float32
    assert pca.explained_variance_ratio_.sum() > 0.999  # rank-3 data
    assert np.isclose(out[..., 0].std(), 1.0, atol=0.05)  # scaled to unit first component
    again = SpectralPCA.from_state_dict(pca.state_dict()).transform(cube)
    assert np.array_equal(out, again)
    as_loaded = {k: torch.as_tensor(v) for k, v in pca.state_dict().items()}  # a checkpoint holds tensors
    assert np.array_equal(out, SpectralPCA.from_state_dict(as_loaded).transform(cube))


def test_pca_errors() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        SpectralPCA(3).transform(synthetic_cube())
    with pytest.raises(ConfigError, match="band count 20"):
        SpectralPCA(30).fit(synthetic_cube().reshape(-1, 20))
    pca = SpectralPCA(3).fit(synthetic_cube().reshape(-1, 20))
    with pytest.raises(ConfigError, match="fitted on 20 bands"):
        pca.transform(np.zeros((2, 2, 5), np.float32))
