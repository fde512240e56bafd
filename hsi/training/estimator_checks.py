"""Checks of a scikit-learn estimator from a checkpoint, before skops reads it and before it predicts.

skops rebuilds an estimator from a file with only trusted *types* (:data:`SKOPS_TRUSTED_TYPES`),
but it does not check their *values*, and scikit-learn's compiled code trusts its own arrays: a
tree whose child index is 10^8 reads outside its nodes (a segmentation fault), children set to 0
loop forever, an SVC whose support counts disagree with its arrays reads past them. So, for a file from someone else:

* :func:`check_skops_archive`, before skops reads anything: the payload is a zip archive of
  stored (uncompressed) entries, as hsi-classify writes it, so what is read is no larger than
  the payload itself (a deflated entry may expand a thousandfold, whatever size it declares);
  each array's declared shape fits the bytes it has; the whole fits the memory budget.
* :func:`check_estimator`, after skops has rebuilt it and before it predicts: exactly the
  estimator hsi-classify trains for the model (a scaler + RBF-SVM pipeline, or a random
  forest), every array that reaches compiled code of the dtype, shape, order and range that
  code assumes: tree children in range and each after its parent (so a walk ends), features
  below the feature count, support counts that add up to the support vectors, scaler and
  support-vector widths equal to the band count, class indices within the model's classes.

:func:`load_estimator` runs both around skops; each refusal is one line naming the first entry
that is wrong.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from typing import Any

import numpy as np

from hsi._core.errors import CheckpointError
from hsi._core.memory import check_fits_in_memory, format_bytes

__all__ = [
    "CHECKED_MODELS", "MAX_SKOPS_ENTRIES", "MAX_TREES", "MAX_TREE_DEPTH", "SKOPS_TRUSTED_TYPES", "EstimatorInvalid",
    "check_estimator", "check_skops_archive", "load_estimator",
]

#: Types a scikit-learn checkpoint may hold beyond those skops trusts by default (its
#: scikit-learn estimators, numpy and builtins): the trees of a random forest.
SKOPS_TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)

#: Entries a skops archive may hold (a forest of 200 trees holds about 1,000).
MAX_SKOPS_ENTRIES = 100_000
#: Trees a random forest may hold, and levels a tree may have (scikit-learn's trees on a scene are tens deep).
MAX_TREES = 10_000
MAX_TREE_DEPTH = 1_024
#: Memory skops and scikit-learn use per byte read: ``schema.json`` becomes Python objects (about 3x,
#: measured), an array is read, then copied once (tree nodes).
_SCHEMA_EXPANSION = 4
_ARRAY_EXPANSION = 3
_HEADER_BYTES = 4_096  # a .npy header is 128 bytes or a few multiples of 64


class EstimatorInvalid(Exception):
    """A skops payload or an estimator that is not what hsi-classify writes (the message names the entry)."""


class _Unreadable(EstimatorInvalid):
    """Not a zip archive at all (damaged)."""


def load_estimator(blob: bytes, name: str, *, n_features: int, n_classes: int) -> Any:
    """The fitted estimator of model ``name`` in the skops payload ``blob``, checked before and after skops reads it.

    Order: :func:`check_skops_archive` (sizes, nothing decompressed), the types the payload names
    (:data:`SKOPS_TRUSTED_TYPES`, nothing built), skops' loading, then :func:`check_estimator`.

    Raises:
        CheckpointError: damaged, foreign, naming untrusted types, or not the estimator hsi-classify writes.
        InputTooLargeError: reading it needs more memory than is available.
    """
    import skops.io

    unreadable = CheckpointError(f"checkpoint of model {name!r} holds no readable estimator (damaged or edited); "
                                 "use a checkpoint written by hsi-classify train.")
    try:
        check_skops_archive(blob, what=f"checkpoint of model {name!r}")
    except _Unreadable:
        raise unreadable from None
    except EstimatorInvalid as err:
        raise _foreign(name, err) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            untrusted = sorted(set(skops.io.get_untrusted_types(data=blob)) - set(SKOPS_TRUSTED_TYPES))
    except Exception:  # noqa: BLE001 - skops raises many types for damaged data
        raise unreadable from None
    if untrusted:
        raise CheckpointError(
            f"checkpoint of model {name!r} holds types hsi-classify does not load "
            f"({', '.join(t[:60] for t in untrusted[:3])}); it was not written by hsi-classify. Use a checkpoint "
            "from a train run."
        )
    try:
        with warnings.catch_warnings():  # skops' and scikit-learn's words are no help to a user
            warnings.simplefilter("ignore")
            estimator = skops.io.loads(blob, trusted=list(SKOPS_TRUSTED_TYPES))
    except Exception:  # noqa: BLE001 - skops raises many types for damaged data
        raise CheckpointError(
            f"checkpoint of model {name!r} holds a damaged estimator; use a checkpoint written by hsi-classify train."
        ) from None
    try:  # before anything predicts: scikit-learn's compiled code trusts these arrays
        check_estimator(estimator, name, n_features=n_features, n_classes=n_classes)
    except EstimatorInvalid as err:
        raise _foreign(name, err) from None
    return estimator


def _foreign(name: str, err: EstimatorInvalid) -> CheckpointError:
    return CheckpointError(
        f"checkpoint of model {name!r} is not a model hsi-classify wrote ({err}): it was damaged or edited after "
        "saving, or written by another tool; use a checkpoint written by hsi-classify train."
    )


# ---------------------------------------------------------------- the archive, before skops reads it


def check_skops_archive(blob: bytes, *, what: str) -> None:
    """Refuses a skops payload that is not a plain zip of stored entries, or whose content exceeds the budget.

    Args:
        blob: the payload (``estimator_skops``).
        what: the payload in a user's words, for a refusal of its size.

    Raises:
        EstimatorInvalid: not a zip archive; compressed, encrypted or too many entries; no
            ``schema.json``; an array that declares more data than its entry holds, or Python objects.
        InputTooLargeError: reading it needs more memory than is available.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_SKOPS_ENTRIES:
                raise EstimatorInvalid(f"its estimator holds {len(infos)} entries (at most {MAX_SKOPS_ENTRIES})")
            if "schema.json" not in {info.filename for info in infos}:
                raise EstimatorInvalid("its estimator has no schema.json (not a skops file)")
            for info in infos:
                # Stored entries only: zipfile decompresses a deflated entry whole before cutting it to the
                # size it declares, so a declared size bounds nothing; a stored one reads its own bytes.
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise EstimatorInvalid(f"its estimator's entry {info.filename[:40]!r} is compressed or "
                                           "encrypted (hsi-classify stores them plain)")
                if info.file_size != info.compress_size:
                    raise EstimatorInvalid(f"its estimator's entry {info.filename[:40]!r} declares "
                                           f"{info.file_size} bytes and holds {info.compress_size}")
            schema = sum(i.file_size for i in infos if i.filename == "schema.json")
            arrays = sum(i.file_size for i in infos if i.filename != "schema.json")
            check_fits_in_memory(
                _SCHEMA_EXPANSION * schema + _ARRAY_EXPANSION * arrays,
                what=f"{what} holds an estimator of {format_bytes(schema + arrays)}; it",
                fix="use a machine with more memory, or a smaller model")
            for info in infos:
                if info.filename.endswith(".npy"):
                    _check_npy_entry(archive, info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError,
            OverflowError, RuntimeError):
        raise _Unreadable("its estimator is not a readable skops file") from None


def _check_npy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """An array entry's header: no Python objects, and no more data declared than the entry holds."""
    with archive.open(info) as fh:
        head = io.BytesIO(fh.read(min(info.file_size, _HEADER_BYTES)))
    major, _minor = np.lib.format.read_magic(head)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read_header(head, max_header_size=_HEADER_BYTES)
    if dtype.hasobject:
        raise EstimatorInvalid(f"its estimator's array {info.filename[:40]!r} holds Python objects")
    if math.prod(shape) * dtype.itemsize > info.file_size - head.tell():
        raise EstimatorInvalid(f"its estimator's array {info.filename[:40]!r} declares {shape} {dtype}, more "
                               f"than its {info.file_size} bytes")


# ---------------------------------------------------------------- the estimator, before it predicts


def check_estimator(estimator: Any, name: str, *, n_features: int, n_classes: int) -> None:
    """Checks that ``estimator`` is the fitted estimator hsi-classify trains as model ``name``.

    Args:
        estimator: what skops rebuilt.
        name: the registered model name (``svm`` or ``random_forest``, :data:`CHECKED_MODELS`).
        n_features: the bands it reads (the checkpoint's ``in_chans``).
        n_classes: the model's classes; the estimator's class indices must lie below it.

    Raises:
        EstimatorInvalid: another type, or an attribute that predict would read of another type,
            shape, order or range.
    """
    check = CHECKED_MODELS.get(name)
    if check is None:
        raise EstimatorInvalid(f"hsi-classify has no check for estimators of model {name!r}")
    check(estimator, n_features, n_classes)


def _kind(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(float(value))


def _attr(owner: Any, attr: str, where: str) -> Any:
    """An instance attribute (never a property: skops set them, and a property could compute anything)."""
    state = getattr(owner, "__dict__", {})
    if attr not in state:
        raise EstimatorInvalid(f"'{where}.{attr}' is missing")
    return state[attr]


def _int(owner: Any, attr: str, where: str, low: int, high: int) -> int:
    value = _attr(owner, attr, where)
    if not _is_int(value) or not low <= int(value) <= high:
        shown = repr(value)[:40] if _is_int(value) else f"a {_kind(value)}"
        raise EstimatorInvalid(f"'{where}.{attr}' is {shown}, not an integer from {low} to {high}")
    return int(value)


def _real(owner: Any, attr: str, where: str, low: float, high: float) -> float:
    value = _attr(owner, attr, where)
    if not _is_real(value) or not low <= float(value) <= high:
        raise EstimatorInvalid(f"'{where}.{attr}' is {repr(value)[:40]}, not a number from {low:g} to {high:g}")
    return float(value)


def _choice(owner: Any, attr: str, where: str, choices: tuple[Any, ...]) -> Any:
    value = _attr(owner, attr, where)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise EstimatorInvalid(f"'{where}.{attr}' is {repr(value)[:40]}, not one of {', '.join(map(repr, choices))}")
    return value


def _array(owner: Any, attr: str, where: str, dtype: Any, shape: tuple[int | None, ...],
           *, finite: bool = True) -> np.ndarray:
    """An array attribute of exactly ``dtype``, C-ordered, of ``shape`` (None: any length), finite where asked."""
    value = _attr(owner, attr, where)
    if type(value) is not np.ndarray:
        raise EstimatorInvalid(f"'{where}.{attr}' is a {_kind(value)}, not an array")
    if value.dtype != np.dtype(dtype) or value.ndim != len(shape) or not value.flags.c_contiguous or any(
            n is not None and n != m for n, m in zip(shape, value.shape, strict=True)):
        wanted = " x ".join("N" if n is None else str(n) for n in shape) or "scalar"
        raise EstimatorInvalid(f"'{where}.{attr}' is {value.dtype} of shape {value.shape}, not {np.dtype(dtype)} "
                               f"of shape {wanted} in C order")
    if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        raise EstimatorInvalid(f"'{where}.{attr}' holds NaN or infinity")
    return value


def _no_feature_names(owner: Any, where: str) -> None:
    # Fitted with feature names, scikit-learn warns on every unnamed array: hsi-classify never fits with names.
    if "feature_names_in_" in getattr(owner, "__dict__", {}):
        raise EstimatorInvalid(f"'{where}' was fitted with feature names")


def _class_indices(owner: Any, where: str, n_classes: int, *, at_least: int) -> np.ndarray:
    """``classes_``: distinct, increasing class indices below ``n_classes`` (they index the probability columns)."""
    classes = _attr(owner, "classes_", where)
    if type(classes) is not np.ndarray or classes.ndim != 1 or classes.dtype.kind not in "iu":
        raise EstimatorInvalid(f"'{where}.classes_' is not a 1-D array of class indices")
    if not at_least <= len(classes) <= n_classes or (len(classes) and (
            classes[0] < 0 or classes[-1] >= n_classes or np.any(np.diff(classes) <= 0))):
        raise EstimatorInvalid(f"'{where}.classes_' are not {at_least} to {n_classes} increasing class indices "
                               f"from 0 to {n_classes - 1}")
    return classes


def _type(value: Any, wanted: type, where: str) -> None:
    if type(value) is not wanted:
        raise EstimatorInvalid(f"'{where}' is of type {_kind(value)}, not {wanted.__name__}")


def _check_svm(estimator: Any, n_features: int, n_classes: int) -> None:
    """The ``svm`` model: Pipeline([("scale", StandardScaler), ("svc", SVC)]), as :func:`hsi.models.classical.svm`."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    _type(estimator, Pipeline, "estimator")
    steps = _attr(estimator, "steps", "estimator")
    if type(steps) is not list or len(steps) != 2 or not all(
            type(s) in (tuple, list) and len(s) == 2 and type(s[0]) is str for s in steps):
        raise EstimatorInvalid("'estimator.steps' are not a scaler and an SVC")
    for attr in ("memory", "transform_input"):
        if getattr(estimator, "__dict__", {}).get(attr) is not None:
            raise EstimatorInvalid(f"'estimator.{attr}' is set")
    _choice(estimator, "verbose", "estimator", (False, 0))
    (_, scaler), (_, svc) = steps
    _type(scaler, StandardScaler, "estimator.scale")
    _type(svc, SVC, "estimator.svc")

    where = "estimator.scale"
    _choice(scaler, "with_mean", where, (True,))
    _choice(scaler, "with_std", where, (True,))
    _choice(scaler, "copy", where, (True, False))
    _int(scaler, "n_features_in_", where, n_features, n_features)
    _no_feature_names(scaler, where)
    _array(scaler, "mean_", where, np.float64, (n_features,))
    if not (_array(scaler, "scale_", where, np.float64, (n_features,)) > 0).all():
        raise EstimatorInvalid(f"'{where}.scale_' holds a value that is not positive")

    where = "estimator.svc"
    if vars(svc).get("_impl", "c_svc") != "c_svc":  # a class attribute: set on the instance, it would choose the SVM
        raise EstimatorInvalid(f"'{where}._impl' is not 'c_svc'")
    _choice(svc, "kernel", where, ("rbf", "linear", "poly", "sigmoid"))
    _choice(svc, "_sparse", where, (False,))
    _choice(svc, "probability", where, (False, "deprecated"))  # predict_proba would need Platt scaling's arrays
    shape = _choice(svc, "decision_function_shape", where, ("ovr", "ovo"))
    _choice(svc, "break_ties", where, (False,) if shape == "ovo" else (False, True))
    _int(svc, "degree", where, 0, 100)
    _real(svc, "_gamma", where, 0.0, 1e30)
    _real(svc, "coef0", where, -1e30, 1e30)
    _real(svc, "cache_size", where, 1e-6, 1e9)
    _int(svc, "n_features_in_", where, n_features, n_features)
    _no_feature_names(svc, where)
    fitted = _attr(svc, "shape_fit_", where)
    if type(fitted) is not tuple or len(fitted) != 2 or not all(_is_int(n) for n in fitted) or fitted[1] != n_features:
        raise EstimatorInvalid(f"'{where}.shape_fit_' is not (samples, {n_features})")
    k = len(_class_indices(svc, where, n_classes, at_least=2))
    pairs = k * (k - 1) // 2
    counts = _array(svc, "_n_support", where, np.int32, (k,))
    if (counts < 0).any():
        raise EstimatorInvalid(f"'{where}._n_support' holds a negative count")
    n_sv = int(counts.sum(dtype=np.int64))
    vectors = _attr(svc, "support_vectors_", where)
    if type(vectors) is np.ndarray and vectors.ndim == 2 and len(vectors) != n_sv:
        raise EstimatorInvalid(f"'{where}._n_support' counts {n_sv} support vectors; 'support_vectors_' holds "
                               f"{len(vectors)}")
    _array(svc, "support_", where, np.int32, (n_sv,))  # libsvm takes the support vector count from it
    _array(svc, "support_vectors_", where, np.float64, (n_sv, n_features))
    for attr in ("_dual_coef_", "dual_coef_"):
        _array(svc, attr, where, np.float64, (k - 1, n_sv))
    for attr in ("_intercept_", "intercept_"):
        _array(svc, attr, where, np.float64, (pairs,))
    for attr in ("_probA", "_probB"):
        if _array(svc, attr, where, np.float64, (None,)).size not in (0, pairs):
            raise EstimatorInvalid(f"'{where}.{attr}' has another length than the {pairs} class pairs")


def _check_random_forest(estimator: Any, n_features: int, n_classes: int) -> None:
    """The ``random_forest`` model: RandomForestClassifier of DecisionTreeClassifier, one output."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    where = "estimator"
    _type(estimator, RandomForestClassifier, where)
    _int(estimator, "n_outputs_", where, 1, 1)
    _int(estimator, "n_features_in_", where, n_features, n_features)
    _no_feature_names(estimator, where)
    k = len(_class_indices(estimator, where, n_classes, at_least=1))
    _int(estimator, "n_classes_", where, k, k)
    trees = _attr(estimator, "estimators_", where)
    if type(trees) is not list or not 1 <= len(trees) <= MAX_TREES:
        raise EstimatorInvalid(f"'{where}.estimators_' is not a list of 1 to {MAX_TREES} trees")
    _int(estimator, "n_estimators", where, len(trees), len(trees))  # joblib splits the work by it
    jobs = _attr(estimator, "n_jobs", where)
    if jobs is not None and not (_is_int(jobs) and (jobs == -1 or 1 <= jobs <= 1024)):
        raise EstimatorInvalid(f"'{where}.n_jobs' is {repr(jobs)[:40]}, not None, -1 or 1 to 1024")
    _choice(estimator, "verbose", where, (0, False))  # joblib would print progress
    for index, tree in enumerate(trees):
        _check_tree(tree, f"{where}.estimators_[{index}]", n_features, k, DecisionTreeClassifier)


def _check_tree(tree: Any, where: str, n_features: int, k: int, kind: type) -> None:
    from sklearn.tree._tree import Tree

    _type(tree, kind, where)
    _int(tree, "n_outputs_", where, 1, 1)
    _int(tree, "n_classes_", where, k, k)
    _int(tree, "n_features_in_", where, n_features, n_features)
    _no_feature_names(tree, where)
    _choice(tree, "criterion", where, ("gini", "entropy", "log_loss"))
    _choice(tree, "splitter", where, ("best", "random"))
    nodes = _attr(tree, "tree_", where)
    where = f"{where}.tree_"
    _type(nodes, Tree, where)
    # Tree is compiled: its public fields, then its node arrays (node_count never exceeds what was allocated).
    if nodes.n_outputs != 1 or nodes.n_features != n_features or nodes.max_n_classes != k or \
            list(nodes.n_classes) != [k] or not 1 <= nodes.node_count <= nodes.capacity:
        raise EstimatorInvalid(f"'{where}' has {nodes.n_outputs} outputs, {nodes.n_features} features, "
                               f"{nodes.max_n_classes} classes and {nodes.node_count} nodes, not 1, {n_features}, "
                               f"{k} and at least 1")
    count = int(nodes.node_count)
    left, right, feature = nodes.children_left, nodes.children_right, nodes.feature
    leaf = left == -1
    index = np.arange(count)
    split = ~leaf
    # A split's children come after it (scikit-learn adds a node after its parent), so every walk from the
    # root ends; each node has at most one parent; a leaf has no children; a split reads a real feature.
    if np.any(right[leaf] != -1) or np.any(left[split] <= index[split]) or np.any(right[split] <= index[split]) \
            or np.any(left[split] >= count) or np.any(right[split] >= count):
        raise EstimatorInvalid(f"'{where}' has child indices out of range or before their parent")
    if np.any(feature[split] < 0) or np.any(feature[split] >= n_features):
        raise EstimatorInvalid(f"'{where}' splits on a feature outside 0 to {n_features - 1}")
    children = np.concatenate([left[split], right[split]])
    if np.bincount(children, minlength=count).max(initial=0) > 1:
        raise EstimatorInvalid(f"'{where}' has a node with two parents")
    value = nodes.value
    if not np.isfinite(value).all() or (value < 0).any():
        raise EstimatorInvalid(f"'{where}' has leaf values that are not finite non-negative fractions")
    depth, frontier = 0, np.zeros(1, dtype=np.intp)
    while frontier.size:
        inner = frontier[split[frontier]]
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1
        if depth > MAX_TREE_DEPTH + 1:
            raise EstimatorInvalid(f"'{where}' is deeper than {MAX_TREE_DEPTH} levels")


#: The registered scikit-learn models and the check of the estimator each trains.
CHECKED_MODELS = {"svm": _check_svm, "random_forest": _check_random_forest}
