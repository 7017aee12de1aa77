"""Model weights folders: ``model.safetensors`` + ``config.json`` + ``README.md`` (the model card).

``config.json`` holds:

- ``format``: ``"sarpipe-weights/1"``; ``model``: the model's registered name (``"difnet"``);
- ``architecture``: the keyword arguments that rebuild the network;
- ``input_transform``: name of the spectrogram -> input transform (:data:`sarpipe.models.torch_method.INPUT_TRANSFORM`);
- ``tile``: ``[n_freq, n_frames]`` the network was trained on (the default inference tile);
- ``valid_for``: what the weights may be applied to: ``stft`` (``nperseg``, ``hop``, ``window``, exactly),
  ``range_sampling_rate`` and ``chirp_bandwidth`` (``[low, high]`` in Hz, the span of the training data);
- ``weights_sha256``: hash of ``model.safetensors`` (a changed or damaged file is refused);
- ``training``: free-form record of how they were made.

The tensor file is a safetensors file (8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw little-endian bytes), written and read with the ``safetensors`` package
(no pickle anywhere); this module only checks the header length first, so a truncated or foreign file gets a
message naming the file instead of the package's error.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "WEIGHTS_FORMAT",
    "ValidFor",
    "WeightsBundle",
    "load_state",
    "load_weights",
    "read_tensors",
    "save_weights",
    "write_tensors",
]

WEIGHTS_FORMAT = "sarpipe-weights/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"

# --------------------------------------------------------------------------------------------- tensor file


def write_tensors(
    path: str | os.PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> None:
    """Write named arrays (numpy or torch, CPU) to ``path`` as a safetensors file."""
    from safetensors.numpy import save_file

    arrays = {}
    for name, t in tensors.items():
        arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        arrays[str(name)] = np.ascontiguousarray(arr)
    try:
        save_file(arrays, os.fspath(path), metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None)
    except (ValueError, TypeError) as exc:  # a dtype safetensors cannot store, say
        raise ValueError(f"cannot store these tensors: {exc}") from exc
    _sort_metadata(path)


def _sort_metadata(path: str | os.PathLike) -> None:
    """Rewrite the header's ``__metadata__`` with sorted keys (safetensors writes them in hash order, which
    changes between processes), so the same tensors and metadata always give the same bytes. Same length: only
    the key order changes."""
    with open(path, "r+b") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        text = fh.read(n)
        header = json.loads(text)
        if len(header.get("__metadata__") or {}) < 2:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        canonical = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        canonical += b" " * (n - len(canonical))
        if len(canonical) == n:
            fh.seek(8)
            fh.write(canonical)


def read_tensors(path: str | os.PathLike, *, where: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file -> (name -> numpy array, metadata). A damaged file is an :class:`InputError`."""
    from safetensors import SafetensorError, safe_open

    where = where or os.fspath(path)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no weights file {p}", where=where)
    size = p.stat().st_size
    if size < 8:
        raise InputError(f"{p} is not a weights file (only {size} bytes; truncated?)", where=where)
    with open(p, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
    if n > size - 8:
        raise InputError(f"{p} is truncated (header of {n} bytes, file of {size})", where=where)
    try:
        with safe_open(os.fspath(p), framework="numpy") as f:
            meta = f.metadata() or {}
            out = {name: np.array(f.get_tensor(name)) for name in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        text = str(exc)
        kind = (
            "is truncated"
            if "incomplete" in text.lower() or "out of bounds" in text.lower()
            else "is not a safetensors file"
        )
        raise InputError(f"{p} {kind} ({text})", where=where) from exc
    return out, {str(k): str(v) for k, v in meta.items()}


# --------------------------------------------------------------------------------------------- validity


@dataclass(frozen=True)
class ValidFor:
    """What weights may be applied to: the STFT (exactly) and the span of sampling rates and chirp bandwidths
    [Hz] of the training data."""

    stft: Mapping[str, Any]
    range_sampling_rate: tuple[float, float]
    chirp_bandwidth: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stft": dict(self.stft),
            "range_sampling_rate": list(self.range_sampling_rate),
            "chirp_bandwidth": list(self.chirp_bandwidth),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidFor:
        return cls(
            stft=dict(d["stft"]),
            range_sampling_rate=tuple(float(v) for v in d["range_sampling_rate"]),  # type: ignore[arg-type]
            chirp_bandwidth=tuple(float(v) for v in d["chirp_bandwidth"]),
        )  # type: ignore[arg-type]

    def problems(self, stft: Mapping[str, Any], fs: float, bandwidth: float) -> list[str]:
        """Reasons (empty when none) why these weights do not apply to ``stft`` / ``fs`` / ``bandwidth``."""
        out = []
        want = {k: self.stft[k] for k in ("nperseg", "hop", "window")}
        got = {k: stft.get(k) for k in want}
        if want != got:
            out.append(f"they were made for the STFT {want}, not {got} (use those STFT settings)")
        rel = 1e-6
        lo, hi = self.range_sampling_rate
        if not lo * (1 - rel) <= fs <= hi * (1 + rel):
            out.append(
                f"the range sampling rate {fs / 1e6:.6g} MHz lies outside the trained {lo / 1e6:.6g}..{hi / 1e6:.6g} MHz"
            )
        lo, hi = self.chirp_bandwidth
        if not lo * (1 - rel) <= bandwidth <= hi * (1 + rel):
            out.append(
                f"the chirp bandwidth {bandwidth / 1e6:.6g} MHz lies outside the trained {lo / 1e6:.6g}..{hi / 1e6:.6g} MHz"
            )
        return out


@dataclass
class WeightsBundle:
    """A loaded weights folder: its config fields and tensors (numpy, by parameter name)."""

    path: Path
    model: str
    architecture: dict[str, Any]
    input_transform: str
    tile: list[int] | None
    valid_for: ValidFor
    tensors: dict[str, np.ndarray]
    training: dict[str, Any] = field(default_factory=dict)

    def check_applies(self, ctx: Any, *, weights: str, strict: bool) -> None:
        """Refuse (``strict``) or warn when the weights were not made for ``ctx``'s STFT, sampling rate or chirp
        band (a :class:`sarpipe.rfi.methods.MethodContext`); ``weights`` names them in the message."""
        # under --sr the method runs on the SR wrapper's coarse grid, judged by the full-grid STFT it restores
        stft = (getattr(ctx, "extra", None) or {}).get("sr_full_stft", ctx.stft)
        problems = self.valid_for.problems(stft.as_dict(), ctx.fs, ctx.radar_band)
        if not problems:
            return
        text = f"the weights in {weights} do not apply here: " + "; ".join(problems)
        if strict:
            raise InputError(text + " (--param strict=false applies them anyway)", where="--param weights")
        import warnings

        warnings.warn(text, RuntimeWarning, stacklevel=3)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_weights(
    folder: str | os.PathLike,
    *,
    model: str,
    architecture: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    valid_for: ValidFor,
    input_transform: str,
    card: str,
    tile: list[int] | None = None,
    training: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a weights folder atomically (nothing that looks finished is left by a failure). Returns its path."""
    from ..atomic import atomic_path

    final = Path(folder)
    if final.exists() and not overwrite:
        raise InputError(f"{final} exists (pass overwrite to replace it)", where=os.fspath(final))
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.mkdir(parents=True)
        write_tensors(tmp / WEIGHTS_FILE, dict(state_dict), {"format": WEIGHTS_FORMAT, "model": model})
        config = {
            "format": WEIGHTS_FORMAT,
            "model": model,
            "architecture": dict(architecture),
            "input_transform": input_transform,
            "tile": list(tile) if tile is not None else None,
            "valid_for": valid_for.as_dict(),
            "weights_sha256": _sha256(tmp / WEIGHTS_FILE),
            "training": dict(training or {}),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / CARD_FILE).write_text(card)
    return final


def load_weights(
    folder: str | os.PathLike, *, model: str, input_transform: str, where: str = "--param weights"
) -> WeightsBundle:
    """Read and check a weights folder made for ``model`` with ``input_transform``; every problem is an
    :class:`InputError` naming the file (``where`` names the option that gave the folder)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"no weights folder {root}", where=where)
    cfg_path, w_path = root / CONFIG_FILE, root / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise InputError(f"the weights folder lacks {p.name} ({p})", where=where)
    try:
        cfg = json.loads(cfg_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{cfg_path} is not valid JSON ({exc})", where=os.fspath(cfg_path)) from exc
    if not isinstance(cfg, dict) or cfg.get("format") != WEIGHTS_FORMAT:
        raise InputError(f"{cfg_path} is not a {WEIGHTS_FORMAT} config", where=os.fspath(cfg_path))
    if cfg.get("model") != model:
        raise InputError(
            f"{root} holds weights of model {cfg.get('model')!r}, not {model!r}", where=os.fspath(cfg_path)
        )
    if cfg.get("input_transform") != input_transform:
        raise InputError(
            f"{root} was trained on input transform {cfg.get('input_transform')!r}, this code makes "
            f"{input_transform!r}",
            where=os.fspath(cfg_path),
        )
    try:
        valid = ValidFor.from_dict(cfg["valid_for"])
        arch = dict(cfg["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{cfg_path}: missing or bad entry ({exc})", where=os.fspath(cfg_path)) from exc
    tensors, _meta = read_tensors(w_path, where=os.fspath(w_path))
    digest = cfg.get("weights_sha256")
    if digest and digest != _sha256(w_path):
        raise InputError(
            f"{w_path} does not match the hash in {cfg_path.name} (changed or damaged)", where=os.fspath(w_path)
        )
    tile = cfg.get("tile")
    return WeightsBundle(
        path=root,
        model=model,
        architecture=arch,
        input_transform=input_transform,
        tile=list(tile) if tile else None,
        valid_for=valid,
        tensors=tensors,
        training=dict(cfg.get("training") or {}),
    )


def open_training_folder(out: Path, recipe: dict[str, Any], overwrite: bool, what: str) -> dict[str, Any] | None:
    """The ``training`` record of the finished run of ``recipe`` in the training folder ``out``; or None, once the
    folder is ready for a new run (created, ``train_config.json`` = ``recipe`` written): when it was new or empty,
    or held the same recipe stopped before its weights were written.

    ``out/train_config.json`` holds the recipe a run was started with and ``out/weights`` its weights folder. A
    folder holding something else (no ``what`` training run, or a run of another recipe) is refused with an
    :class:`InputError` naming ``--output``, or emptied when ``overwrite``."""
    done = _finished_training(out, recipe, overwrite, what)
    if done is None:
        from ..atomic import atomic_path

        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "train_config.json", overwrite=True) as tmp:  # the folder is this run's own now
            tmp.write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return done


def _finished_training(out: Path, recipe: dict[str, Any], overwrite: bool, what: str) -> dict[str, Any] | None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder", where="--output")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    cfg_file, weights_cfg = out / "train_config.json", out / "weights" / CONFIG_FILE
    try:
        earlier = json.loads(cfg_file.read_text()) if cfg_file.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    if earlier is None:
        problem = f"{out} is not empty and holds no {what} training run; give a new or empty folder"
    elif earlier != recipe:
        problem = f"{out} holds a run of another recipe ({cfg_file}); give a new output folder"
    elif weights_cfg.is_file():
        return dict(json.loads(weights_cfg.read_text()).get("training", {}))
    else:
        return None
    if not overwrite:
        raise InputError(problem + " (or pass --overwrite to replace it)", where="--output")
    import shutil

    shutil.rmtree(out)
    return None


def load_network(
    weights: str | os.PathLike | None,
    shipped: Path,
    *,
    model: str,
    input_transform: str,
    build: Any,
    missing: str,
    where: str = "--param weights",
    check: Any = None,
) -> tuple[Any, WeightsBundle, Path]:
    """A learned method's network from the weights folder ``weights`` (None: the ``shipped`` one).

    ``build(**architecture)`` makes the torch module, ``check(net, config_path)`` (optional) refuses an architecture
    the method cannot use, then the tensors are loaded. Returns ``(net, bundle, folder)``. Every problem is an
    :class:`InputError`: ``missing`` when nothing is shipped, the file otherwise (``where`` names the option)."""
    path = shipped if weights is None else Path(str(weights)).expanduser()
    if weights is None and not (path / CONFIG_FILE).is_file():
        raise InputError(missing, where=where)
    bundle = load_weights(path, model=model, input_transform=input_transform, where=where)
    cfg_path = path / CONFIG_FILE
    try:
        net = build(**bundle.architecture)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad architecture in {cfg_path}: {exc}", where=str(cfg_path)) from exc
    if check is not None:
        check(net, cfg_path)
    load_state(net, bundle)
    return net, bundle, path


def load_state(module: Any, bundle: WeightsBundle) -> None:
    """Copy the bundle's tensors into a torch module; missing, extra or reshaped parameters are an InputError."""
    import torch

    own = module.state_dict()
    missing = sorted(set(own) - set(bundle.tensors))
    extra = sorted(set(bundle.tensors) - set(own))
    shapes = [
        f"{k}: {list(bundle.tensors[k].shape)} vs {list(own[k].shape)}"
        for k in sorted(set(own) & set(bundle.tensors))
        if tuple(bundle.tensors[k].shape) != tuple(own[k].shape)
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"unexpected {len(extra)} (e.g. {', '.join(extra[:3])})")
        if shapes:
            parts.append(f"other shapes ({'; '.join(shapes[:3])})")
        w = bundle.path / WEIGHTS_FILE
        raise InputError(
            f"{w} does not fit the {bundle.model} architecture {bundle.architecture}: {', '.join(parts)}",
            where=os.fspath(w),
        )
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bundle.tensors.items()})
