"""Fuzzing every reader of files from someone else: load, or refuse in one line; never a traceback.

Small valid files of each format the tool reads (MATLAB v5 and v7.3, ENVI header + data,
.npy, a run's model.json + model.safetensors, a legacy model.pt) are mutated by hypothesis:
bytes flipped, overwritten with extreme values, cut, inserted, and headers rewritten to
declare other sizes. Each mutant goes through the real CLI ``main`` in-process
(``inspect`` for data files, the ``predict`` loading steps for checkpoints) and must give the
one contract: exit code 0, or exit code 2 with one ``hsi-classify: error:`` line, no library
warning, within the time and memory bounds below. ``HSI_AVAILABLE_MEMORY`` is 64 MiB here,
so a mutant that declares a large array is refused by the size check.

The default run is derandomized (the same cases every time, for CI); ``scripts/fuzz.py --count N``
runs N random cases per format.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import resource
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hsi._core.errors import HSIError
from hsi._core.memory import MEMORY_ENV
from hsi.cli.main import main
from hsi.features.pca import SpectralPCA
from hsi.training.checkpoint import MODEL_JSON, MODEL_TENSORS, load_run_model, save_checkpoint
from hsi.training.factory import classifier_from_state

#: Cases per format: a few hundred in all by default; scripts/fuzz.py sets more.
COUNT = int(os.environ.get("HSI_FUZZ_COUNT", "50"))
RANDOM = bool(os.environ.get("HSI_FUZZ_COUNT"))  # scripts/fuzz.py: new cases each run
SECONDS_PER_CASE = 5.0
RSS_GROWTH_LIMIT = 1 << 30  # peak resident memory may grow by at most this much over a whole test

FUZZ = settings(max_examples=COUNT, deadline=timedelta(seconds=SECONDS_PER_CASE), derandomize=not RANDOM,
                database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

_ERROR_LINE = re.compile(r"hsi-classify: error: [^\n]+\n?")


@pytest.fixture(scope="module", autouse=True)
def bounded_memory() -> Iterator[None]:
    """64 MiB of 'available' memory for the readers, and a check that the process stayed within 1 GiB more."""
    previous = os.environ.get(MEMORY_ENV)
    os.environ[MEMORY_ENV] = "64M"
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start
    if previous is None:
        del os.environ[MEMORY_ENV]
    else:
        os.environ[MEMORY_ENV] = previous
    assert grown < RSS_GROWTH_LIMIT, f"peak memory grew by {grown >> 20} MiB while fuzzing"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hsi-fuzz-") as folder:
        yield Path(folder)


def _contract(run: Callable[[], int]) -> int:
    """Runs one case as the CLI would; asserts exit 0, or exit 2 with one error line; returns the code."""
    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = run()
    seconds = time.perf_counter() - started
    text = err.getvalue()
    assert seconds < SECONDS_PER_CASE, f"{seconds:.1f} s"
    assert code in (0, 2), text
    if code == 2:
        assert _ERROR_LINE.fullmatch(text), text
    else:
        assert "error" not in text, text
    library = [f"{w.category.__name__}: {w.message}" for w in caught if "/hsi/" not in w.filename]
    assert not library, library
    return code


def _case(run: Callable[[], int]) -> None:
    """One fuzz case: the contract, and its exit code counted (``--hypothesis-show-statistics``)."""
    event(f"exit code {_contract(run)}")


def _cli(*args: str) -> Callable[[], int]:
    return lambda: main(list(args))


# ---------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1-8 edits: a flipped bit, an extreme 1/2/4/8-byte value, a cut, an insertion, a deletion."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        if not buffer:
            break
        at = draw(st.integers(0, len(buffer) - 1))
        edit = draw(st.sampled_from(["flip", "value", "cut", "insert", "delete"]))
        if edit == "flip":
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "value":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from([0, 1, 0x7F, 0xFF, 2 ** (8 * width - 1) - 1, 2 ** (8 * width) - 1,
                                          2 ** (8 * width - 1)]) | st.integers(0, 2 ** (8 * width) - 1))
            buffer[at:at + width] = value.to_bytes(width, draw(st.sampled_from(["little", "big"])))
        elif edit == "cut":
            del buffer[at:]
        elif edit == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del buffer[at:at + draw(st.integers(1, 64))]
    return bytes(buffer)


_SIZES = st.integers(0, 4) | st.integers(0, 100) | st.sampled_from([2**16, 2**31 - 1, 2**32, 2**40, 2**62])


# ---------------------------------------------------------------- data files


@pytest.fixture(scope="module")
def data_seeds(workdir: Path, write_mat_v73: Callable[..., Path]) -> dict[str, Any]:
    """Small valid files of each data format, and the ground truth they go with (6 x 5 pixels, 4 bands)."""
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 1000, size=(6, 5, 4)).astype(np.int16)
    gt = rng.integers(0, 3, size=(6, 5)).astype(np.uint8)
    seeds: dict[str, Any] = {"cube": cube, "gt": workdir / "gt.npy"}
    np.save(seeds["gt"], gt)
    for compress in (False, True):
        path = workdir / f"seed_v5_{compress}.mat"
        scipy.io.savemat(path, {"cube": cube, "wavelengths": np.arange(4.0)}, do_compression=compress)
        seeds[f"v5_{compress}"] = path.read_bytes()
    seeds["v73"] = write_mat_v73(workdir / "seed_v73.mat", {"cube": cube}).read_bytes()
    buffer = io.BytesIO()
    np.save(buffer, cube)
    seeds["npy"] = buffer.getvalue()
    seeds["envi_header"] = ("ENVI\nsamples = 5\nlines = 6\nbands = 4\nheader offset = 0\nfile type = ENVI Standard\n"
                            "data type = 2\ninterleave = bsq\nbyte order = 0\n")
    seeds["envi_data"] = np.ascontiguousarray(cube.transpose(2, 0, 1)).tobytes()  # band sequential
    return seeds


def _inspect(cube: Path, seeds: dict[str, Any]) -> Callable[[], int]:
    return _cli("inspect", "--cube", str(cube), "--gt", str(seeds["gt"]))


def test_the_seed_files_load(data_seeds: dict[str, Any], workdir: Path) -> None:
    """The mutations start from files that load: a refusal of every mutant would test nothing."""
    for name, suffix in (("v5_False", ".mat"), ("v5_True", ".mat"), ("v73", ".mat"), ("npy", ".npy")):
        path = workdir / f"ok{suffix}"
        path.write_bytes(data_seeds[name])
        assert _contract(_inspect(path, data_seeds)) == 0, name
    (workdir / "ok.hdr").write_text(data_seeds["envi_header"])
    (workdir / "ok.img").write_bytes(data_seeds["envi_data"])
    assert _contract(_inspect(workdir / "ok.hdr", data_seeds)) == 0


@FUZZ
@given(data=st.data())
def test_fuzz_matlab_v5(data: st.DataObject, data_seeds: dict[str, Any], workdir: Path) -> None:
    seed = data_seeds[data.draw(st.sampled_from(["v5_False", "v5_True"]))]
    path = workdir / "fuzz_v5.mat"
    path.write_bytes(data.draw(mutated(seed)))
    _case(_inspect(path, data_seeds))


@FUZZ
@given(data=st.data())
def test_fuzz_matlab_v73(data: st.DataObject, data_seeds: dict[str, Any], workdir: Path) -> None:
    path = workdir / "fuzz_v73.mat"
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(mutated(data_seeds["v73"])))
    else:  # a well-formed file declaring any shape and dtype: the size check must answer first
        import h5py

        shape = tuple(data.draw(st.lists(st.integers(1, 10**5) | st.integers(1, 8), min_size=0, max_size=4)))
        dtype = data.draw(st.sampled_from(["int8", "uint16", "int32", "float32", "float64", "uint64"]))
        with h5py.File(path, "w", userblock_size=512) as f:
            chunks = tuple(min(n, 64) for n in shape) or None
            dataset = f.create_dataset("cube", shape=shape, dtype=dtype, chunks=chunks)
            dataset.attrs.create("MATLAB_class", np.bytes_(data.draw(st.sampled_from(["int16", "double", "char",
                                                                                      "cell", "logical"]))))
    _case(_inspect(path, data_seeds))


@FUZZ
@given(data=st.data())
def test_fuzz_envi(data: st.DataObject, data_seeds: dict[str, Any], workdir: Path) -> None:
    header = data_seeds["envi_header"]
    for field in ("samples", "lines", "bands", "header offset", "data type", "byte order"):
        if data.draw(st.booleans()):
            value = data.draw(_SIZES | st.integers(-5, -1))
            header = re.sub(rf"(?m)^{field} = .*$", f"{field} = {value}", header)
    if data.draw(st.booleans()):
        header = re.sub(r"(?m)^interleave = .*$", "interleave = " + data.draw(st.sampled_from(["bil", "bip", "xyz"])),
                        header)
    raw = header.encode()
    if data.draw(st.booleans()):
        raw = data.draw(mutated(raw))
    (workdir / "fuzz.hdr").write_bytes(raw)
    (workdir / "fuzz.img").write_bytes(data.draw(mutated(data_seeds["envi_data"])) if data.draw(st.booleans())
                                       else data_seeds["envi_data"])
    _case(_inspect(workdir / "fuzz.hdr", data_seeds))


@FUZZ
@given(data=st.data())
def test_fuzz_npy(data: st.DataObject, data_seeds: dict[str, Any], workdir: Path) -> None:
    raw = data_seeds["npy"]
    if data.draw(st.booleans()):  # a header that declares another shape or dtype over the same data
        shape = tuple(data.draw(st.lists(_SIZES, max_size=4)))
        descr = data.draw(st.sampled_from(["<i2", ">f8", "|u1", "<f4", "|O", "<U8", "|V4", "<c16"]))
        header = repr({"descr": descr, "fortran_order": data.draw(st.booleans()), "shape": shape}).encode()
        header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
        raw = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + raw[128:]
    if data.draw(st.booleans()):
        raw = data.draw(mutated(raw))
    path = workdir / "fuzz.npy"
    path.write_bytes(raw)
    _case(_inspect(path, data_seeds))


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def model_seeds(workdir: Path) -> dict[str, Any]:
    """The model files of a CNN and an SVM (run_checkpoint's content, untrained: fuzzing needs no accuracy).

    Built without a train run so the file stays fast; ``run_checkpoint`` is still what fills them.
    """
    from types import SimpleNamespace

    from hsi.config import RunConfig
    from hsi.experiments.steps import Features, run_checkpoint
    from hsi.training.checkpoint import save_run_model
    from hsi.training.factory import build_classifier

    rng = np.random.default_rng(0)
    n_bands, n_components, n_classes = 24, 15, 4
    pca = SpectralPCA(n_components).fit(rng.random((100, n_bands), dtype=np.float32))
    scene = SimpleNamespace(name="synthetic", n_bands=n_bands, rgb_bands=(1, 2, 3), class_ids=(2, 3, 5, 9),
                            class_names=("a", "b", "c", "d"), palette=("#e6194b", "#3cb44b", "#ffe119", "#4363d8"))
    seeds: dict[str, Any] = {"n_bands": n_bands}
    for model in ("hybridsn", "svm"):
        classifier = build_classifier(model, in_chans=n_components, num_classes=n_classes, patch_size=5, seed=0)
        if model == "svm":
            classifier.estimator.fit(rng.random((40, n_components)), np.arange(40) % n_classes)
        payload = run_checkpoint(SimpleNamespace(classifier=classifier), Features(np.empty((0, 0, n_components)), pca), scene,
                                 RunConfig(model=model, patch_size=5, pca_components=n_components))
        folder = workdir / f"seed_{model}"
        save_run_model(folder, payload)
        save_checkpoint(folder / "model.pt", payload)
        seeds[model] = {"json": (folder / MODEL_JSON).read_bytes(), "tensors": (folder / MODEL_TENSORS).read_bytes(),
                        "legacy": (folder / "model.pt").read_bytes()}
    return seeds


def _load_for_predict(checkpoint: Path, n_bands: int) -> Callable[[], int]:
    """What ``predict`` does with a checkpoint before the scene (experiments/predict.py), with main's error mapping."""

    def run() -> int:
        try:
            data = load_run_model(checkpoint)
            classifier = classifier_from_state(data, "cpu")
            pca = SpectralPCA.from_state_dict({k: (v.numpy() if torch.is_tensor(v) else v)
                                               for k, v in data["pca"].items()})
            pca.transform(np.zeros((2, 2, n_bands), np.float32))
            assert classifier.receptive_field >= 1
        except HSIError as err:  # as hsi.cli.main.main prints it
            print(f"hsi-classify: error: {err}", file=__import__("sys").stderr)
            return 2
        return 0

    return run


def _json_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_leaves(item, (*path, index))
    yield path


_JSON_VALUES = (st.none() | st.booleans() | _SIZES | st.integers(-10, -1) | st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)
                | st.text(max_size=8) | st.lists(st.integers(0, 5), max_size=3) | st.just({"$tensor": "pca/mean"})
                | st.just({}))


def _resigned(meta: dict[str, Any], tensors: bytes) -> str:
    """model.json text with its checksums recomputed: an edit made by someone who knows the format."""
    import hashlib

    from hsi.training.checkpoint import _json_digest

    meta["tensors"] = {**meta.get("tensors", {}), "bytes": len(tensors), "sha256": hashlib.sha256(tensors).hexdigest()}
    meta["content_sha256"] = _json_digest(meta)
    return json.dumps(meta)


@FUZZ
@given(data=st.data())
def test_fuzz_model_json_and_safetensors(data: st.DataObject, model_seeds: dict[str, Any], workdir: Path) -> None:
    seed = model_seeds[data.draw(st.sampled_from(["hybridsn", "svm"]))]
    folder = workdir / "fuzz_run"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    tensors = seed["tensors"]
    how = data.draw(st.sampled_from(["json edit", "json bytes", "tensors edit", "tensors bytes", "json edit"]))
    if how == "tensors edit":  # other shapes or dtypes under the same names, checksums made to match
        from safetensors.torch import load, save

        loaded = load(tensors)
        for name in data.draw(st.lists(st.sampled_from(sorted(loaded)), min_size=1, max_size=3, unique=True)):
            shape = data.draw(st.lists(st.integers(0, 6), max_size=3))
            loaded[name] = torch.zeros(shape, dtype=data.draw(st.sampled_from([torch.float32, torch.uint8,
                                                                             torch.int64, torch.float16])))
        tensors = save(loaded)
    meta = json.loads(seed["json"])
    if how == "json edit":  # any entry replaced or deleted, checksums made to match
        for _ in range(data.draw(st.integers(1, 2))):
            leaves = [p for p in _json_leaves(meta) if p and p[0] not in ("tensors", "content_sha256")]
            target = data.draw(st.sampled_from(leaves))
            parent = meta
            for key in target[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[target[-1]]
            else:
                parent[target[-1]] = copy.deepcopy(data.draw(_JSON_VALUES))  # st.just shares its object
    text = _resigned(meta, tensors) if how in ("json edit", "tensors edit") else seed["json"].decode()
    raw_json, raw_tensors = text.encode(), tensors
    if how == "json bytes":
        raw_json = data.draw(mutated(raw_json))
    elif how == "tensors bytes":
        raw_tensors = data.draw(mutated(raw_tensors))
    (folder / MODEL_JSON).write_bytes(raw_json)
    (folder / MODEL_TENSORS).write_bytes(raw_tensors)
    _case(_load_for_predict(folder, model_seeds["n_bands"]))


@FUZZ
@given(data=st.data())
def test_fuzz_legacy_model_pt(data: st.DataObject, model_seeds: dict[str, Any], workdir: Path) -> None:
    seed = model_seeds[data.draw(st.sampled_from(["hybridsn", "svm"]))]["legacy"]
    path = workdir / "fuzz_model.pt"
    path.write_bytes(data.draw(mutated(seed)))
    _case(_load_for_predict(path, model_seeds["n_bands"]))


def test_the_seed_checkpoints_load(model_seeds: dict[str, Any], workdir: Path) -> None:
    for model in ("hybridsn", "svm"):
        folder = workdir / f"ok_{model}"
        folder.mkdir(exist_ok=True)
        (folder / MODEL_JSON).write_bytes(model_seeds[model]["json"])
        (folder / MODEL_TENSORS).write_bytes(model_seeds[model]["tensors"])
        assert _contract(_load_for_predict(folder, model_seeds["n_bands"])) == 0
        (workdir / "ok.pt").write_bytes(model_seeds[model]["legacy"])
        assert _contract(_load_for_predict(workdir / "ok.pt", model_seeds["n_bands"])) == 0
