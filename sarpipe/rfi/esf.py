"""Eigen-subspace filter (ESF): remove the dominant slow-time subspace of a block of contaminated pulses.

RFI that persists over consecutive pulses (a tone, a slowly drifting emitter) is a few strong components of the
slow-time covariance ``R = X X^H / n`` (``X``: pulses x cells, the cells being the time-frequency bins of each
pulse). The echo is spread over many weaker components. ESF takes the eigen-decomposition of ``R`` and calls a
component RFI when its eigenvalue exceeds ``threshold_db`` above the median eigenvalue (at most ``max_rank`` of
them); the RFI estimate is the projection of ``X`` onto those eigenvectors, ``U_k U_k^H X``.

Working on spectrograms or on the pulses themselves gives the same projection (the STFT acts on fast time, the
projection on slow time), so this is a ``tf`` method only to share the chain. The block is the run of consecutive
contaminated pulses the chain hands over (``whole_block``), cut into pieces of at most ``block_pulses``.
"""

from __future__ import annotations

import numpy as np

from .methods import CleanupMethod, MethodContext, MethodOutput, register_method

__all__ = ["EigenSubspaceFilter", "rfi_subspace"]


def rfi_subspace(
    x: np.ndarray, threshold_db: float = 10.0, max_rank: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors (columns, slow time) of the RFI subspace of ``x`` (pulses x cells) and all eigenvalues (descending)."""
    n_p = x.shape[0]
    xf = x.reshape(n_p, -1).astype(np.complex128)
    r = (xf @ xf.conj().T) / xf.shape[1]
    w, v = np.linalg.eigh(r)
    w, v = w[::-1], v[:, ::-1]
    floor = max(float(np.median(w)), 1e-30)
    k = int(np.count_nonzero(w > floor * 10 ** (threshold_db / 10)))
    k = min(k, max_rank if max_rank is not None else max(1, n_p // 4))
    return v[:, :k], w


@register_method("esf")
class EigenSubspaceFilter(CleanupMethod):
    """Slow-time eigen-subspace filter; returns the RFI estimate ``U_k U_k^H X``."""

    name = "esf"
    domain = "tf"
    whole_block = True

    def __init__(
        self, threshold_db: float = 10.0, max_rank: int | None = None, block_pulses: int = 128, min_pulses: int = 8
    ):
        self.threshold_db = float(threshold_db)
        self.max_rank = max_rank
        self.block_pulses = int(block_pulses)
        self.min_pulses = int(min_pulses)

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        x = np.asarray(x)
        est = np.zeros(x.shape, dtype=np.complex64)
        n = x.shape[0]
        if n < self.min_pulses:
            return MethodOutput("estimate", est)  # too few pulses for a slow-time subspace
        n_blocks = max(1, round(n / self.block_pulses))
        bounds = np.linspace(0, n, n_blocks + 1).round().astype(int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            blk = x[a:b]
            u, _ = rfi_subspace(blk, self.threshold_db, self.max_rank)
            if u.shape[1]:
                flat = blk.reshape(b - a, -1).astype(np.complex128)
                proj = u @ (u.conj().T @ flat)
                est[a:b] = proj.reshape(blk.shape).astype(np.complex64)
        return MethodOutput("estimate", est)
