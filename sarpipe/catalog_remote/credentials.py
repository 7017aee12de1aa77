"""Credentials for catalog services: from the environment or ``~/.netrc``, never from the catalog file, never
printed. :class:`Credentials` hides its password from ``repr``; :func:`redact` removes secrets from any text that
is about to be shown."""

from __future__ import annotations

import netrc
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

#: keys refused in a catalog entry: credentials belong in the environment or ~/.netrc
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "user",
        "username",
        "login",
        "token",
        "access_token",
        "secret",
        "api_key",
        "apikey",
        "credentials",
        "auth",
    }
)


@dataclass(frozen=True)
class Credentials:
    """A user name and password and where they came from (``source``, safe to print)."""

    user: str
    password: str = field(repr=False)
    source: str = ""

    def secrets(self) -> list[str]:
        return [self.password] if self.password else []


def netrc_path() -> Path:
    return Path(os.path.expanduser("~")) / ".netrc"


def find_credentials(env: tuple[tuple[str, str], ...], host: str | None) -> Credentials | None:
    """The first of: a (user, password) pair of environment variables in ``env`` that are both set, the
    ``~/.netrc`` entry of ``host``; else None. A malformed ``~/.netrc`` is bad input (its text is not shown)."""
    for user_var, password_var in env:
        user, password = os.environ.get(user_var), os.environ.get(password_var)
        if user and password:
            return Credentials(user, password, f"the environment ({user_var}, {password_var})")
    path = netrc_path()
    if host and path.is_file():
        try:
            found = netrc.netrc(os.fspath(path)).authenticators(host)
        except netrc.NetrcParseError as exc:
            # the parser's message quotes the offending token, which may be a password: show the line only
            raise InputError(f"cannot parse this file (line {exc.lineno})", where=os.fspath(path)) from None
        if found:
            login, _account, password = found
            if login and password:
                return Credentials(login, password, f"{path} (machine {host})")
    return None


def missing_credentials(provider: str, env: tuple[tuple[str, str], ...], host: str | None) -> InputError:
    names = " or ".join(f"{u} and {p}" for u, p in env)
    where = f", or a 'machine {host} login USER password PASSWORD' line in {netrc_path()}" if host else ""
    return InputError(
        f"no credentials for {provider}: set {names}{where} (credentials are never read from the catalog file)",
        where=provider,
    )


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (of 3 characters or more) replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text
