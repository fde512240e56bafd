"""How many patches go through the network at once, chosen from the model's size and the device.

The optimiser's batch (``--batch-size``) is a property of the training protocol; how many
patches are *computed* at once is a property of the hardware, and the two need not agree:

* **CPU.** Each forward/backward pass is split into micro-batches whose activations total
  about :data:`CPU_ACTIVATION_BUDGET` bytes per intra-op thread (at most
  :data:`CPU_PASS_LIMIT` in all), and the gradients are accumulated, so the optimiser still
  sees the mean gradient of the whole batch. Measured
  on a 2-core Xeon (HybridSN, 25x25 patches, 30 bands; ``docs/performance.md``): one
  thread spends about 18 ms of CPU per training patch in passes of 256 and 13-14 ms in
  passes of 16; inference costs about 6.2 ms per patch at 64+ patches per pass against
  4.2 ms at <= 32. Two effects: a small pass stays in cache, and no activation tensor
  grows past glibc's 32 MB mmap threshold, above which every pass maps fresh pages from
  the kernel and faults them in again (a third to a half of the time was system time).
* **CUDA.** Training uses the whole batch (a GPU wants large kernels). Inference batches
  are sized to a fraction of the free device memory (``torch.cuda.mem_get_info``).

The per-patch activation size comes from :func:`hsi.models.profile_model` (one dummy
forward pass of one patch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hsi.models import profile_model

__all__ = [
    "CPU_ACTIVATION_BUDGET",
    "CPU_PASS_LIMIT",
    "GPU_MEMORY_FRACTION",
    "MAX_INFERENCE_BATCH",
    "activation_bytes_per_patch",
    "augment_patches",
    "dihedral",
    "even_chunks",
    "inference_batch_size",
    "train_micro_batch",
]

#: Activation bytes (all layers summed, float32) per CPU pass and intra-op thread. With
#: HybridSN at p=25 and 30 bands (3.8 MB per patch) this gives 17 patches on one thread.
CPU_ACTIVATION_BUDGET = 64 * 2**20
#: Cap on a CPU pass's activation bytes whatever the thread count, so its largest tensor
#: stays clear of glibc's 32 MB mmap threshold: HybridSN at p=25 gets 25 patches on two
#: threads (largest tensor 21 MB). Measured: passes of 35 patches paid 0.1-1.2 ms of
#: system time per patch, passes of 48 1.8 ms, passes of <= 32 about 0.01.
CPU_PASS_LIMIT = 96 * 2**20
#: Share of the free GPU memory an inference batch may take (the rest is left to the
#: allocator's fragmentation, cuDNN workspaces and other processes).
GPU_MEMORY_FRACTION = 0.5
#: Upper bound of an inference batch on any device.
MAX_INFERENCE_BATCH = 32_768


def activation_bytes_per_patch(model: nn.Module, *, in_chans: int, patch_size: int) -> int:
    """Bytes of all layer outputs of ``model`` for one ``(in_chans, patch_size, patch_size)`` patch.

    Runs one dummy forward pass on the model's device (see :func:`hsi.models.profile_model`).
    """
    profile = profile_model(model, patch_size=patch_size, in_chans=in_chans, num_classes=0)
    return max(int(profile["activation_bytes_per_patch"] or 0), 1)


def _cpu_chunk(bytes_per_patch: int, budget: int) -> int:
    # Per thread (oneDNN splits a pass over the threads along the batch, so each keeps
    # about ``budget`` bytes of work), up to the page-fault limit.
    total = min(budget * torch.get_num_threads(), max(budget, CPU_PASS_LIMIT))
    return max(1, total // max(bytes_per_patch, 1))


def train_micro_batch(
    model: nn.Module, *, in_chans: int, patch_size: int, batch_size: int, device: torch.device,
    budget: int = CPU_ACTIVATION_BUDGET,
) -> int:
    """Patches per forward/backward pass when training with batches of ``batch_size``.

    Returns:
        ``batch_size`` on CUDA (and other accelerators) and for models with batch
        normalisation (whose statistics would otherwise come from each pass, not the
        batch); on CPU the number of patches whose activations fit ``budget`` bytes per
        intra-op thread, at most ``batch_size``.
    """
    if device.type != "cpu" or any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return batch_size
    per_patch = activation_bytes_per_patch(model, in_chans=in_chans, patch_size=patch_size)
    return min(batch_size, _cpu_chunk(per_patch, budget))


def inference_batch_size(
    model: nn.Module, *, in_chans: int, patch_size: int, device: torch.device,
    budget: int = CPU_ACTIVATION_BUDGET,
) -> int:
    """Patches per forward pass for inference on ``device``.

    On CUDA: :data:`GPU_MEMORY_FRACTION` of the free memory divided by the activation bytes
    of one patch (all layers summed, float32: an over-estimate, as inference frees each
    layer's input after use and runs in bf16). On CPU: ``budget`` bytes of activations
    per intra-op thread.
    Always between 1 and :data:`MAX_INFERENCE_BATCH`.
    """
    per_patch = activation_bytes_per_patch(model, in_chans=in_chans, patch_size=patch_size)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        size = int(free * GPU_MEMORY_FRACTION) // per_patch
    else:
        size = _cpu_chunk(per_patch, budget)
    return max(1, min(size, MAX_INFERENCE_BATCH))


def even_chunks(n: int, max_size: int) -> tuple[int, int]:
    """Splits ``n`` items into equal chunks of at most ``max_size``.

    Returns:
        ``(n_chunks, chunk_size)`` with ``n_chunks * chunk_size >= n`` and the padding
        ``n_chunks * chunk_size - n`` below ``n_chunks``; so every chunk can have one shape
        (a new shape costs cuDNN a fresh autotuning run and oneDNN a new primitive).
    """
    if n <= 0:
        return 0, max(1, max_size)
    n_chunks = math.ceil(n / max(1, max_size))
    return n_chunks, math.ceil(n / n_chunks)


#: The 8 symmetries of a square (flips and 90-degree rotations) as (transpose, flip rows, flip columns).
DIHEDRAL = tuple((bool(t & 4), bool(t & 2), bool(t & 1)) for t in range(8))


def dihedral(x: torch.Tensor, index: int, *, inverse: bool = False) -> torch.Tensor:
    """Symmetry ``index`` (0..7; 0 = identity) of the last two (spatial) axes of ``x``, or its inverse.

    Symmetry t transposes (if t & 4), then flips rows (t & 2), then flips columns (t & 1); the
    inverse undoes them in reverse order. On an (N, C, p, p) patch batch the centre pixel stays
    in place; on a padded tile (B, C, h + p - 1, w + p - 1) the dense output map of the
    transformed tile is the transformed output map, which is why dense inference with test-time
    augmentation equals the patch-wise one.
    """
    transpose, flip_rows, flip_cols = DIHEDRAL[index]
    steps: list[tuple[str, bool]] = [("t", transpose), ("r", flip_rows), ("c", flip_cols)]
    for op, on in reversed(steps) if inverse else steps:
        if on:
            x = x.transpose(-1, -2) if op == "t" else x.flip(-2 if op == "r" else -1)
    return x


def augment_patches(
    patches: torch.Tensor, generator: torch.Generator, *, flips: bool = True, jitter: float = 0.0,
    context_mix: float = 0.0,
) -> torch.Tensor:
    """A randomly transformed copy of a training batch, computed on its device.

    A share ``context_mix`` of the patches first take their surroundings (all but the centre
    3 x 3) from another patch of the batch (a random permutation). Each patch then independently
    gets one of the 8 flips/90-degree rotations (``flips``) and a spectral jitter (``jitter >
    0``): its values times a brightness scale ~ N(1, jitter), plus Gaussian noise of standard
    deviation ``jitter / 2`` per value. Pure: the draws come from ``generator`` alone (a CPU
    generator; the draws are moved to the batch's device), so a seeded generator repeats the
    batch exactly, and any batch path can call it.

    Args:
        patches: (N, C, p, p) float, square patches.
        generator: the source of every random draw.
        flips: draw a flip/rotation per patch.
        jitter: brightness-scale standard deviation; 0 = no spectral jitter.
        context_mix: probability that a patch's surroundings are another patch's; 0 = none.

    Returns:
        (N, C, p, p), same dtype and device.
    """
    n, device = patches.shape[0], patches.device
    out = patches
    if context_mix > 0 and n > 1:
        partner = torch.randperm(n, generator=generator).to(device)
        mixed = (torch.rand((n, 1, 1, 1), generator=generator) < context_mix).to(device)
        p, half = patches.shape[-1], 1
        centre = torch.zeros((1, 1, p, p), dtype=torch.bool, device=device)
        centre[..., p // 2 - half:p // 2 + half + 1, p // 2 - half:p // 2 + half + 1] = True
        out = torch.where(mixed & ~centre, out[partner], out)
    if flips:
        bits = torch.randint(0, 2, (3, n, 1, 1, 1), generator=generator).bool().to(device)
        out = torch.where(bits[0], out.transpose(-1, -2), out)
        out = torch.where(bits[1], out.flip(-2), out)
        out = torch.where(bits[2], out.flip(-1), out)
    if jitter > 0:
        scale = 1.0 + jitter * torch.randn((n, 1, 1, 1), generator=generator)
        noise = torch.randn(tuple(patches.shape), generator=generator) * (jitter / 2)
        out = out * scale.to(device=device, dtype=out.dtype) + noise.to(device=device, dtype=out.dtype)
    return out
