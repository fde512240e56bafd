"""The model registry: ``@register_model``, ``create_model`` and ``list_models``.

Follows timm's contract (``timm/models/_registry.py``, ``timm/models/_factory.py``): a
factory function is registered under its own name, ``create_model`` drops keyword
arguments whose value is ``None`` (so a CLI flag left unset keeps the model's own
default), and ``list_models`` filters names with fnmatch. Unlike timm, every entry also
records what it needs from the data: which patch sizes it accepts, and its citation.

Two kinds of model are registered:

* ``kind="torch"``: the factory takes ``in_chans``, ``num_classes``, ``patch_size`` and
  the model's own options, all keyword-only, and returns an ``nn.Module`` that maps a
  float tensor of shape (N, C, p, p) to logits of shape (N, num_classes).
* ``kind="sklearn"``: the factory takes ``seed`` and estimator overrides and returns an
  unfitted scikit-learn estimator that classifies the spectrum of the centre pixel,
  an array of shape (N, C).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch

from hsi._core.errors import ConfigError
from hsi._core.registry import Registry
from hsi._core.validation import is_odd_patch_size

__all__ = ["MODELS", "ModelInfo", "create_model", "list_models", "register_model"]

ModelKind = Literal["torch", "sklearn"]
F = TypeVar("F", bound=Callable[..., Any])

# Arguments that create_model passes itself; everything else a factory takes is an option.
_COMMON_ARGS = frozenset({"in_chans", "num_classes", "patch_size", "seed"})


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Args:
        name: registry key, ``lower_snake`` (the factory's function name).
        factory: the registered function that builds the model.
        description: one line for ``hsi models list``.
        kind: ``"torch"`` (an ``nn.Module`` on patches) or ``"sklearn"`` (an estimator on
            centre-pixel spectra).
        paper: citation of the paper the model follows.
        default_patch_size: patch size used when ``create_model`` gets ``patch_size=None``.
        min_patch_size: smallest accepted (odd) patch size.
        max_patch_size: largest accepted patch size, or ``None`` for no upper limit.
    """

    name: str
    factory: Callable[..., Any]
    description: str
    kind: ModelKind
    paper: str
    default_patch_size: int
    min_patch_size: int = 1
    max_patch_size: int | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The model's own keyword options and their defaults (``inspect.Parameter.empty`` if required)."""
        params = inspect.signature(self.factory).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.name not in _COMMON_ARGS and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    @property
    def accepts_any_option(self) -> bool:
        """Whether the factory takes ``**overrides`` (it then validates them itself)."""
        params = inspect.signature(self.factory).parameters.values()
        return any(p.kind is p.VAR_KEYWORD for p in params)

    @property
    def patch_size_range(self) -> str:
        """The accepted patch sizes in words, e.g. ``"odd patch sizes >= 5"``."""
        if self.max_patch_size is None:
            return f"odd patch sizes >= {self.min_patch_size}"
        return f"odd patch sizes {self.min_patch_size}..{self.max_patch_size}"

    def accepts_patch_size(self, patch_size: int) -> bool:
        """Whether ``patch_size`` is an odd integer inside the accepted range."""
        return (
            is_odd_patch_size(patch_size)
            and patch_size >= self.min_patch_size
            and (self.max_patch_size is None or patch_size <= self.max_patch_size)
        )

    def check_patch_size(self, patch_size: int) -> int:
        """Returns ``patch_size`` if the model accepts it.

        Raises:
            ConfigError: the size is not an odd integer in the accepted range; the
                message states the range.
        """
        if not self.accepts_patch_size(patch_size):
            raise ConfigError(
                f"model {self.name!r} accepts {self.patch_size_range}; got patch size "
                f"{patch_size!r}. Use e.g. --patch-size {self.default_patch_size}."
            )
        return int(patch_size)


MODELS: Registry[ModelInfo] = Registry[ModelInfo]("model")


def register_model(
    *,
    paper: str,
    description: str | None = None,
    kind: ModelKind = "torch",
    min_patch_size: int = 1,
    max_patch_size: int | None = None,
    default_patch_size: int | None = None,
) -> Callable[[F], F]:
    """Registers a model factory under its function name.

    Args:
        paper: citation of the paper the model follows.
        description: one line; default: the first line of the factory's docstring.
        kind: ``"torch"`` or ``"sklearn"``.
        min_patch_size: smallest accepted odd patch size, default=1.
        max_patch_size: largest accepted patch size, default=None (no limit).
        default_patch_size: default=None: the default of the factory's ``patch_size``
            argument (torch), or 1 (sklearn: the centre pixel only).

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ValueError: the name is registered twice or the arguments are inconsistent
            (programming errors, raised at import time).
    """

    def decorator(factory: F) -> F:
        name = factory.__name__
        doc = (factory.__doc__ or "").strip().splitlines()
        desc = description if description is not None else (doc[0] if doc else "")
        default = default_patch_size
        if default is None:
            param = inspect.signature(factory).parameters.get("patch_size")
            if param is not None and param.default is not param.empty:
                default = int(param.default)
            elif kind == "sklearn":
                default = 1
            else:
                raise ValueError(f"model {name!r}: give default_patch_size or a patch_size default")
        info = ModelInfo(
            name=name,
            factory=factory,
            description=desc,
            kind=kind,
            paper=paper,
            default_patch_size=default,
            min_patch_size=min_patch_size,
            max_patch_size=max_patch_size,
        )
        if not info.accepts_patch_size(default):
            raise ValueError(f"model {name!r}: default patch size {default} is outside its own range")
        MODELS.register(name, info, desc)
        return factory

    return decorator


def _check_count(value: int | None, *, name: str, model: str) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model {model!r} needs {name} as an integer >= 1; got {value!r}.")
    return value


def create_model(
    name: str,
    *,
    in_chans: int | None,
    num_classes: int | None,
    patch_size: int | None,
    seed: int | None = None,
    **overrides: Any,
) -> Any:
    """Builds a registered model.

    Keyword arguments whose value is ``None`` are dropped first (timm style), so an
    unset option keeps the model's own default.

    Args:
        name: registry key, e.g. ``"hybridsn"``; see :func:`list_models`.
        in_chans: number of input bands C (after PCA). Required for torch models;
            ignored (may be ``None``) for sklearn models, which infer it in ``fit``.
        num_classes: number of classes K. Required for torch models; ignored for
            sklearn models.
        patch_size: odd side p of the (N, C, p, p) input; ``None`` = the model's default.
            Sklearn models accept any odd size (they see the centre pixel only).
        seed: seeds the weight initialisation (torch, without touching the global RNG)
            or ``random_state`` (sklearn); ``None`` = the global RNG.
        **overrides: the model's own options (see ``ModelInfo.options``), e.g.
            ``drop_rate=0.5`` or ``se=True``.

    Returns:
        An ``nn.Module`` (kind ``"torch"``) or an unfitted sklearn estimator.

    Raises:
        UnknownNameError: ``name`` is not registered (the message suggests close names).
        ConfigError: the patch size is not accepted, a count is invalid, or an option is
            unknown to the model.
    """
    info = MODELS.get(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    patch = info.check_patch_size(info.default_patch_size if patch_size is None else patch_size)

    if not info.accepts_any_option:
        unknown = sorted(set(overrides) - set(info.options))
        if unknown:
            raise ConfigError(
                f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(info.options)) or 'none'}."
            )

    if info.kind == "sklearn":
        if in_chans is not None:
            _check_count(in_chans, name="in_chans", model=name)
        if num_classes is not None:
            _check_count(num_classes, name="num_classes", model=name)
        return info.factory(seed=seed, **overrides)

    chans = _check_count(in_chans, name="in_chans", model=name)
    classes = _check_count(num_classes, name="num_classes", model=name)
    if seed is None:
        return info.factory(in_chans=chans, num_classes=classes, patch_size=patch, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.factory(in_chans=chans, num_classes=classes, patch_size=patch, **overrides)


def list_models(pattern: str = "*", *, kind: ModelKind | None = None) -> list[ModelInfo]:
    """Registered models whose name matches the fnmatch ``pattern``, sorted by name.

    Args:
        pattern: fnmatch pattern, default=``"*"``, e.g. ``"hybridsn*"``.
        kind: keep only ``"torch"`` or ``"sklearn"`` models, default=None (all).

    Returns:
        The matching :class:`ModelInfo` entries.
    """
    infos = [MODELS.get(n) for n in MODELS.names(pattern)]
    return [i for i in infos if kind is None or i.kind == kind]
