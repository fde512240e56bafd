"""Fixtures for the tests of files from someone else: evil checkpoints, lying headers, fuzzing."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_DATA_CONFTEST = Path(__file__).resolve().parents[1] / "data" / "conftest.py"


def _load_write_mat_v73() -> Callable[[Path, dict[str, np.ndarray | str]], Path]:
    """tests/data/conftest.py's MATLAB v7.3 writer (conftest files are not importable as modules)."""
    spec = importlib.util.spec_from_file_location("_hsi_tests_data_conftest", _DATA_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.write_mat_v73


write_mat_v73 = _load_write_mat_v73()


@pytest.fixture(name="write_mat_v73", scope="session")
def write_mat_v73_fixture() -> Callable[[Path, dict[str, np.ndarray | str]], Path]:
    return write_mat_v73


#: The models of :func:`model_runs`: a CNN, an SVM, a random forest, a CNN behind a denoiser, an ensemble.
MODEL_SEEDS = ("hybridsn", "svm", "random_forest", "denoiser", "ensemble")


@pytest.fixture(scope="session")
def model_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders (model.json + model.safetensors) of each of :data:`MODEL_SEEDS`, for the synthetic scene's
    24 bands and ids (2, 3, 5, 9): what ``run_checkpoint`` writes, untrained (a test of files needs no accuracy).

    Built without a train run, so it is fast; the estimators are fitted on random spectra, the forest with
    5 trees.
    """
    from types import SimpleNamespace

    from hsi.config import RunConfig
    from hsi.experiments.steps import Features, run_checkpoint
    from hsi.features.pca import SpectralPCA
    from hsi.training.checkpoint import save_run_model
    from hsi.training.denoise_fit import DenoiseSettings, fit_denoiser
    from hsi.training.ensemble import EnsembleClassifier
    from hsi.training.factory import build_classifier

    rng = np.random.default_rng(0)
    n_bands, n_components, n_classes = 24, 15, 4
    cube = rng.random((12, 12, n_bands), dtype=np.float32)
    pca = SpectralPCA(n_components).fit(cube.reshape(-1, n_bands))
    scene = SimpleNamespace(name="synthetic", n_bands=n_bands, rgb_bands=(1, 2, 3), class_ids=(2, 3, 5, 9),
                            class_names=("a", "b", "c", "d"), palette=("#e6194b", "#3cb44b", "#ffe119", "#4363d8"))
    out = tmp_path_factory.mktemp("model_runs")
    folders = {}
    for seed in MODEL_SEEDS:
        model = {"denoiser": "hybridsn", "ensemble": "hybridsn"}.get(seed, seed)
        classifier: Any = build_classifier(model, in_chans=n_components, num_classes=n_classes, patch_size=5, seed=0)
        if seed == "ensemble":
            classifier = EnsembleClassifier([classifier, build_classifier(model, in_chans=n_components,
                                                                          num_classes=n_classes, patch_size=5, seed=1)])
        if model == "random_forest":
            classifier.estimator.set_params(n_estimators=5, n_jobs=1)
        if model in ("svm", "random_forest"):
            classifier.estimator.fit(rng.random((40, n_components)), np.arange(40) % n_classes)
        denoiser = fit_denoiser(cube, DenoiseSettings(depth=3, width=4, steps=1, batch_size=1, crop=8)) \
            if seed == "denoiser" else None
        run_model = run_checkpoint(SimpleNamespace(classifier=classifier),
                                 Features(np.empty((0, 0, n_components)), pca, denoiser), scene,
                                 RunConfig(model=model, patch_size=5, pca_components=n_components))
        save_run_model(out / seed, run_model)
        folders[seed] = out / seed
    return folders
