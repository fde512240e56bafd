"""The model registry: listing, lookup errors, create_model's argument handling."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import hsi.models
from hsi._core.errors import ConfigError, UnknownNameError
from hsi.models import MODELS, ModelInfo, create_model, list_models

MODELS_DIR = Path(hsi.models.__file__).parent
EXPECTED = {
    "alexnet",
    "drn",
    "hybridsn",
    "hybridsn_2d3d",
    "mobilenet_v1",
    "mobilenet_v2",
    "random_forest",
    "resnet",
    "se_resnet",
    "svm",
}


def test_registry_is_filled_by_importing_the_package() -> None:
    assert len(MODELS) > 0
    assert {i.name for i in list_models()} == EXPECTED


def test_list_models_filters_by_pattern_and_kind() -> None:
    assert [i.name for i in list_models("hybridsn*")] == ["hybridsn", "hybridsn_2d3d"]
    assert {i.name for i in list_models(kind="sklearn")} == {"svm", "random_forest"}
    assert all(isinstance(i, ModelInfo) and i.kind == "torch" for i in list_models(kind="torch"))
    assert list_models("no_such_*") == []


def test_every_entry_has_a_one_line_description_and_a_paper() -> None:
    for info in list_models():
        assert info.description and "\n" not in info.description, info.name
        assert info.paper, info.name
        assert info.accepts_patch_size(info.default_patch_size), info.name


def test_init_imports_every_family_module_explicitly() -> None:
    tree = ast.parse((MODELS_DIR / "__init__.py").read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names}
    families = {p.stem for p in MODELS_DIR.glob("*.py") if p.stem not in {"__init__", "registry", "blocks", "profile"}}
    assert families <= imported


def test_models_layer_imports_only_core_config_torch_numpy_sklearn() -> None:
    allowed_hsi = ("hsi._core", "hsi.config", "hsi.models")
    allowed_top = {"torch", "numpy", "sklearn", "hsi", "__future__"}
    stdlib = {"collections", "dataclasses", "inspect", "math", "typing", "fnmatch", "difflib"}
    for path in MODELS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in allowed_top | stdlib, f"{path.name} imports {name}"
                if top == "hsi" and name != "hsi":
                    assert name.startswith(allowed_hsi), f"{path.name} imports {name}"


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="did you mean.*hybridsn"):
        create_model("hybrid_sn", in_chans=30, num_classes=16, patch_size=25)
    with pytest.raises(KeyError):  # UnknownNameError is a KeyError too
        MODELS.get("resnt")


def test_create_model_drops_none_kwargs() -> None:
    model = create_model("hybridsn", in_chans=30, num_classes=16, patch_size=None, drop_rate=None, se=None)
    assert model.patch_size == 25  # the model's default
    assert model.drop_rate == 0.4
    info = MODELS.get("svm")
    est = create_model("svm", in_chans=None, num_classes=None, patch_size=None, C=None)
    assert est.get_params()["svc__C"] == 100.0
    assert info.default_patch_size == 1


def test_create_model_passes_overrides() -> None:
    model = create_model("resnet", in_chans=8, num_classes=3, patch_size=9, se=True, drop_rate=0.3)
    assert model.drop_rate == 0.3
    assert any(type(m).__name__ == "SqueezeExcite" for m in model.modules())
    est = create_model("random_forest", in_chans=8, num_classes=3, patch_size=9, seed=5, n_estimators=10)
    assert est.get_params()["n_estimators"] == 10
    assert est.get_params()["random_state"] == 5


@pytest.mark.parametrize("name", ["alexnet", "svm"])
def test_unknown_option_is_a_config_error_naming_the_options(name: str) -> None:
    with pytest.raises(ConfigError, match="no option 'bogus'"):
        create_model(name, in_chans=8, num_classes=3, patch_size=9, bogus=1)


@pytest.mark.parametrize("info", list_models(), ids=lambda i: i.name)
@pytest.mark.parametrize("bad", [0, -1, 24, 4, 2.5, True])
def test_unpatchable_sizes_raise_config_error_with_the_range(info: ModelInfo, bad: object) -> None:
    with pytest.raises(ConfigError, match=f"accepts odd patch sizes >= {info.min_patch_size}"):
        create_model(info.name, in_chans=20, num_classes=4, patch_size=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["hybridsn", "hybridsn_2d3d"])
def test_hybridsn_refuses_patches_below_5(name: str) -> None:
    with pytest.raises(ConfigError, match=r"accepts odd patch sizes >= 5; got patch size 3"):
        create_model(name, in_chans=20, num_classes=4, patch_size=3)


@pytest.mark.parametrize("field", ["in_chans", "num_classes"])
@pytest.mark.parametrize("bad", [None, 0, -3, 2.0])
def test_torch_models_need_positive_counts(field: str, bad: object) -> None:
    kwargs: dict[str, object] = {"in_chans": 20, "num_classes": 4, field: bad}
    with pytest.raises(ConfigError, match=field):
        create_model("resnet", patch_size=9, **kwargs)  # type: ignore[arg-type]


def test_seed_makes_weights_reproducible_without_touching_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = create_model("drn", in_chans=10, num_classes=3, patch_size=9, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    b = create_model("drn", in_chans=10, num_classes=3, patch_size=9, seed=7)
    c = create_model("drn", in_chans=10, num_classes=3, patch_size=9, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
