"""Until the output-safety change (``check_output``; ``save_dataset``/``atomic_path``/``focus_zarr`` taking
``overwrite=`` and ``inputs=``, COMMON.md) is merged everywhere: pass those keywords only to writers that take them,
and otherwise call the writer as before. The integrator replaces ``call_writer(f, ...)`` by ``f(...)`` and deletes
this module once every writer takes both keywords."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def call_writer(func: Callable[..., Any], *args: Any, overwrite: bool = False, inputs: Any = (), **kwargs: Any) -> Any:
    params = inspect.signature(func).parameters
    if "inputs" in params:  # the safety API: refuses inputs as outputs, and foreign paths without overwrite
        kwargs["inputs"] = tuple(inputs)
    # the writers that replaced whatever was there took overwrite=True by default; the safe ones default to False
    if "overwrite" in params and ("inputs" in params or params["overwrite"].default is False):
        kwargs["overwrite"] = overwrite
    return func(*args, **kwargs)
