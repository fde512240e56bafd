"""A model file from a stranger (issue 32): every crafted case is one line, exit 2, bounded time and memory.

Each case edits a run's model.json or model.safetensors as someone who knows the format would
(checksums recomputed, tests/security/hostile_models.py) and runs ``predict`` on it through the
CLI's ``main``: exit code 2, one ``hsi-classify: error:`` line saying what is wrong, no output
folder, within the time bound. The cases that used to kill or hang the process (a crafted
forest: SIGSEGV or an endless loop) or exhaust its memory run again in a process of their own,
where a signal, the time and the peak memory can be seen.
"""

from __future__ import annotations

import copy
import os
import resource
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hostile_models import (
    deflate_bomb,
    edit_tree,
    first_split,
    load_estimator,
    read_run,
    resigned_json,
    resigned_json_raw,
    skops_tensor,
    write_run,
)

from hsi.cli.main import main
from hsi.training.checkpoint import (
    MODEL_JSON,
    MODEL_TENSORS,
    check_run_model,
    load_checkpoint,
    load_run_model,
    save_checkpoint,
)

SECONDS = 30.0
RSS_LIMIT = 1 << 30
Edit = Callable[[dict[str, Any], dict[str, torch.Tensor]], Any]


def _predict(checkpoint: Path, cube: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
             ) -> tuple[int, str, float]:
    capsys.readouterr()
    started = time.perf_counter()
    code = main(["predict", "--checkpoint", str(checkpoint), "--cube", str(cube), "--out", str(out), "--device", "cpu",
                 *extra])
    return code, capsys.readouterr().err, time.perf_counter() - started


def _refused(code: int, err: str, seconds: float, out: Path, words: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hsi-classify: error: "), err
    assert words in err, err
    assert "Traceback" not in err and seconds < SECONDS and not out.exists()


def _edited(model_runs: dict[str, Path], seed: str, edit: Edit, folder: Path) -> Path:
    """A copy of the seed run with ``edit(meta, tensors)`` applied; an edit returning text writes that as model.json."""
    meta, tensors = read_run(model_runs[seed])
    text = edit(meta, tensors)
    if isinstance(text, str):
        return write_run(folder, meta, (model_runs[seed] / MODEL_TENSORS).read_bytes(), json_text=text)
    return write_run(folder, meta, tensors)


def _nested(depth: int) -> Edit:
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
        meta["config"]["deep"] = "@deep@"
        return resigned_json_raw(meta, _blob(tensors), {"@deep@": "[" * depth + "1" + "]" * depth})
    return edit


def _json_of_empty_objects(n_bytes: int) -> Edit:
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
        meta["config"]["junk"] = [{}] * (n_bytes // 4)
        return resigned_json(meta, _blob(tensors))
    return edit


def _blob(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in tensors.items()})


def _set(*path: Any, value: Any) -> Edit:
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)
    return edit


def _tensor(name: str, change: Callable[[torch.Tensor], torch.Tensor]) -> Edit:
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        tensors[name] = change(tensors[name])
    return edit


def _members(count: int) -> Edit:
    """``members`` listing ``count`` references to the same network's tensors."""
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        meta["members"] = [meta["members"][0]] * count
    return edit


def _estimator(change: Callable[[Any], Any]) -> Edit:
    """The estimator read, changed (``change`` may return a replacement), and written back as skops bytes."""
    def edit(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        estimator = load_estimator(tensors)
        replaced = change(estimator)
        tensors["estimator_skops"] = skops_tensor(estimator if replaced is None else replaced)
    return edit


def _tree(**fields: Any) -> Edit:
    """The first split node of the forest's second tree given ``fields`` (``left_child``, ``feature``, ...)."""
    def change(forest: Any) -> None:
        tree = forest.estimators_[1].tree_
        edit_tree(tree, first_split(tree), **fields)
    return _estimator(change)


def _svc(attr: str, change: Callable[[Any], Any], step: int = 1) -> Edit:
    def apply(pipeline: Any) -> None:
        owner = pipeline.steps[step][1]
        setattr(owner, attr, change(getattr(owner, attr)))
    return _estimator(apply)


def _logistic(estimator: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(np.random.default_rng(0).random((20, 15)), np.arange(20) % 4)


# (case, seed run, edit, words of the refusal)
CASES: list[tuple[str, str, Edit, str]] = [
    # model.json against its schema: nesting, sizes, types, ranges, lengths
    ("nested 500 deep", "hybridsn", _nested(500), "nests lists and objects more than 8 deep"),
    ("nested 985 deep", "hybridsn", _nested(985), "nests lists and objects"),  # json's own limit, in a test
    ("nested 5000 deep", "hybridsn", _nested(5000), "nests lists and objects hundreds deep"),
    ("60 MB of empty objects", "hybridsn", _json_of_empty_objects(60 << 20), "at most 8 MiB"),
    ("7 MB of empty objects", "hybridsn", _json_of_empty_objects(7 << 20), "JSON objects and lists"),
    ("denoiser width 8000", "denoiser", _set("denoiser", "width", value=8000), "'denoiser.width' is 8000"),
    ("denoiser depth 200000", "denoiser", _set("denoiser", "depth", value=200_000), "'denoiser.depth' is 200000"),
    ("denoiser depth 1e308", "denoiser", _set("denoiser", "depth", value=1e308), "'denoiser.depth' is a number"),
    ("denoiser deeper than its weights", "denoiser", _set("denoiser", "depth", value=900), "its weights hold"),
    ("denoiser wider than its weights", "denoiser", _set("denoiser", "width", value=4000), "do not fit its depth"),
    ("denoiser neighbours beyond the bands", "denoiser", _set("denoiser", "neighbours", value=40), "more than the 24"),
    ("2,000 members", "ensemble", _members(2000), "'members' holds 2000 items"),
    ("members sharing tensors", "ensemble", _members(3), "more than once"),
    ("patch size 4095", "hybridsn", _set("model", "patch_size", value=4095), "'model.patch_size' is 4095"),
    ("in_chans 2^70", "hybridsn", _set("model", "in_chans", value=2**70), "'model.in_chans' is"),
    ("class name of 1 MB", "hybridsn", _set("classes", "names", value=["x" * 1_000_000] * 4), "longer than 200"),
    ("a colour that is not one", "hybridsn", _set("classes", "palette", value=["zzz"] * 4), "not a colour"),
    ("a scene name with a line break", "hybridsn", _set("scene", "name", value="a\nb"), "line break"),
    ("an unknown pad mode", "hybridsn", _set("pad_mode", value="wrap"), "'pad_mode' is 'wrap'"),
    ("an unknown entry in the model", "hybridsn", _set("model", "extra", value=1), "'model.extra' is not an entry"),
    ("no estimator for an svm", "svm", lambda m, t: m.pop("estimator_skops"), "no 'estimator_skops' entry"),
    ("PCA in bfloat16", "hybridsn",
     _tensor("pca/components", lambda t: t.to(torch.bfloat16)), "torch.bfloat16, not (15, 24) torch.float32"),
    ("PCA holding NaN", "svm", _tensor("pca/mean", lambda t: t.index_fill(0, torch.tensor([0]), float("nan"))),
     "'pca.mean' holds NaN"),
    ("denoiser weights in float64", "denoiser", _tensor("denoiser/weights/body.0.weight", lambda t: t.double()),
     "do not fit its depth"),
    # fitted scikit-learn models, checked after skops has read them and before they predict
    ("tree child 10^8", "random_forest", _tree(left_child=10**8), "child indices out of range"),
    ("tree children 0 (a loop)", "random_forest", _tree(left_child=0, right_child=0), "child indices out of range"),
    ("tree feature 10^6", "random_forest", _tree(feature=10**6), "splits on a feature outside 0 to 14"),
    ("tree leaf with one child", "random_forest", _tree(right_child=-1), "child indices out of range"),
    ("forest classes beyond the model's", "random_forest",
     _estimator(lambda f: setattr(f, "classes_", np.array([0, 1, 2, 7]))), "increasing class indices"),
    ("forest of 10^6 jobs", "random_forest", _estimator(lambda f: setattr(f, "n_jobs", 10**6)), "'estimator.n_jobs'"),
    ("SVC support counts x 1000", "svm", _svc("_n_support", lambda v: v * 1000), "counts"),
    ("SVC support vectors cut", "svm", _svc("support_vectors_", lambda v: v[:5].copy()), "support vectors;"),
    ("SVC support vectors narrower", "svm", _svc("support_vectors_", lambda v: v[:, :5].copy()),
     "'estimator.svc.support_vectors_' is float64"),
    ("SVC dual coefficients cut", "svm", _svc("_dual_coef_", lambda v: v[:, :3].copy()), "'estimator.svc._dual_coef_'"),
    ("SVC gamma NaN", "svm", _svc("_gamma", lambda v: float("nan")), "'estimator.svc._gamma'"),
    ("SVC precomputed kernel", "svm", _svc("kernel", lambda v: "precomputed"), "'estimator.svc.kernel'"),
    ("scaler scale_ cut", "svm", _svc("scale_", lambda v: v[:5].copy(), step=0), "'estimator.scale.scale_'"),
    ("skops payload of a dict", "svm", _estimator(lambda e: {"a": 1}), "'estimator' is of type dict"),
    ("skops payload of an ndarray", "random_forest", _estimator(lambda e: np.zeros(3)), "of type ndarray"),
    ("skops payload of another estimator", "svm", _estimator(_logistic), "of type LogisticRegression"),
    ("skops entries deflated", "svm", lambda m, t: t.__setitem__(
        "estimator_skops", skops_tensor(load_estimator(t), zipfile.ZIP_DEFLATED)), "is compressed"),
    ("skops payload not a zip", "svm", _tensor("estimator_skops", lambda t: t[100:].clone()), "no readable estimator"),
]


@pytest.mark.parametrize(("seed", "edit", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_crafted_model_is_refused_in_one_line(seed: str, edit: Edit, words: str, model_runs: dict[str, Path],
                                                synthetic_scene: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = _edited(model_runs, seed, edit, tmp_path / "run")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    code, err, seconds = _predict(folder, synthetic_scene.cube, tmp_path / "out", capsys)
    _refused(code, err, seconds, tmp_path / "out", words)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < RSS_LIMIT


@pytest.mark.usefixtures("figures_not_drawn")
@pytest.mark.parametrize("seed", ["hybridsn", "svm", "random_forest", "denoiser", "ensemble"])
def test_the_uncrafted_models_predict(seed: str, model_runs: dict[str, Path], synthetic_scene: Any, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The checks refuse nothing hsi-classify writes."""
    code, err, _ = _predict(model_runs[seed], synthetic_scene.cube, tmp_path / "out", capsys, "--quiet")
    assert code == 0, err


def test_a_deflated_1_gib_array_in_a_1_mb_payload_is_refused_before_decompression(
        model_runs: dict[str, Path], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = deflate_bomb(1 << 30)
    assert bomb.numel() < 2 << 20
    folder = _edited(model_runs, "svm", lambda m, t: t.__setitem__("estimator_skops", bomb), tmp_path / "run")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    code, err, seconds = _predict(folder, synthetic_scene.cube, tmp_path / "out", capsys)
    _refused(code, err, seconds, tmp_path / "out", "entry 'schema.json' is compressed")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < 256 << 20


def test_an_estimator_larger_than_the_memory_budget_is_refused_before_skops_reads_it(
        model_runs: dict[str, Path], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from hsi.training import checkpoint, estimator_checks

    run = model_runs["random_forest"]
    _, tensors = read_run(run)
    with zipfile.ZipFile(io.BytesIO(tensors["estimator_skops"].numpy().tobytes())) as archive:
        sizes = {i.filename: i.file_size for i in archive.infolist()}
    schema = sizes.pop("schema.json")
    needed = estimator_checks._SCHEMA_EXPANSION * schema + estimator_checks._ARRAY_EXPANSION * sum(sizes.values())
    reading = max(2 * (run / MODEL_TENSORS).stat().st_size,  # what reading the two files needs
                  checkpoint._JSON_EXPANSION * (run / MODEL_JSON).stat().st_size)
    assert reading < needed
    monkeypatch.setenv("HSI_AVAILABLE_MEMORY", str(reading + 1))  # the files read, the estimator does not fit
    code, err, seconds = _predict(run, synthetic_scene.cube, tmp_path / "out", capsys)
    _refused(code, err, seconds, tmp_path / "out", "holds an estimator of")
    assert "of memory to read" in err


def test_a_matlab_cell_declaring_100000_x_100000_x_3_is_refused(model_runs: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import scipy.io

    cell = np.empty((2, 2, 3), dtype=object)
    for index in np.ndindex(cell.shape):
        cell[index] = np.zeros(1)
    path = tmp_path / "cells.mat"
    scipy.io.savemat(path, {"cube": np.zeros((4, 4, 24)), "c": cell})
    raw = path.read_bytes()
    assert raw.count(struct.pack("<iii", 2, 2, 3)) == 1  # the cell's dimensions, declared 100000 x 100000 x 3
    path.write_bytes(raw.replace(struct.pack("<iii", 2, 2, 3), struct.pack("<iii", 100_000, 100_000, 3)))
    code, err, seconds = _predict(model_runs["hybridsn"], path, tmp_path / "out", capsys, "--cube-key", "c")
    _refused(code, err, seconds, tmp_path / "out", "variable c is a cell (100000, 100000, 3), not a numeric array")


def test_a_legacy_model_pt_nested_deep_is_refused_before_its_checksum(model_runs: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    from hsi._core.errors import CheckpointError

    content = load_run_model(model_runs["hybridsn"]).to_payload()
    value: Any = 1
    for _ in range(100):
        value = [value]
    content["config"]["deep"] = value
    save_checkpoint(tmp_path / "model.pt", content)
    with pytest.raises(CheckpointError, match="nests lists and objects more than 64 deep"):
        load_checkpoint(tmp_path / "model.pt")


def test_the_schema_checks_a_legacy_model_pt_too(model_runs: dict[str, Path]) -> None:
    from hsi._core.errors import CheckpointError

    data = load_run_model(model_runs["denoiser"]).to_payload()
    check_run_model(data, "model.pt")
    data["pca"]["mean"] = data["pca"]["mean"].to(torch.bfloat16)
    with pytest.raises(CheckpointError, match="'pca.mean' has shape"):
        check_run_model(data, "model.pt")


def test_every_registered_estimator_has_a_structural_check() -> None:
    from hsi.models import MODELS
    from hsi.training.estimator_checks import CHECKED_MODELS

    assert {entry.name for entry in MODELS if entry.obj.kind == "sklearn"} == set(CHECKED_MODELS)


def test_a_run_stores_its_estimator_uncompressed(model_runs: dict[str, Path]) -> None:
    import io

    _, tensors = read_run(model_runs["random_forest"])
    with zipfile.ZipFile(io.BytesIO(tensors["estimator_skops"].numpy().tobytes())) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


# ---------------------------------------------------------------- in a process of their own: signals, time, memory

# The child's own peak (VmHWM, kB): ru_maxrss would keep the forking parent's peak across exec on Linux,
# and a pytest process that ran the suite holds about 1 GB.
_CHILD = ("import os, re, sys\nfrom hsi.cli.main import main\ncode = main(sys.argv[1:])\n"
          "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
          "open(os.environ['HSI_TEST_RSS'], 'w').write(peak)\n"
          "sys.exit(code)")
ALONE = {
    "tree child 10^8": "child indices out of range",  # was SIGSEGV
    "tree children 0 (a loop)": "child indices out of range",  # was an endless loop
    "tree feature 10^6": "splits on a feature",  # was SIGSEGV
    "denoiser width 8000": "'denoiser.width' is 8000",  # was 2.57 GB
    "2,000 members": "'members' holds 2000 items",  # was > 240 s
}


@pytest.mark.parametrize("case", sorted(ALONE))
def test_the_crashing_cases_end_in_one_line_in_their_own_process(case: str, model_runs: dict[str, Path],
                                                                 synthetic_scene: Any, tmp_path: Path) -> None:
    _, seed, edit, _ = next(c for c in CASES if c[0] == case)
    folder = _edited(model_runs, seed, edit, tmp_path / "run")
    env = {**os.environ, "HSI_TEST_RSS": str(tmp_path / "rss")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "predict", "--checkpoint", str(folder), "--cube",
                           str(synthetic_scene.cube), "--out", str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=SECONDS, env=env)
    seconds = time.perf_counter() - started
    assert done.returncode == 2, f"exit {done.returncode} (a negative code is a signal): {done.stderr[-2000:]}"
    _refused(done.returncode, done.stderr, seconds, tmp_path / "out", ALONE[case])
    assert int((tmp_path / "rss").read_text()) * 1024 < RSS_LIMIT


def test_model_json_bounds_are_stated_in_the_security_page() -> None:
    from hsi.training import checkpoint, estimator_checks

    page = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    for value in (checkpoint.MAX_NESTING, checkpoint.MAX_PATCH_SIZE, checkpoint.MAX_MEMBERS,
                  checkpoint.MAX_DENOISER_DEPTH, checkpoint.MAX_DENOISER_WIDTH, estimator_checks.MAX_TREE_DEPTH,
                  estimator_checks.MAX_TREES):
        assert f"{value:,}" in page, value
    assert "8 MiB" in page and "100,000" in page
