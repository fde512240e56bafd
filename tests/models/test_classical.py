"""The sklearn baselines fit and predict on centre-pixel spectra (N, C)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from hsi.models import create_model


def _synthetic_spectra(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic data: three well-separated Gaussian classes of 30-band spectra."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 5.0, size=(3, 30))
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(0.0, 0.5, size=(y.size, 30))
    return x.astype(np.float32), y


@pytest.mark.parametrize("name", ["svm", "random_forest"])
def test_fit_predict_on_synthetic_spectra(name: str) -> None:
    x, y = _synthetic_spectra()
    est = create_model(name, in_chans=30, num_classes=3, patch_size=25, seed=0)
    pred = est.fit(x, y).predict(x)
    assert pred.shape == (120,)
    assert (pred == y).mean() > 0.95


def test_svm_defaults() -> None:
    est = create_model("svm", in_chans=None, num_classes=None, patch_size=None)
    assert isinstance(est, Pipeline)
    svc = est.named_steps["svc"]
    assert (svc.kernel, svc.C, svc.gamma) == ("rbf", 100.0, "scale")
    assert svc.probability is not True  # False, or "deprecated" (off) from scikit-learn 1.9


def test_random_forest_defaults_and_seed() -> None:
    x, y = _synthetic_spectra(1)
    a = create_model("random_forest", in_chans=30, num_classes=3, patch_size=1, seed=3, n_estimators=20)
    b = create_model("random_forest", in_chans=30, num_classes=3, patch_size=1, seed=3, n_estimators=20)
    assert create_model("random_forest", in_chans=30, num_classes=3, patch_size=1).n_estimators == 200
    assert a.n_jobs == -1
    assert np.array_equal(a.fit(x, y).predict_proba(x), b.fit(x, y).predict_proba(x))
