"""Training DIFNet: a YAML recipe (:class:`DIFNetTrainConfig`), resumable checkpoints, a JSONL log, a weights folder.

``train_difnet(config, out_dir)`` writes into ``out_dir``:

- ``train_config.json``: the resolved recipe (a later call on the same folder must give the same one);
- ``checkpoints/step_NNNNNNNN.pt``: model, optimizer, torch RNG state and step (the data need no RNG state:
  sample ``i`` is drawn from ``(seed, split, i)``), every ``checkpoint_every`` steps
  (written under a temporary name and renamed, so a kill never leaves a damaged one; the newest
  ``keep_checkpoints`` are kept). Calling ``train_difnet`` again on the folder resumes from the newest one; on
  CPU the result is the same, bit for bit, as an uninterrupted run (the data of step ``s`` depends only on ``s``);
- ``log.jsonl``: one JSON object a line (``event`` = ``start`` | ``resume`` | ``train`` | ``validation`` |
  ``checkpoint`` | ``done``); on resume, the lines after the checkpoint's step are dropped;
- ``weights/``: the trained weights folder (:mod:`sarpipe.models.weights`) with its model card, at the end.

Optimisation as in the paper: AdamW (lr 2e-4, weight decay 0.02), batch 4, L2 loss between the predicted mask
and the true mask; validation pixel accuracy and IoU (mask > 0.5, :mod:`sarpipe.rfi.metrics`) every
``steps_per_epoch`` steps.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..atomic import atomic_path
from ..errors import InputError
from ..pipeline.registry import LocalPath
from .difnet_data import DIFNetDataConfig, make_batch

__all__ = [
    "DIFNetArchConfig",
    "DIFNetTrainConfig",
    "OptimizerConfig",
    "TrainDIFNetParams",
    "TrainResult",
    "load_train_config",
    "time_training_step",
    "train_difnet",
    "weights_from_checkpoint",
]


class DIFNetArchConfig(BaseModel):
    """Network size (:class:`sarpipe.models.difnet.DIFNet`)."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(16, ge=1)
    levels: int = Field(3, ge=0)
    window: int = Field(8, ge=1)
    heads: int = Field(1, ge=1)


class OptimizerConfig(BaseModel):
    """AdamW settings (the paper's by default)."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(2e-4, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.02, ge=0)
    batch_size: int = Field(4, ge=1)
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning rate over the run: constant, or cosine decay from lr to min_lr_fraction * lr"
    )
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 to lr over this many steps")
    min_lr_fraction: float = Field(0.0, ge=0, le=1)

    def lr_at(self, step: int, steps: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based) of a run of ``steps`` steps (a function of the step
        only, so a resumed run needs no scheduler state)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        span = max(steps - self.warmup_steps, 1)
        frac = min(max((step - self.warmup_steps) / span, 0.0), 1.0)
        low = self.min_lr_fraction * self.lr
        return low + 0.5 * (self.lr - low) * (1.0 + math.cos(math.pi * frac))


class DIFNetTrainConfig(BaseModel):
    """The training recipe (YAML keys ``model``, ``data``, ``optimizer``, ``steps``, ...)."""

    model_config = ConfigDict(extra="forbid")

    model: DIFNetArchConfig = DIFNetArchConfig()
    data: DIFNetDataConfig = DIFNetDataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    steps: int = Field(10_000, ge=1, description="optimizer steps in all")
    steps_per_epoch: int = Field(500, ge=1, description="validation after every this many steps")
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    seed: int = Field(0, description="seeds the network's initial weights")
    device: str = "auto"
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default)")


class TrainDIFNetParams(BaseModel):
    """The ``train_difnet`` operation (``sarpipe train difnet`` and the pipeline stage): the recipe file."""

    model_config = ConfigDict(extra="forbid")

    config_file: LocalPath = Field(
        ..., description="DIFNet training recipe (YAML), e.g. sarpipe/models/recipes/difnet_cpu.yaml"
    )


def load_train_config(path: str | os.PathLike) -> DIFNetTrainConfig:
    """Read a training recipe from YAML; problems name FILE:LINE:COL and the key."""
    from ..yamlconf import load_model

    return load_model(DIFNetTrainConfig, path)


def _as_config(config: DIFNetTrainConfig | Mapping[str, Any] | str | os.PathLike) -> DIFNetTrainConfig:
    if isinstance(config, DIFNetTrainConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_train_config(config)
    try:
        return DIFNetTrainConfig.model_validate(dict(config))
    except ValidationError as exc:
        from ..yamlconf import ConfigError, format_validation_error

        raise ConfigError(format_validation_error(exc, None), title="invalid DIFNet training configuration") from exc


@dataclass
class TrainResult:
    """Where the run left things: ``step`` reached, last training ``loss``, the ``validation`` records,
    the ``weights`` folder (None until ``steps`` are done) and the ``log`` file."""

    step: int
    loss: float
    validation: list[dict[str, Any]] = field(default_factory=list)
    weights: Path | None = None
    log: Path | None = None


class _Progress:
    """A one-line progress bar on a terminal (stderr); silent otherwise."""

    def __init__(self, total: int, start: int, enabled: bool | None):
        self.total, self.start = total, start
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.monotonic()

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        done = step - self.start
        rate = (time.monotonic() - self.t0) / max(done, 1)
        eta = rate * (self.total - step)
        frac = step / self.total
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        sys.stderr.write(
            f"\rdifnet [{bar}] {step}/{self.total} loss {loss:.4g} {rate:.2f} s/step eta {eta / 60:.1f} min "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for p in folder.glob("step_*.pt"):
        try:
            out.append((int(p.stem.split("_")[1]), p))
        except (IndexError, ValueError):
            continue
    return sorted(out)


def _save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step_{step:08d}.pt"
    with atomic_path(final, overwrite=True) as tmp:  # the run folder is this run's own
        torch.save(state, tmp)
    for _s, old in _checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def _trim_log(log: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (the part of a killed run that the resume repeats)."""
    if not log.is_file():
        return
    keep = []
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
        if int(rec.get("step", 0)) <= step:
            keep.append(line)
    with atomic_path(log, overwrite=True) as tmp:
        tmp.write_text("".join(k + "\n" for k in keep))


def _validate(net: Any, cfg: DIFNetTrainConfig, data: tuple[np.ndarray, np.ndarray], device: Any) -> dict[str, float]:
    import torch

    from ..rfi.metrics import iou, pixel_accuracy

    x_all, y_all = data
    preds = []
    net.eval()
    with torch.inference_mode():
        for lo in range(0, x_all.shape[0], cfg.optimizer.batch_size):
            preds.append(
                net(torch.from_numpy(x_all[lo : lo + cfg.optimizer.batch_size]).to(device)).float().cpu().numpy()
            )
    net.train()
    pred = np.concatenate(preds)
    return {
        "loss": float(np.mean((pred - y_all) ** 2)),
        "pa": pixel_accuracy(pred > 0.5, y_all > 0.5),
        "iou": iou(pred > 0.5, y_all > 0.5),
    }


def _card(
    cfg: DIFNetTrainConfig, n_params: int, step: int, seconds: float, validation: list[dict[str, Any]], device: str
) -> str:
    last = validation[-1] if validation else None
    scores = (
        f"validation ({cfg.data.validation_samples} simulated spectrograms, mask > 0.5): "
        f"PA {100 * last['pa']:.2f} %, IoU {100 * last['iou']:.2f} %, L2 {last['loss']:.4g} at step {last['step']}"
        if last
        else "no validation was run"
    )
    vf = cfg.data.valid_for()
    return f"""# DIFNet weights (sarpipe)

Made by `sarpipe.models.training.train_difnet`; the full recipe is `training.config` in `config.json`.

- Architecture: channels {cfg.model.channels}, levels {cfg.model.levels}, window {cfg.model.window}, heads {cfg.model.heads}; {n_params:,} parameters.
- Input: one pulse's spectrogram magnitude, transform `log1p-median-std/1`; trained on {cfg.data.nperseg} x {cfg.data.frames} tiles.
- Valid for: STFT {vf.stft}; range sampling rate {vf.range_sampling_rate[0] / 1e6:g}..{vf.range_sampling_rate[1] / 1e6:g} MHz; chirp bandwidth {vf.chirp_bandwidth[0] / 1e6:g}..{vf.chirp_bandwidth[1] / 1e6:g} MHz.
- Data: simulated on the fly (`sarpipe.models.difnet_data`), sensors {[s.model_dump(exclude_none=True) for s in cfg.data.sensors]}, SIR {list(cfg.data.sir_db)} dB, seed {cfg.data.seed}.
- Training: {step} steps of batch {cfg.optimizer.batch_size}, AdamW lr {cfg.optimizer.lr:g} ({cfg.optimizer.schedule}, {cfg.optimizer.warmup_steps} warm-up steps), weight decay {cfg.optimizer.weight_decay:g}; {seconds / 3600:.2f} h on {device}.
- Scores: {scores}. Benchmark scores: see docs/models/difnet.md (none are claimed here).
"""


def train_difnet(
    config: DIFNetTrainConfig | Mapping[str, Any] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    progress: bool | None = None,
    stop_after: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train (or resume training) DIFNet per ``config`` into ``out_dir`` (module docstring).

    ``progress``: show a progress bar (None: when stderr is a terminal). ``stop_after``: return after this many
    steps of this call (a planned interruption; call again to resume). ``on_step(step, loss)``: called after every
    step (an exception from it stops the run as a kill would, after the last checkpoint). ``overwrite``: a folder
    that holds something else (files, or a run of another configuration) is emptied and a new run started there
    (without it that is an :class:`InputError`; a run of the same configuration is always resumed).
    """
    import torch

    from .difnet import DIFNet, count_parameters
    from .torch_method import INPUT_TRANSFORM, resolve_device, torch_threads
    from .weights import save_weights

    cfg = _as_config(config)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder", where="--output")
    cfg_json = cfg.model_dump(mode="json")
    cfg_file = out / "train_config.json"
    problem = None
    if out.is_dir() and any(out.iterdir()) and not cfg_file.is_file():
        problem = f"{out} is not empty and holds no DIFNet training run; give a new or empty folder"
    elif cfg_file.is_file():
        try:
            earlier = json.loads(cfg_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            earlier = None
        if earlier != cfg_json:
            problem = f"{out} holds a run of another configuration ({cfg_file}); give a new output folder"
    if problem and not overwrite:
        raise InputError(problem + " (or pass --overwrite to replace it)", where="--output")
    if problem:
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg_file.is_file():
        with atomic_path(cfg_file, overwrite=True) as tmp:
            tmp.write_text(json.dumps(cfg_json, indent=2, sort_keys=True) + "\n")
    ckpt_dir, log_path = out / "checkpoints", out / "log.jsonl"
    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        net = DIFNet(**cfg.model.model_dump()).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay)
        step, seconds, validation, loss_value = 0, 0.0, [], float("nan")
        for stale in ckpt_dir.glob(".step_*.pt.tmp-*"):  # a checkpoint being written when the run was killed
            stale.unlink(missing_ok=True)
        found, state = _checkpoints(ckpt_dir), None
        while found and state is None:
            try:
                state = torch.load(found[-1][1], map_location=device, weights_only=False)
            except Exception as exc:  # noqa: BLE001 - a damaged file (full disk, ...): fall back to the one before
                warnings.warn(
                    f"checkpoint {found[-1][1]} cannot be read ({exc}); trying an older one",
                    RuntimeWarning,
                    stacklevel=2,
                )
                found.pop()
        if state is not None:
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            step, seconds, validation = int(state["step"]), float(state["seconds"]), list(state["validation"])
            loss_value = float(state["loss"])
            _trim_log(log_path, step)

        def write(rec: dict[str, Any]) -> None:
            with open(log_path, "a") as fh:  # reopened per record: a kill loses at most the line being written
                fh.write(json.dumps(rec) + "\n")

        write(
            {
                "event": "resume" if found else "start",
                "step": step,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "time": time.time(),
            }
        )
        val_data = make_batch(cfg.data, "validation", range(cfg.data.validation_samples))
        bs = cfg.optimizer.batch_size
        # a fixed training set small enough is kept in memory (it is the same every epoch)
        per_sample = 8 * cfg.data.nperseg * cfg.data.frames
        cache = {} if cfg.data.train_samples and cfg.data.train_samples * per_sample <= 256 << 20 else None

        def train_batch(s: int) -> tuple[np.ndarray, np.ndarray]:
            idx = np.arange(s * bs, (s + 1) * bs)
            if cfg.data.train_samples is not None:
                idx = idx % cfg.data.train_samples
            if cache is None:
                return make_batch(cfg.data, "train", idx)
            for i in idx:
                if int(i) not in cache:
                    xi, yi = make_batch(cfg.data, "train", [int(i)])
                    cache[int(i)] = (xi[0], yi[0])
            return np.stack([cache[int(i)][0] for i in idx]), np.stack([cache[int(i)][1] for i in idx])

        bar = _Progress(cfg.steps, step, progress)
        done_here = 0
        net.train()
        try:
            while step < cfg.steps and (stop_after is None or done_here < stop_after):
                t0 = time.monotonic()
                x, y = train_batch(step)
                xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                lr = cfg.optimizer.lr_at(step, cfg.steps)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
                loss = torch.mean((net(xt) - yt) ** 2)
                loss.backward()
                opt.step()
                step += 1
                done_here += 1
                loss_value = float(loss.detach())
                seconds += time.monotonic() - t0
                if step % cfg.log_every == 0 or step == cfg.steps:
                    write({"event": "train", "step": step, "loss": loss_value, "lr": lr, "seconds": seconds})
                if step % cfg.steps_per_epoch == 0 or step == cfg.steps:
                    v = {"step": step, "epoch": step / cfg.steps_per_epoch, **_validate(net, cfg, val_data, device)}
                    validation.append(v)
                    write({"event": "validation", **v})
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    state = {
                        "model": net.state_dict(),
                        "optimizer": opt.state_dict(),
                        "step": step,
                        "seconds": seconds,
                        "loss": loss_value,
                        "validation": validation,
                        "torch_rng": torch.get_rng_state(),
                        "config": cfg_json,
                    }
                    path = _save_checkpoint(ckpt_dir, step, state, cfg.keep_checkpoints)
                    write({"event": "checkpoint", "step": step, "path": str(path)})
                bar.update(step, loss_value)
                if on_step is not None:
                    on_step(step, loss_value)
        finally:
            bar.close()
        weights = None
        if step >= cfg.steps:
            weights = save_weights(
                out / "weights",
                model="difnet",
                architecture=net.architecture(),
                state_dict=net.state_dict(),
                valid_for=cfg.data.valid_for(),
                input_transform=INPUT_TRANSFORM,
                card=_card(cfg, count_parameters(net), step, seconds, validation, str(device)),
                tile=[cfg.data.nperseg, cfg.data.frames],
                training={
                    "config": cfg_json,
                    "steps": step,
                    "seconds": seconds,
                    "device": str(device),
                    "validation": validation[-1] if validation else None,
                },
                overwrite=True,
            )
            write({"event": "done", "step": step, "weights": str(weights)})
        return TrainResult(step=step, loss=loss_value, validation=validation, weights=weights, log=log_path)


def weights_from_checkpoint(run_dir: str | os.PathLike, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the weights folder of the newest checkpoint of the training run ``run_dir`` (a run stopped before its
    ``steps``: the card says how many steps it reached). Returns the folder."""
    import torch

    from .difnet import DIFNet, count_parameters
    from .torch_method import INPUT_TRANSFORM
    from .weights import save_weights

    run = Path(run_dir)
    found = _checkpoints(run / "checkpoints")
    if not found:
        raise InputError(f"no checkpoints in {run / 'checkpoints'}", where=os.fspath(run))
    state = torch.load(found[-1][1], map_location="cpu", weights_only=False)
    cfg = DIFNetTrainConfig.model_validate(state["config"])
    net = DIFNet(**cfg.model.model_dump())
    net.load_state_dict(state["model"])
    step, seconds, validation = int(state["step"]), float(state["seconds"]), list(state["validation"])
    cfg_json = cfg.model_dump(mode="json")
    return save_weights(
        folder,
        model="difnet",
        architecture=net.architecture(),
        state_dict=net.state_dict(),
        valid_for=cfg.data.valid_for(),
        input_transform=INPUT_TRANSFORM,
        card=_card(cfg, count_parameters(net), step, seconds, validation, "cpu"),
        tile=[cfg.data.nperseg, cfg.data.frames],
        training={
            "config": cfg_json,
            "steps": step,
            "seconds": seconds,
            "device": "cpu",
            "validation": validation[-1] if validation else None,
            "checkpoint": found[-1][1].name,
        },
        overwrite=overwrite,
    )


def time_training_step(
    arch: Mapping[str, int], height: int, width: int, batch: int = 4, repeats: int = 3, threads: int | None = 1
) -> float:
    """Median seconds of one optimizer step (forward, L2 loss, backward, AdamW) on random data, on CPU."""
    import torch

    from .difnet import DIFNet
    from .torch_method import torch_threads

    with torch_threads(threads):
        torch.manual_seed(0)
        net = DIFNet(**dict(arch))
        opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=0.02)
        x = torch.randn(batch, 1, height, width)
        y = (torch.rand(batch, 1, height, width) > 0.8).float()
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            opt.zero_grad()
            torch.mean((net(x) - y) ** 2).backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        return float(np.median(times[1:]))
