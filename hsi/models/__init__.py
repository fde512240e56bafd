"""Models: a registry of torch networks on (N, C, p, p) patches and sklearn baselines.

Use :func:`create_model` to build one by name and :func:`list_models` to see what is
registered (with each model's paper and accepted patch sizes). Importing this package
registers every family below; the list is explicit on purpose (a test checks it).
"""

from __future__ import annotations

# The families fill MODELS; dncnn is the --denoise front-end, a network but not a classifier in MODELS.
from hsi.models import alexnet, classical, dncnn, hybridsn, mobilenet, resnet  # noqa: F401
from hsi.models.profile import profile_model
from hsi.models.registry import MODELS, ModelInfo, create_model, list_models, register_model

__all__ = ["MODELS", "ModelInfo", "create_model", "list_models", "profile_model", "register_model"]
