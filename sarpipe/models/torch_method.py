"""The base of every learned time-frequency cleanup method: device, batching, tiling, inference settings.

Model input (transform ``"log1p-median-std/1"``, :func:`spectrogram_to_input`), per spectrogram ``S`` of shape
``(n_freq, n_frames)``:

1. ``a = |S|`` (magnitude; the phase is not used);
2. ``m`` = median of ``a`` over all bins of that spectrogram (its clutter/noise floor; the mean where the median
   is 0, 1 where both are);
3. ``v = ln(1 + a / m)`` (log compression relative to the floor, so a gain applied to the pulse changes nothing);
4. ``z = (v - mean(v)) / (std(v) + 1e-6)``, mean and standard deviation over the whole spectrogram.

The transform is applied to the whole spectrogram before it is cut into tiles, so every tile sees the same
normalisation as the untiled input. Output: a mask in ``[0, 1]`` (1 = RFI) of the input's shape.

Tiling: a spectrogram larger than ``tile`` is covered by tiles overlapping by ``overlap`` bins; each prediction
is weighted by a window that rises as ``sin^2`` across the overlap (1 elsewhere, and 1 at the spectrogram's own
edges) and the weighted sum is divided by the summed weights. An axis shorter than the tile is padded by
reflection and the prediction cropped back.

Quiet tiles (``skip_quiet=q``, off by default): a tile none of whose bins reaches ``q`` times its spectrogram's
median magnitude is not run through the model; its prediction is 0. Because the blend is a convex combination,
the mask then differs from the full tiling by at most the largest value the model would have predicted in a
skipped tile (measured in ``docs/models/difnet.md``; for complex Gaussian noise alone the largest of 16,384 bins
exceeds ``3.74`` x the median with probability 1/2).

Pulse packing (``pack_gap=g``, off by default): when every spectrogram fits one tile (short pulses), the
spectrograms are laid side by side along frames in *rows*, each in a slot of ``w + g`` frames rounded up to a
multiple of :meth:`TorchMethod.pack_align` (the pulse, then its own frames reflected into the gap), as many slots
per row as :meth:`TorchMethod.pack_row_frames` holds; the rows run through the model and each pulse's frames are
cut back out (:func:`pack_pulses`, :func:`unpack_pulses`). A one-tile pulse otherwise costs a whole tile of
reflected padding (65 frames in a 128-frame DIFNet tile). Packing changes the mask wherever the model sees past
a slot's edge into the neighbouring pulse, so it is an approximation whose size depends on the net (measured in
``docs/models/difnet.md``); spectrograms longer than one tile, a lone one, one slot per row or a slot as wide as
the tile (no padding to save) run exactly as without it.

Precision: ``amp`` runs the model under ``torch.autocast`` in bfloat16 (float16 on CUDA without bf16) on CUDA,
and on a CPU with native bfloat16 instructions (AMX or AVX-512 BF16; elsewhere bf16 is emulated and slower, so
float32 is used). On the CPU the model and its inputs are in channels-last layout.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError
from ..rfi.methods import CleanupMethod, MethodContext, MethodOutput

__all__ = [
    "INPUT_TRANSFORM",
    "TorchMethod",
    "amp_autocast",
    "blend_window",
    "cpu_has_native_bf16",
    "pack_pulses",
    "quiet_tiles",
    "resolve_device",
    "spectrogram_to_input",
    "tile_starts",
    "unpack_pulses",
]

#: Name of the model-input transform above; weights record it and refuse another.
INPUT_TRANSFORM = "log1p-median-std/1"


def spectrogram_to_input(spec: np.ndarray) -> np.ndarray:
    """``(n, n_freq, n_frames)`` complex (or magnitude) spectrograms -> float32 model input (module docstring)."""
    a = np.abs(np.asarray(spec)).astype(np.float32, copy=False)
    one = a.ndim == 2
    if one:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"spectrograms must be (n, n_freq, n_frames), got shape {a.shape}")
    flat = a.reshape(a.shape[0], -1)
    m = np.median(flat, axis=1)
    mean = flat.mean(axis=1)
    m = np.where(m > 0, m, np.where(mean > 0, mean, 1.0)).astype(np.float32)
    v = np.log1p(a / m[:, None, None])
    mu = v.reshape(v.shape[0], -1).mean(axis=1)
    sd = v.reshape(v.shape[0], -1).std(axis=1)
    z = ((v - mu[:, None, None]) / (sd[:, None, None] + 1e-6)).astype(np.float32)
    return z[0] if one else z


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``n`` inside the block (None or 0: left as they are), restored after it."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(device: str) -> Any:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> ``torch.device``.

    A CUDA device that is not there is an :class:`InputError` naming ``--param device``.
    """
    import torch

    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device!r} asked for, but no CUDA GPU is available here (use device=auto or cpu)",
                where="--param device",
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here", where="--param device"
            )
        return dev
    raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N", where="--param device")


def _pair(value: Any, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        out = (int(value[0]), int(value[1]))
    else:
        raise InputError(
            f"{name} must be an integer or a [freq, frames] pair of integers, got {value!r}", where=f"--param {name}"
        )
    if min(out) < (1 if name == "tile" else 0):
        raise InputError(f"{name} must be positive, got {value!r}", where=f"--param {name}")
    return out


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of length ``tile`` covering ``n`` samples with at least ``overlap`` shared."""
    if n <= tile:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, n - tile, step))
    starts.append(n - tile)
    return sorted(set(starts))


def blend_window(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D tile weight: ``sin^2`` ramps (strictly positive) over ``overlap`` samples at inner tile edges."""
    w = np.ones(tile, dtype=np.float64)
    o = min(overlap, tile // 2)
    if o > 0:
        ramp = np.sin(0.5 * np.pi * np.arange(1, o + 1) / (o + 1)) ** 2
        if not first:
            w[:o] = ramp
        if not last:
            w[tile - o :] = ramp[::-1]
    return w


def pack_slot(n_frames: int, gap: int, align: int) -> int:
    """Frames one packed pulse of ``n_frames`` occupies: ``n_frames + gap`` rounded up to a multiple of ``align``."""
    a = max(int(align), 1)
    return -(-(int(n_frames) + int(gap)) // a) * a


def pack_pulses(z: np.ndarray, slot: int, per_row: int) -> np.ndarray:
    """``(n, H, w)`` -> ``(ceil(n / per_row), H, per_row * slot)``: pulse ``i`` in row ``i // per_row`` at frame
    ``(i % per_row) * slot``, followed by its own frames reflected over the rest of its slot; the slots of a last,
    incomplete row are 0 (the model input's mean)."""
    z = np.asarray(z)
    n, h, w = z.shape
    if slot < w or per_row < 1:
        raise ValueError(f"a slot of {slot} frames cannot hold a {w}-frame pulse (per_row {per_row})")
    padded = np.pad(z, ((0, 0), (0, 0), (0, slot - w)), mode="reflect" if w > 1 else "edge")
    rows = -(-n // per_row)
    full = np.zeros((rows * per_row, h, slot), z.dtype)
    full[:n] = padded
    return full.reshape(rows, per_row, h, slot).transpose(0, 2, 1, 3).reshape(rows, h, per_row * slot)


def unpack_pulses(rows: np.ndarray, n: int, n_frames: int, slot: int, per_row: int) -> np.ndarray:
    """Inverse of :func:`pack_pulses`: the ``n`` pulses' first ``n_frames`` frames, ``(n, H, n_frames)``."""
    r = np.asarray(rows)
    nr, h, _ = r.shape
    slots = r[..., : per_row * slot].reshape(nr, h, per_row, slot).transpose(0, 2, 1, 3).reshape(nr * per_row, h, slot)
    return slots[:n, :, :n_frames]


def amp_autocast(device: Any, amp: bool) -> Any:
    """The context ``amp`` runs a model in on ``device`` (module docstring, Precision): autocast to bfloat16 on CUDA
    (float16 where it has no bf16) and on CPUs with native bf16; elsewhere, or with ``amp`` False, float32."""
    import torch

    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if amp and device.type == "cpu" and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU executes bfloat16 matrix products natively (``amx_bf16`` or ``avx512_bf16`` flags)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def quiet_tiles(peak_ratio: np.ndarray, threshold: float | None) -> np.ndarray:
    """Bool per tile: True where the tile's peak magnitude over its spectrogram's median is below ``threshold``
    (None: no tile is quiet)."""
    r = np.asarray(peak_ratio, dtype=np.float64)
    if threshold is None:
        return np.zeros(r.shape, bool)
    return r < float(threshold)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )


def _available_memory(device: Any) -> int:
    """Bytes free for activations on ``device`` (CUDA: free memory; CPU: MemAvailable, else 2 GiB)."""
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 << 30


class TorchMethod(CleanupMethod):
    """A time-frequency cleanup method backed by a torch model that maps ``(B, 1, H, W)`` inputs (the transform
    of the module docstring) to ``(B, 1, H, W)`` masks in ``[0, 1]``.

    Subclasses build the model and hand it to :meth:`set_model`; they may override :meth:`check_context` (refuse
    an STFT or sensor the weights were not made for) and :meth:`bytes_per_sample` (activation memory estimate).

    Parameters: ``device`` (auto | cpu | cuda | cuda:N); ``batch_size`` (tiles per forward pass; None = chosen from
    the free memory); ``tile`` (``[n_freq, n_frames]`` or one integer; None or ``"whole"`` = whole spectrograms, a subclass may
    give None a default);
    ``overlap`` (bins shared by neighbouring tiles; None = a quarter of the tile); ``compile`` (``torch.compile``
    the model on first use); ``amp`` (autocast to bfloat16: CUDA, and CPUs with native bf16; module docstring);
    ``skip_quiet`` (None, or the peak-to-median magnitude ratio below which a tile is not run; module docstring);
    ``pack_gap`` (None = off, or the frames of gap between short pulses packed side by side; module docstring).
    """

    domain = "tf"

    def __init__(
        self,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        tile: Any = None,
        overlap: Any = None,
        compile: bool = False,
        amp: bool = True,
        skip_quiet: float | None = None,
        pack_gap: int | None = None,
    ):
        if batch_size is not None and (
            not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}", where="--param batch_size")
        self.device = str(device)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.tile: Any = "whole" if tile == "whole" else (list(_pair(tile, "tile")) if tile is not None else None)
        self.overlap = list(_pair(overlap, "overlap")) if overlap is not None else None
        self.compile = bool(compile)
        self.amp = bool(amp)
        if skip_quiet is not None and (
            isinstance(skip_quiet, bool) or not isinstance(skip_quiet, (int, float)) or not skip_quiet > 0
        ):
            raise InputError(
                f"skip_quiet must be a positive peak-to-median ratio or None, got {skip_quiet!r}",
                where="--param skip_quiet",
            )
        self.skip_quiet = None if skip_quiet is None else float(skip_quiet)
        if pack_gap is not None and (
            isinstance(pack_gap, bool) or not isinstance(pack_gap, (int, np.integer)) or pack_gap < 0
        ):
            raise InputError(
                f"pack_gap must be a whole number of frames >= 0 (or None: no packing), got {pack_gap!r}",
                where="--param pack_gap",
            )
        self.pack_gap = None if pack_gap is None else int(pack_gap)
        self._device = resolve_device(device)
        self._model: Any = None
        self._runner: Any = None
        #: tiles per forward pass actually used by the last call (smaller than asked after running out of memory)
        self._last_batch: int | None = None
        #: (tiles run, tiles skipped as quiet) by the last :meth:`predict`; packed: (rows run, pulses skipped)
        self._last_tiles: tuple[int, int] = (0, 0)

    # ------------------------------------------------------------------ hooks
    def set_model(self, model: Any) -> None:
        """Install the torch module (moved to the device, in eval mode; channels-last on the CPU)."""
        model = model.to(self._device).eval()
        if self._device.type == "cpu":
            import torch

            model = model.to(memory_format=torch.channels_last)
        self._model = model
        self._runner = None

    def check_context(self, ctx: MethodContext) -> None:
        """Raise :class:`InputError` when the model must not be applied to this batch's STFT or sensor."""

    def bytes_per_sample(self, height: int, width: int) -> int:
        """Rough activation memory [bytes] of one ``height x width`` input in a forward pass."""
        return 4 * height * width * 256

    def pack_align(self, tile_frames: int) -> int:
        """Packed pulses start on multiples of this many frames (1: anywhere)."""
        return 1

    def pack_row_frames(self, tile_frames: int) -> int:
        """Frames of one packed row given to the model; rows shorter than the tile are padded to it. The default,
        one tile, suits any net whose output depends on the input's width; a net that is local along frames may
        take longer rows (fewer, wider model calls)."""
        return tile_frames

    # ------------------------------------------------------------------ inference
    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        self.check_context(ctx)
        spec = np.asarray(x)
        if spec.ndim != 3:
            raise ValueError(f"{self.name}: expected (n_pulses, n_freq, n_frames) spectrograms, got shape {spec.shape}")
        if spec.shape[0] == 0:
            return MethodOutput("mask", np.zeros(spec.shape, np.float32))
        ratio = None
        if self.skip_quiet is not None:
            a = np.abs(spec)
            m = np.median(a.reshape(a.shape[0], -1), axis=1)
            ratio = a / np.where(m > 0, m, 1.0)[:, None, None]
        return MethodOutput("mask", self.predict(spectrogram_to_input(spec), peak_ratio=ratio))

    def _forward_fn(self) -> Any:
        if self._model is None:
            raise RuntimeError(f"{self.name}: no model installed (set_model)")
        if self._runner is None:
            self._runner = self._model
            if self.compile:
                import torch

                try:
                    self._runner = torch.compile(self._model)
                except Exception as exc:  # noqa: BLE001 - compile is an optimisation; eager gives the same numbers
                    warnings.warn(
                        f"{self.name}: torch.compile failed ({exc}); running eagerly", RuntimeWarning, stacklevel=2
                    )
                    self._runner = self._model
        return self._runner

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        import torch

        fn = self._forward_fn()
        t = torch.from_numpy(np.ascontiguousarray(batch[:, None])).to(self._device)
        if self._device.type == "cpu":
            t = t.contiguous(memory_format=torch.channels_last)
        try:
            y = self._forward(fn, t)
        except Exception as exc:
            if fn is self._model or _is_out_of_memory(exc):
                raise
            # torch.compile fails lazily, on the first call; eager gives the same numbers
            warnings.warn(
                f"{self.name}: the compiled model failed ({exc}); running eagerly", RuntimeWarning, stacklevel=2
            )
            self._runner = self._model
            y = self._forward(self._model, t)
        return y[:, 0].float().cpu().numpy()

    def _forward(self, fn: Any, t: Any) -> Any:
        import torch

        with torch.inference_mode():
            with amp_autocast(self._device, self.amp):
                return fn(t)

    def _batch_limit(self, height: int, width: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        budget = 0.25 * _available_memory(self._device)
        return int(max(1, min(64, budget // max(self.bytes_per_sample(height, width), 1))))

    def _run_all(self, tiles: np.ndarray) -> np.ndarray:
        """Run the model over ``(n, h, w)`` tiles in batches; halve the batch on running out of memory."""
        bs = min(self._batch_limit(tiles.shape[1], tiles.shape[2]), tiles.shape[0])
        out = np.empty(tiles.shape, np.float32)
        lo = 0
        while lo < tiles.shape[0]:
            hi = min(lo + bs, tiles.shape[0])
            try:
                out[lo:hi] = self._run_batch(tiles[lo:hi])
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                if self._device.type == "cuda":
                    import torch

                    torch.cuda.empty_cache()
                if bs == 1:
                    raise InputError(
                        f"one {tiles.shape[1]} x {tiles.shape[2]} input does not fit in memory on {self._device}; "
                        f"give a smaller tile (--param tile=...)",
                        where="--param tile",
                    ) from exc
                bs = max(1, bs // 2)
                continue
            lo = hi
        self._last_batch = bs
        return out

    def predict(self, inputs: np.ndarray, peak_ratio: np.ndarray | None = None) -> np.ndarray:
        """Masks for model inputs ``(n, H, W)`` float32 (already transformed), tiled and blended as configured.

        ``peak_ratio``: ``|S| / median |S|`` per bin, same shape (only with ``skip_quiet``): tiles below the
        threshold everywhere are not run and predict 0."""
        z = np.asarray(inputs, dtype=np.float32)
        n, h, w = z.shape
        if self.tile is None or self.tile == "whole":
            th, tw, ov = h, w, [0, 0]
        else:
            th, tw = self.tile
            ov = self.overlap or [th // 4, tw // 4]
        ph, pw = max(th - h, 0), max(tw - w, 0)
        if ph or pw:
            mode = "reflect" if min(h, w) > 1 else "edge"
            z = np.pad(z, ((0, 0), (0, ph), (0, pw)), mode=mode)
        hp, wp = z.shape[1:]
        ys, xs = tile_starts(hp, th, ov[0]), tile_starts(wp, tw, ov[1])
        if len(ys) == len(xs) == 1 and self.pack_gap is not None and self.tile not in (None, "whole"):
            packed = self._predict_packed(z[:, :, :w], peak_ratio)
            if packed is not None:
                return packed[:, :h]
        if len(ys) == len(xs) == 1 and peak_ratio is None:
            self._last_tiles = (n, 0)
            return self._run_all(z)[:, :h, :w]
        wy = {y: blend_window(th, ov[0], y == ys[0], y == ys[-1]) for y in ys}
        wx = {x: blend_window(tw, ov[1], x == xs[0], x == xs[-1]) for x in xs}
        weight = np.zeros((hp, wp))
        for y in ys:
            for x in xs:
                weight[y : y + th, x : x + tw] += np.outer(wy[y], wx[x])
        places = [(i, y, x) for i in range(n) for y in ys for x in xs]
        if peak_ratio is not None and self.skip_quiet is not None:
            r = np.asarray(peak_ratio)
            # padded bins copy real ones, so a tile's peak is the peak of its unpadded part
            peaks = np.array([r[i, y : min(y + th, h), x : min(x + tw, w)].max() for i, y, x in places])
            loud = ~quiet_tiles(peaks, self.skip_quiet)
            places = [pl for pl, keep in zip(places, loud) if keep]
            self._last_tiles = (len(places), int(loud.size - len(places)))
        else:
            self._last_tiles = (len(places), 0)
        acc = np.zeros((n, hp, wp))
        chunk = 1024  # tiles per host copy
        for lo in range(0, len(places), chunk):
            part = places[lo : lo + chunk]
            tiles = np.stack([z[i, y : y + th, x : x + tw] for i, y, x in part])
            pred = self._run_all(tiles)
            for (i, y, x), p in zip(part, pred):
                acc[i, y : y + th, x : x + tw] += p * np.outer(wy[y], wx[x])
        out = (acc / weight)[:, :h, :w]
        return out.astype(np.float32)

    def _predict_packed(self, z: np.ndarray, peak_ratio: np.ndarray | None) -> np.ndarray | None:
        """Masks of one-tile spectrograms ``(n, th, w)`` (padded to the tile's height, not its width) packed
        side by side (module docstring); None where there is nothing to gain (one pulse, one slot per row, or a slot
        as wide as the tile)."""
        n, th, w = z.shape
        tw = self.tile[1]
        slot = pack_slot(w, self.pack_gap, self.pack_align(tw))
        per_row = self.pack_row_frames(tw) // slot
        if per_row < 2 or n < 2 or slot >= tw:  # (a slot as wide as the tile saves no padding)
            return None
        out = np.zeros(z.shape, np.float32)
        run = np.arange(n)
        if peak_ratio is not None and self.skip_quiet is not None:
            peaks = np.asarray(peak_ratio).reshape(n, -1).max(axis=1)
            run = run[~quiet_tiles(peaks, self.skip_quiet)]
        n_rows = -(-run.size // per_row)
        if run.size:
            per_row = -(-run.size // n_rows)  # the same count in every row: no nearly empty last row
            rows = pack_pulses(z[run], slot, per_row)
            if rows.shape[-1] < tw:
                rows = np.pad(rows, ((0, 0), (0, 0), (0, tw - rows.shape[-1])), mode="reflect")
            out[run] = unpack_pulses(self._run_all(rows), run.size, w, slot, per_row)
        self._last_tiles = (n_rows, int(n - run.size))
        return out

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
