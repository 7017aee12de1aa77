"""Range-Doppler focusing (and its inverse) of stripmap SAR echoes.

Public API: :func:`focus`, :func:`defocus` (in memory), :func:`focus_zarr`, :func:`defocus_zarr` (streaming with
Dask, bounded memory), :func:`range_compress`, :func:`estimate_doppler_centroid`, :func:`parse_window`.
Range is correlated linearly (no wrap between the swath edges) unless circular is asked for; an unknown Doppler
centroid is estimated with its PRF ambiguity resolved (:mod:`.doppler_ambiguity`).
Conventions and accuracy: docs/focusing.md.
"""

from .dataset import defocus, focus
from .doppler import estimate_doppler_centroid
from .range_compression import range_compress
from .windows import Window, parse_window


def focus_zarr(*args, **kwargs):
    """Streaming focus, Zarr store to Zarr store; see :func:`sarpipe.focus.dask_focus.focus_zarr`."""
    from .dask_focus import focus_zarr as _focus_zarr  # Dask and zarr load only when streaming

    return _focus_zarr(*args, **kwargs)


def defocus_zarr(*args, **kwargs):
    """Streaming defocus, Zarr store to Zarr store; see :func:`sarpipe.focus.dask_focus.defocus_zarr`."""
    from .dask_focus import defocus_zarr as _defocus_zarr

    return _defocus_zarr(*args, **kwargs)


__all__ = [
    "focus",
    "defocus",
    "focus_zarr",
    "defocus_zarr",
    "range_compress",
    "estimate_doppler_centroid",
    "parse_window",
    "Window",
]
