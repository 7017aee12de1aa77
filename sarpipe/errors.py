"""The one exception type for bad input.

Anything a user can fix (a missing attribute, a bad YAML key, a wrong dtype) raises :class:`InputError`; the
command line turns it into exit status 2. Anything else is an internal error (exit status 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or usage. The message names the file, variable, attribute, key or YAML line at fault."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
