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
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from hostile_models import load_estimator, read_run, resigned_json_raw, skops_tensor
from hypothesis import HealthCheck, assume, event, given, settings
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
        model_file = run_checkpoint(SimpleNamespace(classifier=classifier), Features(np.empty((0, 0, n_components)), pca),
                                    scene, RunConfig(model=model, patch_size=5, pca_components=n_components))
        folder = workdir / f"seed_{model}"
        save_run_model(folder, model_file)
        save_checkpoint(folder / "model.pt", model_file.to_payload())
        seeds[model] = {"json": (folder / MODEL_JSON).read_bytes(), "tensors": (folder / MODEL_TENSORS).read_bytes(),
                        "legacy": (folder / "model.pt").read_bytes()}
    return seeds


def _load_for_predict(checkpoint: Path, n_bands: int) -> Callable[[], int]:
    """What ``predict`` does with a checkpoint before the scene (experiments/predict.py), with main's error mapping."""

    def run() -> int:
        try:
            model = load_run_model(checkpoint)
            classifier = classifier_from_state(model.classifier_state, "cpu")
            pca = SpectralPCA.from_state_dict({k: (v.numpy() if torch.is_tensor(v) else v)
                                               for k, v in model.pca.items()})
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


# ---------------------------------------------------------------- structure-aware mutators (issue 32)
#
# The byte and entry mutations above rarely produce a model that is valid JSON of the right shape but
# wrong in one way that matters (a size, a nesting, an id, a tree child). These mutators edit the
# structure itself, as someone who knows the format would: model.json's fields (types, sizes, nesting,
# ids, lists, tensor references) with the tensors they name, and the estimator inside a skops payload
# (tree arrays, SVC counts and shapes, the scaler, the payload's type). Each case is then loaded AND
# predicted on a small cube, as predict does, so a check that lets a crafted model through to compiled
# code shows up as a crash, a hang or a traceback.

_EXTREME_INTS = st.sampled_from([-(2**63), -(2**31), -2, -1, 0, 1, 2, 3, 255, 256, 4095, 4096, 65_535, 65_536,
                                 2**31 - 1, 2**32, 2**53, 2**63 - 1, 2**70])
_SIZE_VALUES = _EXTREME_INTS | _SIZES | st.sampled_from([1e308, -0.5, 2.5, float("1e20"), "3", True, None, [4], {}])
_DEPTHS = st.sampled_from([1, 2, 4, 7, 8, 9, 50, 500, 985, 5_000])


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value, containers included (tensor references are leaves)."""
    yield path
    if isinstance(value, dict) and set(value) != {"$tensor"}:
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _put(value: Any, path: tuple[Any, ...], item: Any) -> None:
    parent = _get(value, path[:-1])
    if isinstance(parent, dict) != isinstance(path[-1], str):  # a list where an object was, or the reverse
        raise TypeError("the path no longer fits")
    parent[path[-1]] = item


_SIZE_FIELDS = [("model", "in_chans"), ("model", "num_classes"), ("model", "patch_size"), ("pca", "n_components"),
                ("pca", "scale"), ("scene", "n_bands"), ("scene", "rgb_bands", 0), ("denoiser", "depth"),
                ("denoiser", "width"), ("denoiser", "neighbours"), ("tta",), ("config", "smooth")]


@st.composite
def _json_mutation(draw: st.DrawFn, meta: dict[str, Any], tensors: dict[str, torch.Tensor],
                   raw: dict[str, str]) -> str:
    """One structural edit of ``meta`` (and ``tensors``) in place; returns its kind (counted as an event)."""
    kind = draw(st.sampled_from(["type", "size", "depth", "ids", "names", "lists", "reference", "tensor dtype",
                                 "tensor shape", "tensor values"]))
    paths = [p for p in _paths(meta) if p and p[0] not in ("tensors", "content_sha256", "format", "format_version")]
    refs = [p for p in paths if isinstance(_get(meta, p), dict) and set(_get(meta, p)) == {"$tensor"}]
    if kind == "type":
        _put(meta, draw(st.sampled_from(paths)), copy.deepcopy(draw(_JSON_VALUES | _SIZE_VALUES)))
    elif kind == "size":
        field = draw(st.sampled_from(_SIZE_FIELDS))
        try:
            _put(meta, field, copy.deepcopy(draw(_SIZE_VALUES)))
        except (KeyError, IndexError, TypeError):
            kind = "size (absent)"
    elif kind == "depth":  # the value wrapped in lists or objects, written as text (json.dumps would recurse)
        path, depth = draw(st.sampled_from(paths)), draw(_DEPTHS)
        opening, closing = ("[", "]") if draw(st.booleans()) else ('{"a":', "}")
        token = f"@nest{len(raw)}@"
        raw[token] = opening * depth + json.dumps(_get(meta, path)) + closing * depth
        _put(meta, path, token)
    elif kind in ("ids", "names"):
        target = "ids" if kind == "ids" else draw(st.sampled_from(["names", "palette"]))
        classes = meta.get("classes")
        values = classes.get(target) if isinstance(classes, dict) else None
        if not isinstance(values, list) or not values:  # replaced by an earlier edit of this case
            return f"{kind} (absent)"
        new = (_EXTREME_INTS | st.sampled_from(values) | st.just(True)) if kind == "ids" else (
            st.sampled_from(["", "x" * 200, "x" * 201, "y" * 100_000, "a\nb", "#12345", "#1234567", "#ggg", "red"])
            | st.text(max_size=12))
        values[draw(st.integers(0, len(values) - 1))] = draw(new)
    elif kind == "lists":  # a list made longer (its items repeated: members naming the same tensors) or shorter
        lists = [p for p in paths if isinstance(_get(meta, p), list) and _get(meta, p)]
        path = draw(st.sampled_from(lists))
        items = _get(meta, path)
        factor = min(draw(st.sampled_from([0, 2, 3, 100, 2_000])), max(2, 4_000 // len(items)))  # a file of MBs
        _put(meta, path, items * factor if factor else items[:-1])
    elif kind == "reference" and refs:  # a tensor named twice, or a name the file does not hold
        _put(meta, draw(st.sampled_from(refs)), {"$tensor": draw(st.sampled_from([*sorted(tensors), "nothing"]))})
    elif kind.startswith("tensor"):
        name = draw(st.sampled_from(sorted(tensors)))
        tensor = tensors[name]
        if kind == "tensor dtype":
            tensors[name] = tensor.to(draw(st.sampled_from([torch.bfloat16, torch.float16, torch.float64,
                                                             torch.int32, torch.int64, torch.uint8, torch.bool])))
        elif kind == "tensor shape":
            flat = tensor.reshape(-1)
            cut = draw(st.sampled_from([0, 1, max(flat.numel() - 1, 0), flat.numel() + 1]))
            tensors[name] = torch.cat([flat, flat])[:cut] if draw(st.booleans()) else flat.clone()
        elif tensor.is_floating_point() and tensor.numel():
            big = torch.finfo(tensor.dtype).max
            value = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), big, -big, 0.0]))
            tensors[name] = tensor.reshape(-1).index_fill(0, torch.tensor([0]), value).reshape(tensor.shape)
    return kind


def _predict_tiny(folder: Path, n_bands: int = 24) -> Callable[[], int]:
    """``predict``'s steps on a model (load, build, front end, classify a small cube), with main's error mapping."""

    def run() -> int:
        from hsi.experiments.predict import classify_scene

        try:
            checkpoint = load_run_model(folder)
            cube = np.random.default_rng(0).random((7, 6, n_bands), dtype=np.float32)
            classes, _, _ = classify_scene(checkpoint, cube, device=torch.device("cpu"))
            assert classes.shape == (7, 6) and classes.min() >= 0
            assert classes.max() < checkpoint.n_classes
        except HSIError as err:  # as hsi.cli.main.main prints it
            print(f"hsi-classify: error: {err}", file=__import__("sys").stderr)
            return 2
        return 0

    return run


@FUZZ
@given(data=st.data())
def test_fuzz_model_json_structure(data: st.DataObject, model_runs: dict[str, Path], workdir: Path) -> None:
    """model.json edited field by field (types, sizes, nesting, ids, names, lists, references, tensors), resigned."""
    seed = data.draw(st.sampled_from(sorted(model_runs)))
    meta, tensors = read_run(model_runs[seed])
    raw: dict[str, str] = {}
    for _ in range(data.draw(st.integers(1, 3))):
        event(f"json {data.draw(_json_mutation(meta, tensors, raw))}")
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in tensors.items()})
    folder = workdir / "fuzz_structure"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / MODEL_TENSORS).write_bytes(blob)
    (folder / MODEL_JSON).write_text(resigned_json_raw(meta, blob, raw))
    _case(_predict_tiny(folder))


_NODE_FIELDS = ["left_child", "right_child", "feature", "threshold", "missing_go_to_left", "n_node_samples"]


@st.composite
def _tree_mutation(draw: st.DrawFn, forest: Any) -> str:
    from sklearn.tree._tree import Tree

    trees = [t for t in forest.estimators_ if type(t).__name__ == "DecisionTreeClassifier"
             and 0 <= t.tree_.node_count <= t.tree_.capacity] if isinstance(forest.estimators_, list) else []
    if not trees:  # replaced, or given a node count it cannot write, by an earlier edit of this case
        return "tree (absent)"
    owner = trees[draw(st.integers(0, len(trees) - 1))]
    tree = owner.tree_
    state = tree.__getstate__()
    nodes, values = state["nodes"].copy(), state["values"].copy()
    count = len(nodes)
    what = draw(st.sampled_from(["node", "node", "node", "values", "node_count"]))
    if count == 0:  # emptied by an earlier edit of this case
        what = "node_count"
    if what == "node":
        node = draw(st.integers(0, count - 1))
        field = draw(st.sampled_from(_NODE_FIELDS))
        if field == "threshold":
            nodes[field][node] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 1e300]))
        elif field == "missing_go_to_left":
            nodes[field][node] = draw(st.integers(0, 255))
        else:
            nodes[field][node] = draw(st.sampled_from([-(2**63), -2, -1, 0, node, node + 1, count - 1, count, 14, 15,
                                                       10**6, 10**8, 2**63 - 1]) | st.integers(-2, count + 2))
        what = f"tree {field}"
    elif what == "values":
        values.reshape(-1)[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([float("nan"), float("inf"), -1.0, 1e300]))
        what = "tree values"
    else:
        state["node_count"] = draw(st.sampled_from([-1, 0, 1, count - 1, count + 1, 2**40]))
        what = "tree node_count"
    state["nodes"], state["values"] = nodes, values
    # A new tree, as a file's is (an existing tree keeps a node_count beyond its nodes: scikit-learn's own gap).
    owner.tree_ = Tree(tree.n_features, tree.n_classes, tree.n_outputs)
    owner.tree_.__setstate__(state)
    return what


_ARRAY_EDITS = st.sampled_from(["cut rows", "cut columns", "longer", "float32", "int64", "fortran", "nan", "negative",
                                "times 1000", "zero", "empty"])


def _edited_array(value: Any, how: str) -> Any:
    if not isinstance(value, np.ndarray):
        return value
    if how == "cut rows":
        return value[: max(len(value) - 1, 0)].copy() if value.ndim else value
    if how == "cut columns" and value.ndim == 2:
        return value[:, :-1].copy()
    if how == "longer" and value.ndim:
        return np.concatenate([value, value[:1]])
    if how in ("float32", "int64"):
        return value.astype(how)
    if how == "fortran" and value.ndim == 2:
        return np.asfortranarray(value.T.copy()).T if value.shape[0] > 1 else value
    if how == "nan" and value.dtype.kind == "f" and value.size:
        value = value.copy()
        value.reshape(-1)[0] = np.nan
        return value
    if how == "negative" and value.size:
        return -value
    if how == "times 1000" and value.dtype.kind in "iu":
        return value * 1000
    if how == "zero":
        return np.zeros_like(value)
    if how == "empty":
        return value[:0].copy() if value.ndim else value
    return value


_SVC_ARRAYS = ["_n_support", "support_", "support_vectors_", "_dual_coef_", "dual_coef_", "_intercept_", "intercept_",
               "_probA", "classes_"]
_SVC_VALUES = {"_gamma": [float("nan"), -1.0, 1e300, "scale", 0], "degree": [-1, 10**9, 2**40, 3.5],
               "kernel": ["precomputed", "poly", "linear", "sigmoid", "xyz", 3], "probability": [True, False],
               "break_ties": [True, 1], "decision_function_shape": ["ovo", "ovr", "x"], "_impl": ["nu_svc", "xyz"],
               "shape_fit_": [(40, 14), (40,), "x"], "_sparse": [True], "coef0": [float("inf")],
               "cache_size": [0, -1, float("nan")], "n_features_in_": [14, 16, 10**9]}
_FOREST_VALUES = {"n_classes_": [0, 3, 5, 10**9], "n_features_in_": [14, 16, 10**9], "n_outputs_": [0, 2],
                  "n_estimators": [0, 4, 6, 10**9], "n_jobs": [0, -2, 10**6, 2, "x"], "verbose": [1, 2]}


@FUZZ
@given(data=st.data())
def test_fuzz_skops_structure(data: st.DataObject, model_runs: dict[str, Path], workdir: Path) -> None:
    """The estimator inside a skops payload edited (tree arrays, SVC counts and shapes, scaler, its type), resigned."""
    from sklearn.linear_model import LogisticRegression

    seed = data.draw(st.sampled_from(["svm", "random_forest"]))
    meta, tensors = read_run(model_runs[seed])
    estimator = load_estimator(tensors)
    replaced: Any = None
    compression = zipfile.ZIP_STORED
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["inner"] * 6 + ["attribute"] * 3 + ["payload", "compression"]))
        if kind == "payload":
            replaced = data.draw(st.sampled_from([{"a": 1}, np.zeros(3), [1, 2], 7, None, "x",
                                                  LogisticRegression()]))
            event(f"skops payload {type(replaced).__name__}")
        elif kind == "compression":
            compression = zipfile.ZIP_DEFLATED
            event("skops deflated")
        elif seed == "random_forest" and kind == "inner":
            event(f"skops {data.draw(_tree_mutation(estimator))}")
        elif seed == "random_forest":
            attr = data.draw(st.sampled_from([*sorted(_FOREST_VALUES), "classes_", "estimators_"]))
            if attr == "classes_":
                estimator.classes_ = _edited_array(estimator.classes_, data.draw(_ARRAY_EDITS))
            elif attr == "estimators_":
                trees = estimator.estimators_
                estimator.estimators_ = data.draw(st.sampled_from([trees[:1], trees * 2, [*trees[:-1], 3], []]))
            else:
                setattr(estimator, attr, data.draw(st.sampled_from(_FOREST_VALUES[attr])))
            event(f"skops forest {attr}")
        else:
            step = data.draw(st.sampled_from([0, 1]))
            owner = estimator.steps[step][1]
            if step == 0:
                attr = data.draw(st.sampled_from(["scale_", "mean_", "with_mean", "n_features_in_"]))
                if attr == "with_mean":
                    owner.with_mean = data.draw(st.sampled_from([False, "yes"]))
                elif attr == "n_features_in_":
                    owner.n_features_in_ = data.draw(st.sampled_from([14, 16]))
                else:
                    setattr(owner, attr, _edited_array(getattr(owner, attr), data.draw(_ARRAY_EDITS)))
                event(f"skops scaler {attr}")
            elif kind == "inner":
                attr = data.draw(st.sampled_from(_SVC_ARRAYS))
                setattr(owner, attr, _edited_array(getattr(owner, attr), data.draw(_ARRAY_EDITS)))
                event(f"skops svc {attr}")
            else:
                attr = data.draw(st.sampled_from(sorted(_SVC_VALUES)))
                setattr(owner, attr, data.draw(st.sampled_from(_SVC_VALUES[attr])))
                event(f"skops svc {attr}")
    try:
        tensors["estimator_skops"] = skops_tensor(estimator if replaced is None else replaced, compression)
    except Exception as err:  # noqa: BLE001 - skops cannot write this edit (not a case a file can hold)
        event(f"skops cannot write it ({type(err).__name__})")
        assume(False)  # counted as an invalid draw, not as a case
    if data.draw(st.integers(0, 9)) == 0:  # and sometimes the payload's bytes too (skops names entries by id(), so
        payload = tensors["estimator_skops"].clone()  # its length varies: positions are drawn independently of it)
        for position, value in data.draw(st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)),
                                                  min_size=1, max_size=8)):
            payload[position % len(payload)] ^= value
        tensors["estimator_skops"] = payload
        event("skops bytes")
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in tensors.items()})
    folder = workdir / "fuzz_skops"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / MODEL_TENSORS).write_bytes(blob)
    (folder / MODEL_JSON).write_text(resigned_json_raw(meta, blob, {}))
    _case(_predict_tiny(folder))


def test_the_structure_seeds_predict(model_runs: dict[str, Path]) -> None:
    """The structure-aware mutators start from models that load and predict."""
    for seed, folder in model_runs.items():
        assert _contract(_predict_tiny(folder)) == 0, seed
