"""Resuming an interrupted ``train`` run in its own folder, from its last finished epoch.

A run keeps one resume point per network (an ensemble trains several, one after another, and each
self-training round trains its own: :func:`hsi.training.self_training.round_network` numbers them):
``resume-network-K.pt`` holds network K's weights, optimiser state and training state (epoch,
history, best epoch and its weights), and ``resume.pt`` what they share: the split masks, the
fitted PCA, the run's settings, a fingerprint of the scene and the training seconds so far.
Both are written through :func:`hsi.training.checkpoint.save_checkpoint` (atomically, loaded
without unpickling code). A network's point is written after the run's first epoch, whenever
the network stops training (its last epoch, or the end of an ensemble's screening), and in
between at most every :data:`SAVE_INTERVAL` seconds; a network that is done is not written again.
``hsi-classify train --resume RUN_DIR`` reads the folder's ``config.json`` (written when the run
starts), reloads the scene, checks it is the same one, and continues every network where its
point left it. Every epoch draws its batch order and dropout from ``(seed, epoch)``, so with
``--deterministic`` the continued run ends with the metrics of an uninterrupted one. The resume
points are removed once the run is complete. A ``resume.pt`` of earlier versions (one network's
weights inside it) still resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hsi._core.errors import CheckpointError, ConfigError, DataFormatError
from hsi._core.options import flag_of
from hsi.config import RunConfig, config_from_options, migrate, run_options
from hsi.data.scene import Scene
from hsi.data.splits import Split
from hsi.experiments.run_dir import RESUME_FILE, STATUS_FILE, network_resume_file, read_status
from hsi.features.pca import SpectralPCA
from hsi.reporting.files import to_jsonable
from hsi.training.checkpoint import load_checkpoint, save_checkpoint
from hsi.training.classifier import NetworkCallback, NetworkResume, Resume
from hsi.training.denoise_fit import Denoiser
from hsi.training.trainer import TrainState

__all__ = ["RESUMABLE_OVERRIDES", "SAVE_INTERVAL", "ResumePoint", "epoch_saver", "load_resume_point",
           "resumable_config"]

#: Settings ``--resume`` may change: where the data is and what runs it, never what is computed.
RESUMABLE_OVERRIDES = ("device", "data_dir", "download", "cube", "gt")
_KIND = "resume"
_NETWORK_KIND = "resume-network"
#: Seconds of training between two resume points of a network that trains on (besides the points
#: where a network stops): what an interruption can cost, against the bytes written (HybridSN at
#: patch 25: about 80 MB a point).
SAVE_INTERVAL = 30.0
_COST_RATIO = 10  # and train at least this many times as long as the last save took before saving again


@dataclass
class ResumePoint:
    """A run saved after an epoch: everything needed to continue it exactly.

    Attributes:
        networks: each saved network's weights, optimiser state and training state, by index.
        train_seconds: training time spent so far, over all sessions.
        split: the split the run started with (masks of shape (H, W)).
        pca: the PCA fitted when the run started.
        denoiser: the ``--denoise`` front end fitted when the run started, or None.
    """

    networks: dict[int, NetworkResume]
    train_seconds: float
    split: Split
    pca: SpectralPCA
    denoiser: Denoiser | None = None

    def fit_resume(self) -> Resume:
        """Where the classifier's fit continues: each network's weights, optimiser and training state."""
        return Resume(dict(self.networks))


def scene_fingerprint(scene: Scene) -> str:
    """A hash of the cube and labels, so a run is never continued on data that changed."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (scene.cube, scene.labels):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.data)
    return digest.hexdigest()


def _settings(config: RunConfig) -> dict[str, Any]:
    """The settings that decide what a run computes (the overridable ones left out)."""
    return {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_OVERRIDES}


def epoch_saver(
    run_dir: Path,
    *,
    config: RunConfig,
    scene: Scene,
    split: Split,
    pca: SpectralPCA,
    denoiser: Denoiser | None = None,
    resume: ResumePoint | None = None,
    interval: float = SAVE_INTERVAL,
) -> NetworkCallback:
    """The ``on_epoch_end`` callback of a classifier's fit that writes the run's resume points.

    A network's point is written after the run's first epoch, after the last epoch a network
    trains before it stops (``stage_end``), and otherwise when ``interval`` seconds have passed
    since the last point (and ten times as long as that point took to write). A network that has
    trained all its epochs is saved without its optimiser state (it never trains again).

    Args:
        run_dir: the run folder.
        config: the run's settings (saved, so a changed config.json is noticed on resume).
        scene: the scene trained on (only its fingerprint is saved).
        split: the run's split; pca: its fitted PCA; denoiser: its fitted front end, if any.
        resume: the point this session continues from, if any (its seconds are added).
        interval: seconds between two points of a network that trains on (0: a point after every epoch).

    Returns:
        A callback ``(network, epoch, model, optimizer, state, stage_end) -> None``.
    """
    started = time.perf_counter()  # this session's training starts now: the callback is made just before it
    fingerprint = scene_fingerprint(scene)
    seconds_before = resume.train_seconds if resume is not None else 0.0
    shared = {
        "kind": _KIND,
        "split": {"train": split.train, "val": split.val, "test": split.test, "excluded": split.excluded,
                  "info": json.dumps(to_jsonable(split.info))},  # free-form notes: kept as text
        "pca": pca.state_dict(),
        **({"denoiser": denoiser.state()} if denoiser is not None else {}),
        "settings": _settings(config),
        "scene_fingerprint": fingerprint,
    }
    saved_at: float | None = None  # when the last point was written, and how long that took
    save_seconds = 0.0

    def save(network: int, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState,
             stage_end: bool) -> None:
        nonlocal saved_at, save_seconds
        began = time.perf_counter()
        gap = max(interval, _COST_RATIO * save_seconds) if interval > 0 else 0.0  # 0: after every epoch
        if not stage_end and saved_at is not None and began - saved_at < gap:
            return
        done = epoch >= config.epochs
        save_checkpoint(run_dir / network_resume_file(network), {
            "kind": _NETWORK_KIND,
            "network": network,
            "epoch": epoch,
            "model_state": model.state_dict(),
            **({} if done else {"optimizer_state": optimizer.state_dict()}),
            "train_state": {f.name: getattr(state, f.name) for f in fields(TrainState) if f.name != "optimizer_state"},
        })
        save_checkpoint(run_dir / RESUME_FILE, {**shared,
                                                "train_seconds": seconds_before + time.perf_counter() - started})
        saved_at = time.perf_counter()
        save_seconds = saved_at - began

    return save


def _flag(setting: str) -> str:
    """The command-line flag of a setting (``--config`` too)."""
    declared = run_options().get(setting)
    return declared.flag if declared is not None else flag_of(setting)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def resumable_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Checks that ``run_dir`` is an unfinished train run and returns its settings.

    Args:
        run_dir: the folder of an interrupted (or failed, or killed) train run.
        overrides: new values for settings in :data:`RESUMABLE_OVERRIDES` (e.g. another device).

    Raises:
        ConfigError: not a run folder, already complete, still running, or an override of a
            setting that would change what the run computes.
    """
    run_dir = Path(run_dir)
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if fixed:
        raise ConfigError(
            f"--resume continues a run with the settings in its config.json; got {', '.join(map(_flag, fixed))} "
            f"as well. Drop {'it' if len(fixed) == 1 else 'them'} (only {', '.join(map(_flag, RESUMABLE_OVERRIDES))} "
            f"may be given), or start a new run with --config {run_dir / 'config.json'}."
        )
    if not run_dir.is_dir():
        raise ConfigError(f"--resume expects the folder of a train run; {run_dir} is not a folder. "
                          "Pass a folder the train command created (it holds config.json and status.json).")
    missing = [name for name in ("config.json", STATUS_FILE) if not (run_dir / name).is_file()]
    state = read_status(run_dir)
    if missing or state is None:
        raise ConfigError(
            f"--resume expects the folder of a train run; {run_dir} has no readable "
            f"{' or '.join(missing or [STATUS_FILE])}. Pass a folder the train command created."
        )
    if state == "complete":
        raise ConfigError(
            f"run {run_dir} is already complete; there is nothing to resume. "
            f"To train again with its settings use --config {run_dir / 'config.json'}."
        )
    if state == "running":
        status = json.loads((run_dir / STATUS_FILE).read_text())
        pid, host = status.get("pid"), status.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid() and _process_alive(pid):
            raise ConfigError(
                f"run {run_dir} is still running (process {pid} on this machine); wait for it or stop it "
                f"(kill {pid}) before --resume."
            )
    config = RunConfig.from_json_file(run_dir / "config.json")  # any schema version: migrate() reads it
    return config_from_options(overrides, base=config)


def load_resume_point(run_dir: Path, scene: Scene, config: RunConfig) -> ResumePoint | None:
    """Reads ``run_dir/resume.pt``; None when the run stopped before its first epoch ended.

    Raises:
        CheckpointError: the file is damaged or not a resume point.
        ConfigError: config.json changed since the run started.
        DataFormatError: the scene is not the one the run started on.
    """
    path = run_dir / RESUME_FILE
    if not path.exists():
        return None
    try:
        data = load_checkpoint(path)
    except CheckpointError:
        data = None
    if data is None or data.get("kind") != _KIND:
        raise CheckpointError(
            f"cannot resume from {path}: the file is damaged, tampered with or not a resume point; "
            "delete it to restart the run from epoch 0 in the same folder."
        )
    now = _settings(config)
    # An option added since the point was saved: as resumable_config reads config.json (migrate()).
    saved = {k: v for k, v in migrate({"run": data["settings"]})["run"].items() if k in now or k in data["settings"]}
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        first = changed[0]
        raise ConfigError(
            f"config.json of run {run_dir} no longer matches the run ({first}: {saved.get(first)!r} when it started, "
            f"{now.get(first)!r} now); restore it, or start a new run with --config."
        )
    if data["scene_fingerprint"] != scene_fingerprint(scene):
        raise DataFormatError(
            f"the scene is not the one run {run_dir} started on (its cube or ground truth changed); "
            "restore the original files, or start a new run."
        )
    masks = {k: v.numpy() for k, v in data["split"].items() if k != "info"}
    split = Split(**masks, info=json.loads(data["split"]["info"]))
    pca = SpectralPCA.from_state_dict(data["pca"])
    denoiser = Denoiser.from_state(data["denoiser"]) if "denoiser" in data else None
    if "model_state" in data:  # an earlier version's point: one network, inside resume.pt
        networks = {0: _network_resume(data)}
    else:
        networks = {}
        for network_path in sorted(run_dir.glob(network_resume_file("*"))):
            network = _read_network_point(network_path)
            networks[int(network["network"])] = _network_resume(network)
    return ResumePoint(networks=networks, train_seconds=float(data["train_seconds"]), split=split, pca=pca,
                       denoiser=denoiser)


def _read_network_point(path: Path) -> dict[str, Any]:
    try:
        data = load_checkpoint(path)
    except CheckpointError:
        data = None
    if data is None or data.get("kind") != _NETWORK_KIND or not isinstance(data.get("network"), int):
        raise CheckpointError(
            f"cannot resume from {path}: the file is damaged, tampered with or not a network's resume point; "
            f"delete it to restart that network from epoch 0."
        )
    return data


def _network_resume(data: dict[str, Any]) -> NetworkResume:
    """One network's saved weights, optimiser state and training state."""
    known = {f.name for f in fields(TrainState)} - {"optimizer_state"}
    train_state = TrainState(**{k: v for k, v in data["train_state"].items() if k in known})
    return NetworkResume(data["model_state"], data.get("optimizer_state"), train_state)
