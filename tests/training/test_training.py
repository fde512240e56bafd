"""Device resolution, checkpoints and the training loop on a tiny synthetic scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hsi._core.errors import CheckpointError, ConfigError, DeviceError
from hsi.data.patches import PatchSource
from hsi.training import trainer
from hsi.training.checkpoint import load_checkpoint, save_checkpoint
from hsi.training.device import resolve_device
from hsi.training.recipe import Recipe
from hsi.training.trainer import PixelSet, autocast_for, evaluate, fit, training_precision


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


def test_checkpoint_round_trip_and_refusals(tmp_path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.ones(2)}, "pca": {"mean": np.zeros(3, np.float32)}})
    data = load_checkpoint(path)
    assert torch.equal(data["state_dict"]["w"], torch.ones(2)) and data["pca"]["mean"].shape == (3,)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="written by another tool"):
        load_checkpoint(foreign)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="is truncated"):
        load_checkpoint(truncated)

    class Payload:  # an object that would run code when unpickled
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "hsi-classify-checkpoint", "format_version": 1, "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match=r"contains executable code \(a pickle that calls print\)"):
        load_checkpoint(evil)
    future = tmp_path / "future.pt"
    torch.save({"format": "hsi-classify-checkpoint", "format_version": 99}, future)
    with pytest.raises(CheckpointError, match="written by a newer version .*format 99"):
        load_checkpoint(future)


class TinyNet(nn.Module):
    def __init__(self, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_chans, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Dropout(0.2), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_fit_learns_and_is_reproducible_and_resumable(separable_problem: tuple[PatchSource, PixelSet]) -> None:
    source, pixels = separable_problem

    def run(epochs: int, state=None, model=None, opt=None):
        torch.manual_seed(0)
        model = model or TinyNet(3, 3)
        return model, fit(model, source, pixels, pixels, epochs=epochs, batch_size=16, lr=0.05, seed=1,
                          state=state, optimizer_state=opt, progress=False)

    model_a, state_a = run(6)
    assert state_a.history[-1]["train_accuracy"] > 0.9
    assert evaluate(model_a, source, pixels, batch_size=32)[1] > 0.9
    assert state_a.best_state is not None and 1 <= state_a.best_epoch <= 6
    model_b, state_b = run(6)
    assert [r["train_loss"] for r in state_a.history] == [r["train_loss"] for r in state_b.history]

    saved = {}
    lasts = []

    def keep(epoch, model, optimizer, state, last):
        lasts.append(last)
        if epoch == 3:
            saved.update(model=model.state_dict(), opt=optimizer.state_dict())

    torch.manual_seed(0)
    model_c = TinyNet(3, 3)
    state_c = fit(model_c, source, pixels, None, epochs=3, batch_size=16, lr=0.05, seed=1, on_epoch_end=keep,
                  progress=False)
    assert lasts == [False, False, True]  # the callback is told which epoch is the call's last
    model_d = TinyNet(3, 3)
    model_d.load_state_dict(saved["model"])
    state_d = fit(model_d, source, pixels, None, epochs=6, batch_size=16, lr=0.05, seed=1, state=state_c,
                  optimizer_state=saved["opt"], progress=False)
    torch.manual_seed(0)
    model_e = TinyNet(3, 3)
    state_e = fit(model_e, source, pixels, None, epochs=6, batch_size=16, lr=0.05, seed=1, progress=False)
    assert [r["train_loss"] for r in state_d.history] == [r["train_loss"] for r in state_e.history]
    for key, value in model_e.state_dict().items():
        assert torch.equal(value, model_d.state_dict()[key])


def test_cpu_bf16_trains_in_bfloat16_where_the_cpu_has_it_and_predicts_in_float32(
    separable_problem: tuple[PatchSource, PixelSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, pixels = separable_problem
    cpu = torch.device("cpu")
    assert training_precision(cpu) == "float32" and training_precision(torch.device("cuda")) == "bfloat16"
    monkeypatch.setattr(trainer, "native_cpu_bf16", lambda: False)
    assert training_precision(cpu, cpu_bf16=True) == "float32"  # emulated bfloat16 is slower than float32
    monkeypatch.setattr(trainer, "native_cpu_bf16", lambda: True)
    assert training_precision(cpu, cpu_bf16=True) == "bfloat16"

    torch.manual_seed(0)
    model = TinyNet(3, 3)
    dtypes: list[torch.dtype] = []
    model.net[-1].register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    state = fit(model, source, pixels, pixels, epochs=2, batch_size=16, lr=0.05, seed=1, progress=False,
                recipe=Recipe(cpu_bf16=True))
    # The float32 passes come first: the batch-size probes, made outside training.
    n_steps = 2 * -(-len(pixels) // 16)
    assert dtypes[-1] == torch.bfloat16 and dtypes.count(torch.bfloat16) >= n_steps + 2  # steps and validation
    assert set(dtypes[dtypes.index(torch.bfloat16):]) == {torch.bfloat16}
    assert state.history[-1]["train_accuracy"] > 0.5
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
    dtypes.clear()
    with torch.no_grad(), autocast_for(cpu):  # as inference and batch-norm statistics call it
        model(source.gather(pixels.rows[:4], pixels.cols[:4]))
    assert dtypes == [torch.float32]


def test_flush_denormals_zeroes_subnormal_floats() -> None:
    """Subnormal float32 values (slow on x86) become zero; normal small values stay."""
    from hsi.training.device import flush_denormals

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        flush_denormals()
        values = torch.tensor([1e-39, 1e-30], dtype=torch.float32) * 1.0
        assert values[0].item() == 0.0 and values[1].item() == pytest.approx(1e-30)
    finally:
        torch.set_flush_denormal(False)
