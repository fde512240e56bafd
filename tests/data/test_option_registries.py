"""Choice-valued options are declared once: the registries drive validation, messages and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError, UnknownNameError
from hsi.cli.main import build_parser
from hsi.config import RunConfig, choices
from hsi.data.padding import PAD_MODES, pad_cube, register_pad_mode
from hsi.data.patches import PatchSource
from hsi.data.scene import NAN_POLICIES
from hsi.data.splits import SPLITS, Split, SplitResult, SplitSettings, draw_split, register_split
from hsi.features.controls import CONTROLS, NO_CONTROL


def _choices(command: str, flag: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[union-attr]
    action = next(a for a in sub._actions if flag in a.option_strings)
    return list(action.choices)


@pytest.mark.parametrize(("command", "flag", "declared"), [
    ("train", "--split", lambda: SPLITS.names()),
    ("train", "--pad-mode", lambda: PAD_MODES.names()),
    ("train", "--control", lambda: [NO_CONTROL, *CONTROLS.names()]),
    ("train", "--nan-policy", lambda: list(NAN_POLICIES)),
    ("train", "--pca-fit", lambda: list(choices("pca_fit"))),
    ("predict", "--nan-policy", lambda: list(NAN_POLICIES)),
])
def test_cli_choices_come_from_the_declaration(command: str, flag: str, declared: Any) -> None:
    assert _choices(command, flag) == declared()


def test_literal_settings_are_checked_from_their_type() -> None:
    assert choices("pca_fit") == ("train", "all")
    with pytest.raises(ConfigError, match="--pca-fit must be one of train, all; got 'some'"):
        RunConfig(pca_fit="some").check()  # type: ignore[arg-type]


@pytest.fixture
def temporary_split() -> Iterator[str]:
    """A throwaway split method ('left-half': every labelled pixel left of the middle trains)."""

    @register_split("left-half", description="left half trains", requires=("block_size",))
    def left_half(labels: np.ndarray, settings: SplitSettings, class_ids: Any) -> SplitResult:
        train = (labels >= 0) & (np.arange(labels.shape[1]) < labels.shape[1] // 2)
        test = (labels >= 0) & ~train
        empty = np.zeros_like(train)
        return SplitResult(Split(train, empty, test, empty, {"method": "left-half"}))

    yield "left-half"
    del SPLITS._entries["left-half"]


def test_a_registered_split_is_drawn_validated_and_offered(temporary_split: str) -> None:
    labels = np.zeros((4, 6), dtype=np.int64)
    settings = SplitSettings(train_ratio=0.5, val_ratio=0.0, patch_size=3, block_size=2)
    drawn = draw_split(temporary_split, labels, settings, (1,))
    assert drawn.split.train[:, :3].all() and not drawn.split.train[:, 3:].any()
    with pytest.raises(ConfigError, match="--split left-half needs --block-size"):
        draw_split(temporary_split, labels, SplitSettings(train_ratio=0.5, val_ratio=0.0, patch_size=3), (1,))
    assert temporary_split in _choices("train", "--split")


def test_an_unknown_split_names_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="did you mean random"):
        draw_split("randm", np.zeros((3, 3), dtype=np.int64), SplitSettings(0.5, 0.0, 3), (1,))


def test_masks_split_requires_both_files() -> None:
    with pytest.raises(ConfigError, match="--split masks needs --train-gt VALUE and --test-gt VALUE"):
        draw_split("masks", np.zeros((3, 3), dtype=np.int64), SplitSettings(0.5, 0.0, 3), (1,))


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_modes_match_torch_padding(mode: str) -> None:
    cube = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    padded = pad_cube(cube, 2, mode)
    expected = torch.nn.functional.pad(torch.from_numpy(cube.transpose(2, 0, 1))[None], (2,) * 4, mode=mode)[0]
    assert np.array_equal(padded.transpose(2, 0, 1), expected.numpy())


def test_a_registered_pad_mode_reaches_the_patch_source() -> None:
    register_pad_mode("edge", numpy_mode="edge", description="border pixel repeated")
    try:
        cube = np.arange(3 * 3 * 1, dtype=np.float32).reshape(3, 3, 1)
        source = PatchSource(cube, patch_size=3, pad_mode="edge")
        patch = source.gather(torch.tensor([0]), torch.tensor([0]))[0, 0]
        assert patch.tolist() == [[0, 0, 1], [0, 0, 1], [3, 3, 4]]
        assert "edge" in _choices("train", "--pad-mode")
    finally:
        del PAD_MODES._entries["edge"]
    with pytest.raises(UnknownNameError, match="pad mode"):
        PatchSource(cube, patch_size=3, pad_mode="edge")
