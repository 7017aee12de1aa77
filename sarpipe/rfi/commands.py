"""The RFI chain on Zarr stores, for ``sarpipe rfi clean`` and ``sarpipe rfi detect``.

Scenes are processed in memory (echo and image of the whole scene); outputs are written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import InputError

__all__ = ["parse_params", "clean_store", "detect_store", "detection_summary"]


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``["pfa=1e-3", "window_bins=63"]`` -> ``{"pfa": 0.001, "window_bins": 63}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, got {item!r}", where="--param")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise InputError(f"cannot read the value of {key!r}: {exc}", where="--param") from exc
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 as text
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def _open(raw_path: str | os.PathLike, slc_path: str | os.PathLike | None):
    from ..model import load_dataset

    raw = load_dataset(raw_path, "raw")
    slc = load_dataset(slc_path, "slc") if slc_path is not None else None
    if slc is not None and slc["slc"].shape != raw["echo"].shape:
        raise InputError(f"the image is {slc['slc'].shape}, the echo {raw['echo'].shape}", where=os.fspath(slc_path))
    return raw, slc


def _runs(flags: np.ndarray) -> list[list[int]]:
    from .clean import pulse_runs

    return [[a, b] for a, b in pulse_runs(flags)]


def detection_summary(det) -> dict[str, Any]:
    """Plain-JSON summary of an :class:`~sarpipe.rfi.clean.RFIDetection`."""
    g = det.mapping.geometry
    return {
        "rfi_pulses": _runs(det.rfi_pulses),
        "n_rfi_pulses": int(np.count_nonzero(det.rfi_pulses)),
        "candidate_pulses": _runs(det.mapping.candidates),
        "image_lines": _runs(det.image.lines),
        "n_image_lines": int(np.count_nonzero(det.image.lines)),
        "image_mask_fraction": float(np.mean(det.rfi_image_mask)),
        "aperture_pulses": g.length_pulses,
        "beam_centre_shift_pulses": g.shift_pulses,
        "aperture_source": g.source,
        "line_threshold_z": det.image.threshold,
        "max_line_z": float(np.nanmax(det.image.z)) if np.isfinite(det.image.z).any() else None,
    }


def detect_store(raw_path: str | os.PathLike, slc_path: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Detect RFI in a raw store (focused here unless ``slc_path``); returns the summary, also written as JSON."""
    from ..atomic import atomic_path
    from .clean import detect

    raw, slc = _open(raw_path, slc_path)
    summary = detection_summary(detect(raw, slc))
    if json_path is not None:
        with atomic_path(json_path) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def clean_store(raw_path: str | os.PathLike, out_path: str | os.PathLike, *, method: str = "notch",
                params: dict[str, Any] | None = None, sr: float | None = None,
                slc_path: str | os.PathLike | None = None, image_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run the chain on a raw store and write the cleaned raw store (``echo``, ``rfi_pulses``, ``rfi_image_mask``);
    with ``image_path`` also the re-focused image. Returns the detection summary."""
    from ..model import save_dataset
    from .clean import clean, detect
    from .methods import create_method, wrap_sr

    method = create_method(method, **dict(params or {}))  # bad method, parameters or --sr fail before any work
    if sr is not None:
        method = wrap_sr(method, sr)
    raw, slc = _open(raw_path, slc_path)
    det = detect(raw, slc)
    result = clean(raw, method, detection=det)
    out = result.raw
    out.attrs["history"][-1]["params"]["sr"] = sr
    save_dataset(out, out_path)
    if image_path is not None:
        from ..focus import focus

        save_dataset(focus(out), image_path)
    return detection_summary(det)
