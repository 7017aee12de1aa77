"""Sentinel-1 Level-0 decode speed: sarpipe's numba decoders against sentinel1decoder (Rust), same run, same data.

The file: the three real packets of ``shared/data/s1_l0_packets`` (FDBAQ echo, BAQ5 noise, bypass calibration)
repeated ``--repeat`` times each, in blocks of one kind. Both decoders get the packets grouped by BAQ mode and quad
count, as sentinel1decoder wants them; the decode call is timed (best of ``--runs``), the index + header pass of
sarpipe separately. Outputs are checked bit for bit against each other and against ESA's reference samples.

    PYTHONPATH=. SARPIPE_SHARED_DATA=/work/shared/data python benchmarks/s1_decode.py [--repeat 2000] [--runs 5]

Reports packets/s, Msamples/s (complex samples), the speed ratio, cycles per complex sample (threads x clock / rate,
the clock read from /proc/cpuinfo), and the machine's limit measured in the same run: the *memory floor*, a parallel
kernel that only reads every user data byte and writes every output float of a fresh array once
(``sarpipe_over_memory_floor``; ``peer_over_memory_floor`` bounds the speed-up any decoder can reach over the peer). The two decoders are timed alternately, best of
``--runs`` each, so both see the same load on a shared machine. Threads: ``NUMBA_NUM_THREADS`` for sarpipe,
``RAYON_NUM_THREADS`` for sentinel1decoder (set both to compare like with like).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "s1_l0_packets"
KINDS = {"fdbaq": "000408-echo", "baq5": "000000-noise", "bypass": "000008-txcal"}


def _clock_hz() -> float | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return None


def _best(fn, runs: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _memory_floor(stream, starts, ends, n_floats):
    """Seconds of the least any decoder of these packets must do: read every user data byte once and write every
    output float once into a fresh array (page faults included), in parallel over packets like the decoders."""
    import numba

    @numba.njit(parallel=True, cache=True)
    def touch(buf, starts, ends, out):
        for k in numba.prange(starts.size):
            acc = np.uint8(0)
            for i in range(starts[k], ends[k]):
                acc ^= buf[i]
            row = out[k]
            for i in range(row.size):
                row[i] = acc

    def run():
        out = np.empty((starts.size, n_floats), np.float32)
        touch(stream, starts, ends, out)
        return out

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000, help="copies of each packet")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = ap.parse_args()

    import numba

    from sarpipe.io.s1_packets import USER_DATA_OFFSET, decode_headers, index_packets
    from sarpipe.io.s1_user_data import decode_user_data

    try:
        from sentinel1decoder import _sentinel1decoder as s1d  # GPL: benchmark peer only
    except ImportError:  # pragma: no cover
        s1d = None
    threads = numba.get_num_threads()
    clock = _clock_hz()
    stream = np.concatenate([np.fromfile(DATA / f"{name}.dat", np.uint8) for name in KINDS.values()
                             for _ in range(args.repeat)])  # fmt: skip
    # warm up (numba compiles or loads its cache)
    o, l_, _ = index_packets(stream[:200_000])
    h = decode_headers(stream, o)
    decode_user_data(stream, o + USER_DATA_OFFSET, o + l_, h["number_of_quads"], h["baq_mode"])

    t_index, (offsets, lengths, problems) = _best(lambda: index_packets(stream), args.runs)
    t_headers, h = _best(lambda: decode_headers(stream, offsets), args.runs)
    assert not problems.any()
    results: dict[str, object] = {
        "packets": int(offsets.size),
        "file_mb": stream.size / 1e6,
        "threads": threads,
        "clock_ghz": clock / 1e9 if clock else None,
        "index_s": t_index,
        "headers_s": t_headers,
        "index_headers_packets_per_s": offsets.size / (t_index + t_headers),
        "modes": {},
    }
    for kind, name in KINDS.items():
        ref = np.load(DATA / f"{name}.decoded.npy")
        mode = {"fdbaq": 12, "baq5": 5, "bypass": 0}[kind]
        sel = np.flatnonzero(h["baq_mode"] == mode)
        nq = int(h["number_of_quads"][sel[0]])
        starts, ends = offsets[sel] + USER_DATA_OFFSET, offsets[sel] + lengths[sel]
        ours_call = functools.partial(
            decode_user_data, stream, starts, ends, h["number_of_quads"][sel], h["baq_mode"][sel]
        )
        t_ours, (ours, status) = _best(ours_call, 1)
        assert not status.any()
        floor_call = _memory_floor(stream, starts, ends, 4 * nq)
        floor_call()  # compile
        t_floor = _best(floor_call, 1)[0]
        n_samples = sel.size * 2 * nq
        row: dict[str, object] = {
            "packets": int(sel.size),
            "quads": nq,
            "equal_to_esa_reference": bool(np.array_equal(ours[0], ref) and np.array_equal(ours[-1], ref)),
        }
        peer_call = None
        if s1d is not None:
            payloads = [stream[a:b].tobytes() for a, b in zip(starts, ends)]
            if kind == "fdbaq":
                peer_call = functools.partial(s1d.decode_batched_fdbaq_packets, payloads, nq)
            elif kind == "bypass":
                peer_call = functools.partial(s1d.decode_batched_bypass_packets, payloads, nq)
            else:
                peer_call = functools.partial(s1d.decode_batched_baq_packets, payloads, nq, 5)
            t_peer, theirs = _best(peer_call, 1)
            theirs = np.asarray(theirs)
            row.update(
                bit_exact_vs_sentinel1decoder=bool(np.array_equal(theirs, ours)),
                max_abs_diff_vs_sentinel1decoder=float(np.abs(theirs - ours).max()),
            )
            del theirs
        for _ in range(args.runs - 1):  # interleaved, so all three see the same load on a shared machine
            t_ours = min(t_ours, _best(ours_call, 1)[0])
            t_floor = min(t_floor, _best(floor_call, 1)[0])
            if peer_call is not None:
                t_peer = min(t_peer, _best(peer_call, 1)[0])
        row.update(
            sarpipe_s=t_ours,
            sarpipe_packets_per_s=sel.size / t_ours,
            sarpipe_msamples_per_s=n_samples / t_ours / 1e6,
            memory_floor_s=t_floor,
            sarpipe_over_memory_floor=t_ours / t_floor,
        )
        if clock:
            row["sarpipe_cycles_per_sample"] = threads * clock * t_ours / n_samples
            row["memory_floor_cycles_per_sample"] = threads * clock * t_floor / n_samples
        if peer_call is not None:
            row.update(
                sentinel1decoder_s=t_peer,
                sentinel1decoder_msamples_per_s=n_samples / t_peer / 1e6,
                speedup=t_peer / t_ours,
                peer_over_memory_floor=t_peer / t_floor,
            )
        results["modes"][kind] = row  # type: ignore[index]
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
