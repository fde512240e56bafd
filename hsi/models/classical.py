"""Classical baselines on the centre pixel's spectrum: RBF-SVM and random forest.

Papers:

* F. Melgani, L. Bruzzone, "Classification of Hyperspectral Remote Sensing Images With
  Support Vector Machines", IEEE TGRS 42(8):1778-1790, 2004.
* L. Breiman, "Random Forests", Machine Learning 45:5-32, 2001.

These models see no spatial context: the pipeline feeds them an array of shape
(N, C), the spectrum (after PCA) of each patch's centre pixel, so they accept any odd
patch size. Factories return unfitted scikit-learn estimators with the usual
``fit(X, y)`` / ``predict(X)`` contract.

Defaults:

* ``svm``: ``StandardScaler`` then ``SVC(kernel="rbf", C=100, gamma="scale")``, with
  ``probability`` left at its default, off (Platt scaling would run five extra fits;
  scikit-learn 1.9 deprecates the argument, so it is not passed). With standardised
  inputs ``gamma="scale"`` is about 1 / C_bands. These are starting values, not tuned
  ones: HSI papers pick C and gamma per scene by cross-validated grid search, which
  the caller can do by passing ``C=...`` / ``gamma=...`` overrides.
* ``random_forest``: 200 trees, ``n_jobs=-1`` (all cores), ``random_state=seed``.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from hsi._core.errors import ConfigError
from hsi.models.registry import register_model

__all__: list[str] = []

_SVM_PAPER = (
    'F. Melgani, L. Bruzzone, "Classification of Hyperspectral Remote Sensing Images With Support Vector '
    'Machines", IEEE TGRS 42(8):1778-1790, 2004'
)
_RF_PAPER = 'L. Breiman, "Random Forests", Machine Learning 45:5-32, 2001'


def _check_overrides(estimator: type[BaseEstimator], overrides: dict[str, Any], model: str) -> None:
    """Raises :class:`ConfigError` naming any override the estimator does not take."""
    valid = set(estimator._get_param_names())
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(
            f"model {model!r} has no option {', '.join(map(repr, unknown))}; "
            f"{estimator.__name__} takes: {', '.join(sorted(valid))}."
        )


@register_model(kind="sklearn", paper=_SVM_PAPER)
def svm(*, seed: int | None = None, **overrides: Any) -> Pipeline:
    """RBF support vector machine (C=100, gamma="scale") on standardised centre-pixel spectra."""
    _check_overrides(SVC, overrides, "svm")
    params: dict[str, Any] = {"kernel": "rbf", "C": 100.0, "gamma": "scale"}
    params["random_state"] = seed
    params.update(overrides)
    return Pipeline([("scale", StandardScaler()), ("svc", SVC(**params))])


@register_model(kind="sklearn", paper=_RF_PAPER)
def random_forest(*, seed: int | None = None, **overrides: Any) -> RandomForestClassifier:
    """Random forest of 200 trees on centre-pixel spectra (Breiman 2001)."""
    _check_overrides(RandomForestClassifier, overrides, "random_forest")
    params: dict[str, Any] = {"n_estimators": 200, "n_jobs": -1}
    params["random_state"] = seed
    params.update(overrides)
    return RandomForestClassifier(**params)
