"""numba kernels of the range-Doppler algorithm. Small and pure; plain-numpy references live in the tests.

All kernels release the GIL (Dask threads run them side by side) and cache their compilation. The RCMC
interpolator evaluates the windowed-sinc weights from per-tap polynomials in the fractional position
(see :mod:`.rcmc`), which lets the tap sums run as SIMD loops over consecutive output samples.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Output samples per vector chunk (accumulators stay in L1).
_CHUNK = 256
#: Largest spread of the fractional position over a chunk for second-order (Taylor) weights: the third-order
#: term, |w'''| (< 12) * (span / 2)^3 / 6, stays below 2e-8; chunks shorter than _MIN_LINEAR use the polynomial.
_LINEAR_SPAN = 4e-3
_MIN_LINEAR = 128


@numba.njit(nogil=True, cache=True)
def lag_one_correlation(block, previous_row):
    """Sum over the block of ``x[i+1, j] * conj(x[i, j])`` (complex128), including the pair
    (``previous_row``, first row) when ``previous_row`` is non-empty. Rows are pulses."""
    n_az, n_rg = block.shape
    re = 0.0
    im = 0.0
    if previous_row.shape[0] == n_rg and n_az > 0:
        for j in range(n_rg):
            a = block[0, j]
            b = previous_row[j]
            re += a.real * b.real + a.imag * b.imag
            im += a.imag * b.real - a.real * b.imag
    for i in range(n_az - 1):
        for j in range(n_rg):
            a = block[i + 1, j]
            b = block[i, j]
            re += a.real * b.real + a.imag * b.imag
            im += a.imag * b.real - a.real * b.imag
    return complex(re, im)


@numba.njit(nogil=True, cache=True)
def _phase_steps(phase_rate, range_spacing, steps_re, steps_im):
    """steps[l] = exp(1j * phase_rate * range_spacing * l), l < _CHUNK (float64 parts; a short recurrence from
    one exact step, error ~ _CHUNK * 1e-16)."""
    a = phase_rate * range_spacing
    e_re = math.cos(a)
    e_im = math.sin(a)
    re = 1.0
    im = 0.0
    for l in range(steps_re.shape[0]):
        steps_re[l] = re
        steps_im[l] = im
        re, im = re * e_re - im * e_im, re * e_im + im * e_re


@numba.njit(nogil=True, cache=True, fastmath=True)
def _interpolate_chunk(buf_re, buf_im, base, mu, m, poly, acc_re, acc_im):
    """acc[l] = sum_t w_t(mu[l]) * buf[base + l + t], l < m, with w_t(u) = sum_k poly[t, k] u^k (u = 2 frac - 1).
    Taps go in pairs so that each pass over the accumulators does twice the arithmetic."""
    for l in range(m):
        acc_re[l] = 0.0
        acc_im[l] = 0.0
    for t in range(0, poly.shape[0], 2):
        p0, p1, p2, p3, p4, p5, p6, p7, p8 = (
            poly[t, 0],
            poly[t, 1],
            poly[t, 2],
            poly[t, 3],
            poly[t, 4],
            poly[t, 5],
            poly[t, 6],
            poly[t, 7],
            poly[t, 8],
        )
        q0, q1, q2, q3, q4, q5, q6, q7, q8 = (
            poly[t + 1, 0],
            poly[t + 1, 1],
            poly[t + 1, 2],
            poly[t + 1, 3],
            poly[t + 1, 4],
            poly[t + 1, 5],
            poly[t + 1, 6],
            poly[t + 1, 7],
            poly[t + 1, 8],
        )
        ar = buf_re[base + t : base + t + m]
        ai = buf_im[base + t : base + t + m]
        br = buf_re[base + t + 1 : base + t + 1 + m]
        bi = buf_im[base + t + 1 : base + t + 1 + m]
        for l in range(m):
            u = mu[l]
            w = (((((((p8 * u + p7) * u + p6) * u + p5) * u + p4) * u + p3) * u + p2) * u + p1) * u + p0
            v = (((((((q8 * u + q7) * u + q6) * u + q5) * u + q4) * u + q3) * u + q2) * u + q1) * u + q0
            acc_re[l] += w * ar[l] + v * br[l]
            acc_im[l] += w * ai[l] + v * bi[l]


@numba.njit(nogil=True, cache=True)
def _taylor(poly, t, u):
    """Value, first and half the second derivative of tap t's weight polynomial at u."""
    w = poly[t, 8] * 1.0
    dw = 0.0
    d2w = 0.0
    for k in range(7, -1, -1):
        d2w = d2w * u + 2.0 * dw
        dw = dw * u + w
        w = w * u + poly[t, k]
    return np.float32(w), np.float32(dw), np.float32(0.5 * d2w)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _interpolate_chunk_taylor(buf_re, buf_im, base, du, m, u_centre, poly, acc_re, acc_im):
    """As :func:`_interpolate_chunk` for a chunk whose positions u = u_centre + du[l] stay within a small interval:
    each weight is its second-order Taylor expansion about u_centre (the caller bounds |du|). Taps in fours."""
    for l in range(m):
        acc_re[l] = 0.0
        acc_im[l] = 0.0
    for t in range(0, poly.shape[0], 4):
        a0, b0, c0 = _taylor(poly, t, u_centre)
        a1, b1, c1 = _taylor(poly, t + 1, u_centre)
        a2, b2, c2 = _taylor(poly, t + 2, u_centre)
        a3, b3, c3 = _taylor(poly, t + 3, u_centre)
        r0 = buf_re[base + t : base + t + m]
        i0 = buf_im[base + t : base + t + m]
        r1 = buf_re[base + t + 1 : base + t + 1 + m]
        i1 = buf_im[base + t + 1 : base + t + 1 + m]
        r2 = buf_re[base + t + 2 : base + t + 2 + m]
        i2 = buf_im[base + t + 2 : base + t + 2 + m]
        r3 = buf_re[base + t + 3 : base + t + 3 + m]
        i3 = buf_im[base + t + 3 : base + t + 3 + m]
        for l in range(m):
            d = du[l]
            w0 = a0 + d * (b0 + d * c0)
            w1 = a1 + d * (b1 + d * c1)
            w2 = a2 + d * (b2 + d * c2)
            w3 = a3 + d * (b3 + d * c3)
            acc_re[l] += (w0 * r0[l] + w1 * r1[l]) + (w2 * r2[l] + w3 * r3[l])
            acc_im[l] += (w0 * i0[l] + w1 * i1[l]) + (w2 * i2[l] + w3 * i3[l])


@numba.njit(nogil=True, cache=True, fastmath=True)
def _resample_row(
    buf_re,
    buf_im,
    out,
    first_position,
    scale_minus_one,
    range_offset,
    poly,
    apply_phase,
    phase_rate,
    range_start,
    range_spacing,
    gain,
):
    """out[j] = sum_t w_t(frac p_j) buf[floor(p_j) - T/2 + 1 + t] with
    ``p_j = first_position + j + scale_minus_one * (range_offset + j)``; when ``apply_phase`` the result is
    multiplied by ``gain * exp(1j * phase_rate * (range_start + j * range_spacing))``.

    Runs of outputs with the same ``floor(p_j) - j`` share a contiguous source window, so each run is done in
    SIMD chunks."""
    n = out.shape[0]
    half = poly.shape[0] // 2 - 1
    q0 = first_position + scale_minus_one * range_offset  # p_j - j = q0 + scale_minus_one * j
    sm = scale_minus_one
    mu = np.empty(_CHUNK, dtype=np.float32)
    acc_re = np.empty(_CHUNK, dtype=np.float32)
    acc_im = np.empty(_CHUNK, dtype=np.float32)
    steps_re = np.empty(_CHUNK, dtype=np.float64)
    steps_im = np.empty(_CHUNK, dtype=np.float64)
    if apply_phase:
        _phase_steps(phase_rate, range_spacing, steps_re, steps_im)
    j0 = 0
    while j0 < n:
        q = q0 + sm * j0
        c = math.floor(q)
        m = min(_CHUNK, n - j0)
        for l in range(m):  # shorten the chunk at the first sample whose integer part moves on
            v = q0 + sm * (j0 + l) - c
            if v < 0.0 or v >= 1.0:
                m = max(l, 1)
                break
        base = j0 + int(c) - half
        # fraction spread over the chunk is |sm| * m: small enough -> Taylor weights
        linear_m = int(_LINEAR_SPAN / abs(sm)) if sm != 0.0 else m
        if linear_m >= _MIN_LINEAR:
            m = min(m, linear_m)
            v_c = q0 + sm * (j0 + 0.5 * (m - 1)) - c
            u_c = 2.0 * min(max(v_c, 0.0), 1.0) - 1.0
            for l in range(m):
                mu[l] = np.float32(2.0 * sm * (l - 0.5 * (m - 1)))
            _interpolate_chunk_taylor(buf_re, buf_im, base, mu, m, u_c, poly, acc_re, acc_im)
        else:
            for l in range(m):
                v = q0 + sm * (j0 + l) - c
                mu[l] = np.float32(2.0 * min(max(v, 0.0), 1.0) - 1.0)
            _interpolate_chunk(buf_re, buf_im, base, mu, m, poly, acc_re, acc_im)
        if apply_phase:
            a = phase_rate * (range_start + j0 * range_spacing)
            p = complex(math.cos(a), math.sin(a)) * gain
            for l in range(m):
                pr = p.real * steps_re[l] - p.imag * steps_im[l]
                pi = p.real * steps_im[l] + p.imag * steps_re[l]
                out[j0 + l] = complex(acc_re[l] * pr - acc_im[l] * pi, acc_re[l] * pi + acc_im[l] * pr)
        else:
            for l in range(m):
                out[j0 + l] = complex(acc_re[l], acc_im[l])
        j0 += m


@numba.njit(nogil=True, cache=True, fastmath=True)
def _fill_row(src_row, buf_re, buf_im, start):
    """buf[c] = src_row[(start + c) mod n] (periodic range axis), split into real and imaginary parts."""
    n = src_row.shape[0]
    flat = src_row.view(np.float32)
    idx = start % n
    c = 0
    while c < buf_re.shape[0]:
        m = min(buf_re.shape[0] - c, n - idx)
        part = flat[2 * idx : 2 * (idx + m)]
        out_re = buf_re[c : c + m]
        out_im = buf_im[c : c + m]
        for l in range(m):
            out_re[l] = part[2 * l]
            out_im[l] = part[2 * l + 1]
        c += m
        idx = 0


@numba.njit(nogil=True, cache=True)
def _fill_row_phased(src_row, buf_re, buf_im, start, first_bin, n_total, phase_rate, near_range, range_spacing, gain):
    """Like :func:`_fill_row`, multiplying buffer column c (range bin ``(first_bin + c) mod n_total``) by
    ``gain * exp(1j * phase_rate * R_bin)``."""
    n = src_row.shape[0]
    steps_re = np.empty(_CHUNK, dtype=np.float64)
    steps_im = np.empty(_CHUNK, dtype=np.float64)
    _phase_steps(phase_rate, range_spacing, steps_re, steps_im)
    idx = start % n
    g = first_bin % n_total
    c = 0
    while c < buf_re.shape[0]:
        m = min(buf_re.shape[0] - c, n - idx, n_total - g, _CHUNK)
        a = phase_rate * (near_range + g * range_spacing)
        p = complex(math.cos(a), math.sin(a)) * gain
        for l in range(m):
            v = src_row[idx + l]
            pr = p.real * steps_re[l] - p.imag * steps_im[l]
            pi = p.real * steps_im[l] + p.imag * steps_re[l]
            buf_re[c + l] = v.real * pr - v.imag * pi
            buf_im[c + l] = v.real * pi + v.imag * pr
        c += m
        idx += m
        if idx == n:
            idx = 0
        g += m
        if g == n_total:
            g = 0


@numba.njit(nogil=True, cache=True)
def _zero_outside(buf_re, buf_im, first_bin, n_total):
    """Zero buffer column c where range bin ``first_bin + c`` lies outside the swath ``[0, n_total)`` (linear
    range: nothing beyond one edge reaches the other)."""
    for c in range(buf_re.shape[0]):
        g = first_bin + c
        if g < 0 or g >= n_total:
            buf_re[c] = 0.0
            buf_im[c] = 0.0


@numba.njit(nogil=True, cache=True, fastmath=True)
def _range_fir(src_re, src_im, taps, half, dst_re, dst_im):
    """dst[i] = sum_{n=-K..K} taps[n + K] src[i + K - n], i < len(dst) (<= len(src) - 2K): one Doppler row's
    range FIR (the per-Doppler secondary range compression, :mod:`.doppler_src`), taps in SIMD passes."""
    m = dst_re.shape[0]
    for i in range(m):
        dst_re[i] = 0.0
        dst_im[i] = 0.0
    for t in range(2 * half + 1):
        hr = np.float32(taps[t].real)
        hi = np.float32(taps[t].imag)
        off = 2 * half - t  # src index i + K - n with n = t - K
        sr = src_re[off : off + m]
        si = src_im[off : off + m]
        for i in range(m):
            dst_re[i] += hr * sr[i] - hi * si[i]
            dst_im[i] += hr * si[i] + hi * sr[i]


@numba.njit(nogil=True, cache=True)
def _range_fir_pieces(src_re, src_im, fir, half, dst_re, dst_im, first_bin, fir_start, fir_width, n_total, periodic):
    """:func:`_range_fir` with the taps of piece ``(g - fir_start) // fir_width`` for output bin
    ``g = first_bin + i`` (modulo ``n_total`` when ``periodic``; pieces clipped to the first and last)."""
    m = dst_re.shape[0]
    i = 0
    while i < m:
        g = first_bin + i
        if periodic:
            g = g % n_total
        j = min(max((g - fir_start) // fir_width, 0), fir.shape[0] - 1)
        run = m - i
        if j < fir.shape[0] - 1:
            run = min(run, fir_start + (j + 1) * fir_width - g)
        if periodic:
            run = min(run, n_total - g)
        run = max(run, 1)
        _range_fir(
            src_re[i : i + run + 2 * half],
            src_im[i : i + run + 2 * half],
            fir[j],
            half,
            dst_re[i : i + run],
            dst_im[i : i + run],
        )
        i += run


@numba.njit(nogil=True, cache=True)
def _row(
    data_row,
    in_start,
    out_row,
    out_start,
    n_total,
    near_range,
    range_spacing,
    scale_minus_one,
    phase_rate,
    gain,
    halo,
    poly,
    inverse,
    periodic,
    fir,
    fir_start,
    fir_width,
):
    """One Doppler row (gain != 0). Focus: resample (RCMC), then multiply by the azimuth filter; ``inverse``
    (defocus): multiply the input bins by the filter, then resample. ``periodic`` False: bins outside the swath
    read as zero. ``fir`` (pieces, 2K + 1 complex taps; or none): the row's range FIR per piece of the range
    axis (:func:`_range_fir_pieces`), applied before the resampling (focus) or after it (defocus); ``halo`` then
    includes its K bins."""
    half = (fir.shape[1] - 1) // 2 if fir.shape[1] > 0 else 0
    n_out = out_row.shape[0]
    buf_re = np.empty(n_out + 2 * halo, dtype=np.float32)
    buf_im = np.empty(n_out + 2 * halo, dtype=np.float32)
    if inverse:
        _fill_row_phased(
            data_row, buf_re, buf_im, in_start, out_start - halo, n_total, phase_rate, near_range, range_spacing, gain
        )
    else:
        _fill_row(data_row, buf_re, buf_im, in_start)
    if not periodic:
        _zero_outside(buf_re, buf_im, out_start - halo, n_total)
    if half > 0 and not inverse:  # FIR first: buffer bins out_start - (halo - K) .., only where RCMC reads
        src_re, src_im = buf_re, buf_im
        n_buf = n_out + 2 * (halo - half)
        buf_re = np.zeros(n_buf, dtype=np.float32)
        buf_im = np.zeros(n_buf, dtype=np.float32)
        offset = near_range / range_spacing + out_start
        reach = poly.shape[0] // 2 + 1
        p0 = (halo - half) + scale_minus_one * offset
        p1 = (halo - half) + n_out - 1 + scale_minus_one * (offset + n_out - 1)
        lo = max(0, int(math.floor(min(p0, p1))) - reach)
        hi = min(n_buf, int(math.ceil(max(p0, p1))) + reach + 1)
        if hi > lo:
            _range_fir_pieces(
                src_re[lo:],
                src_im[lo:],
                fir,
                half,
                buf_re[lo:hi],
                buf_im[lo:hi],
                out_start - halo + half + lo,
                fir_start,
                fir_width,
                n_total,
                periodic,
            )
    if half > 0 and inverse:  # resample bins out_start - K .., then the FIR into the output
        tmp = np.empty(n_out + 2 * half, dtype=np.complex64)
        _resample_row(
            buf_re,
            buf_im,
            tmp,
            float(halo - half),
            scale_minus_one,
            near_range / range_spacing + out_start - half,
            poly,
            False,
            phase_rate,
            near_range + out_start * range_spacing,
            range_spacing,
            gain,
        )
        t_re = np.empty(tmp.shape[0], dtype=np.float32)
        t_im = np.empty(tmp.shape[0], dtype=np.float32)
        for c in range(tmp.shape[0]):
            g = out_start - half + c
            inside = periodic or (g >= 0 and g < n_total)
            t_re[c] = tmp[c].real if inside else 0.0
            t_im[c] = tmp[c].imag if inside else 0.0
        o_re = np.empty(n_out, dtype=np.float32)
        o_im = np.empty(n_out, dtype=np.float32)
        _range_fir_pieces(t_re, t_im, fir, half, o_re, o_im, out_start, fir_start, fir_width, n_total, periodic)
        for j in range(n_out):
            out_row[j] = complex(o_re[j], o_im[j])
        return
    _resample_row(
        buf_re,
        buf_im,
        out_row,
        float(halo - half),
        scale_minus_one,
        near_range / range_spacing + out_start,
        poly,
        not inverse,
        phase_rate,
        near_range + out_start * range_spacing,
        range_spacing,
        gain,
    )


@numba.njit(nogil=True, cache=True)
def _active_rows(gain, out):
    """Zero the output rows whose gain is 0 (outside the processed Doppler band); return the others."""
    n = 0
    for k in range(gain.shape[0]):
        if gain[k] == 0.0:
            out[k, :] = 0.0
        else:
            n += 1
    active = np.empty(n, dtype=np.int64)
    n = 0
    for k in range(gain.shape[0]):
        if gain[k] != 0.0:
            active[n] = k
            n += 1
    return active


@numba.njit(parallel=True, nogil=True, cache=True)
def rcmc_azimuth(
    data,
    in_start,
    out,
    out_start,
    n_total,
    near_range,
    range_spacing,
    scale_minus_one,
    phase_rate,
    gain,
    halo,
    poly,
    inverse,
    periodic,
    fir,
    fir_start,
    fir_width,
):
    """Range cell migration correction then azimuth compression of range-Doppler data, row (Doppler bin) by row;
    with ``inverse`` the exact reverse (azimuth decompression, then inverse RCMC).

    Range has ``n_total`` bins (spacing ``range_spacing`` [m], bin 0 at ``near_range`` [m]); it is periodic when
    ``periodic`` (circular range correlation), else bins outside ``[0, n_total)`` read as zero (linear).
    ``data`` (n_doppler, n_in): column ``(in_start + c) mod n_in`` holds range bin ``(out_start - halo + c) mod n_total``
    (pass the whole scene with ``in_start = out_start - halo``, or a block read with its halo and ``in_start = 0``).
    ``out`` (n_doppler, n_out): column j is range bin ``g = out_start + j``; it may be ``data`` itself (rows are
    copied first). For Doppler row k, bin g reads the input at range ``R_g * (1 + scale_minus_one[k])`` through
    the windowed-sinc interpolator ``poly`` and is multiplied by ``gain[k] * exp(1j * phase_rate[k] * R_g)``
    (``inverse``: each input bin g is multiplied first, then resampled). Rows with ``gain[k] == 0`` are zeroed.
    ``fir`` (n_doppler, pieces, 2K + 1) complex64, or (n_doppler, 1, 0): per-row range FIR taps per piece of
    ``fir_width`` bins from bin ``fir_start`` (:mod:`.doppler_src`), applied before the resampling (``inverse``:
    after it), K of the ``halo`` bins being theirs.
    Parallel over the other rows; :func:`rcmc_azimuth_serial` is the same on one thread (for Dask tasks).
    """
    active = _active_rows(gain, out)
    for i in numba.prange(active.shape[0]):  # rows with weight only: the threads get equal work
        k = active[i]
        _row(
            data[k],
            in_start,
            out[k],
            out_start,
            n_total,
            near_range,
            range_spacing,
            scale_minus_one[k],
            phase_rate[k],
            gain[k],
            halo,
            poly,
            inverse,
            periodic,
            fir[k],
            fir_start,
            fir_width,
        )


@numba.njit(nogil=True, cache=True)
def rcmc_azimuth_serial(
    data,
    in_start,
    out,
    out_start,
    n_total,
    near_range,
    range_spacing,
    scale_minus_one,
    phase_rate,
    gain,
    halo,
    poly,
    inverse,
    periodic,
    fir,
    fir_start,
    fir_width,
):
    for k in _active_rows(gain, out):
        _row(
            data[k],
            in_start,
            out[k],
            out_start,
            n_total,
            near_range,
            range_spacing,
            scale_minus_one[k],
            phase_rate[k],
            gain[k],
            halo,
            poly,
            inverse,
            periodic,
            fir[k],
            fir_start,
            fir_width,
        )
