"""The catalog-provider interface and its registry.

A provider is a class deriving from :class:`CatalogProvider`, registered by name: the built-ins here (imported
lazily), third parties through the entry-point group ``sarpipe.catalog_providers``::

    [project.entry-points."sarpipe.catalog_providers"]
    myhub = "mypackage.hub:MyHubProvider"

It gets the validated catalog entry (``provider``, ``url``, ``query``, ...) and returns
:class:`~sarpipe.catalog_remote.records.ProductRecord` from :meth:`~CatalogProvider.search` and
:meth:`~CatalogProvider.lookup`; downloads are the shared downloader's, with :meth:`~CatalogProvider.download_auth`.
"""

from __future__ import annotations

import importlib
from datetime import UTC
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import InputError
from .credentials import Credentials, find_credentials, missing_credentials
from .records import ProductRecord
from .retrying import RETRY_STATUS, Retrier, retry_after_seconds, status_reason

PROVIDER_ENTRY_POINT_GROUP = "sarpipe.catalog_providers"

_BUILTIN = {
    "cdse": "sarpipe.catalog_remote.cdse:CdseProvider",
    "dhus": "sarpipe.catalog_remote.dhus:DhusProvider",
    "stac": "sarpipe.catalog_remote.stac:StacProvider",
}
_REGISTERED: dict[str, str] = {}
_LOADED: dict[str, type] = {}
_ENTRY_POINTS_LOADED = False


def register_provider(name: str, target: str | type) -> None:
    """Register a provider class (or ``"module:Class"``, imported when first used) under ``name``."""
    if isinstance(target, str):
        _REGISTERED[name] = target
    else:
        _LOADED[name] = target


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PROVIDER_ENTRY_POINT_GROUP):
        _REGISTERED.setdefault(ep.name, ep.value)


def provider_names() -> list[str]:
    """Every registered provider name (built-in, registered, entry points)."""
    _load_entry_points()
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_LOADED))


def provider_class(name: str) -> type[CatalogProvider]:
    """The provider class registered as ``name``; unknown or unloadable is bad input."""
    if name in _LOADED:
        return _LOADED[name]
    _load_entry_points()
    target = _BUILTIN.get(name) or _REGISTERED.get(name)
    if target is None:
        raise InputError(f"unknown catalog provider {name!r}; registered: {', '.join(provider_names())}")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"catalog provider {name!r} is registered as {target!r} but cannot be loaded ({exc})"
        ) from None
    _LOADED[name] = cls
    return cls


def _no_implicit_auth(request: Any) -> Any:
    return request


class DownloadAuth:
    """How the downloader authenticates: extra ``headers`` (a bearer token), or HTTP ``basic`` (user, password);
    :meth:`refresh` is called once after a 401 (e.g. a token that expired during a long download)."""

    def __init__(self, headers: dict[str, str] | None = None, basic: tuple[str, str] | None = None):
        self.headers = dict(headers or {})
        self.basic = basic

    def refresh(self) -> bool:
        return False


class CatalogProvider:
    """Base class of catalog providers. Subclasses set the class attributes and implement :meth:`search` and
    :meth:`lookup`; :meth:`request` gives them retries and error messages that name the entry."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the service's real endpoint, or None when the entry must give ``url``
    default_url: ClassVar[str | None] = None
    #: (user variable, password variable) pairs tried in order before ~/.netrc
    credential_env: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, entry: Any, *, entry_name: str, session: Any = None):
        import requests

        self.entry = entry
        self.entry_name = entry_name
        self.query = entry.query
        self.url = (entry.url or self.default_url or "").rstrip("/")
        if not self.url:
            raise InputError(f"provider {self.name!r} needs 'url' (there is no default endpoint)", where=entry_name)
        self.session = session or requests.Session()
        # credentials are chosen here, explicitly: no implicit ~/.netrc basic auth from requests (it would replace
        # a bearer token); proxies and CA bundles from the environment still apply
        self.session.auth = _no_implicit_auth
        self.timeout = entry.retry.timeout_s
        self._credentials: Credentials | None = None

    # --- to implement
    def search(self, limit: int | None = None) -> list[ProductRecord]:
        raise NotImplementedError

    def lookup(self, product_id: str) -> ProductRecord:
        raise NotImplementedError

    def download_auth(self, record: ProductRecord) -> DownloadAuth:
        return DownloadAuth()

    def prepare_download(self, record: ProductRecord) -> ProductRecord:
        """The record with what a download needs that a search may not give (checksum, exact size)."""
        return record

    # --- helpers
    def credential_host(self) -> str | None:
        """The host whose ``~/.netrc`` entry holds the credentials (default: the service's)."""
        return urlsplit(self.url).hostname

    def credentials(self, required: bool = True) -> Credentials | None:
        if self._credentials is None:
            self._credentials = find_credentials(self.credential_env, self.credential_host())
            if self._credentials is None and required:
                raise missing_credentials(self.name, self.credential_env, self.credential_host())
        return self._credentials

    def secrets(self) -> list[str]:
        return self._credentials.secrets() if self._credentials else []

    def retrier(self, what: str) -> Retrier:
        return Retrier.from_policy(self.entry.retry, what)

    def request(self, method: str, url: str, *, what: str, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        """One HTTP request with retries on 429/5xx and connection errors; any other failure is bad input."""
        import requests

        retrier = self.retrier(f"{self.entry_name}: {what}")
        while True:
            try:
                r = self.session.request(method, url, timeout=self.timeout, **kw)
            except (requests.ConnectionError, requests.Timeout) as exc:
                retrier.wait(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code in ok:
                return r
            if r.status_code in RETRY_STATUS:
                retrier.wait(status_reason(r), retry_after_seconds(r.headers.get("Retry-After")))
                continue
            raise self.http_error(r, what)

    def http_error(self, r: Any, what: str) -> InputError:
        if r.status_code in (401, 403):
            creds = self._credentials
            src = f" from {creds.source}" if creds else ""
            return InputError(
                f"{what}: {self.name} refused the credentials{src} ({status_reason(r)}); check the user name and "
                "password",
                where=self.entry_name,
            )
        body = (r.text or "").strip().replace("\n", " ")
        return InputError(
            f"{what}: {status_reason(r)} from {urlsplit(r.url).netloc}: {body[:200]}", where=self.entry_name
        )


# ----------------------------------------------------------------------------------- query terms, shared


def _instant(text: str, end: bool) -> str | None:
    """UTC ISO 8601 with milliseconds; a date alone is its first (or, for ``end``, its last) millisecond."""
    from datetime import datetime

    text = text.strip()
    if text in ("", ".."):
        return None
    if len(text) == 10:
        return f"{text}T23:59:59.999Z" if end else f"{text}T00:00:00.000Z"
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def time_range(query: Any) -> tuple[str | None, str | None]:
    """(start, end) of the query's sensing time (``datetime: START/END``, or ``start_datetime``/``end_datetime``);
    None for an open end."""
    if query.datetime:
        a, sep, b = query.datetime.partition("/")
        return (_instant(a, False), _instant(b, True)) if sep else (_instant(a, False), _instant(a, True))
    return (
        _instant(query.start_datetime, False) if query.start_datetime else None,
        _instant(query.end_datetime, True) if query.end_datetime else None,
    )


def search_area(query: Any) -> dict[str, Any] | None:
    """The query's area as GeoJSON (``bbox``, ``intersects`` or ``wkt``), or None."""
    from .records import bbox_polygon, wkt_to_geojson

    if query.bbox:
        return bbox_polygon(query.bbox)
    if query.intersects:
        return dict(query.intersects)
    if query.wkt:
        return wkt_to_geojson(query.wkt)
    return None
