"""``stac``: any STAC API, through pystac-client: ``POST {url}/search`` with ``collections``, ``bbox`` or
``intersects``, ``datetime``, ``limit`` and a CQL2-JSON ``filter`` on the STAC properties the query names
(``sar:instrument_mode``, ``sar:product_type``, ``sat:orbit_state``, ``sat:relative_orbit``, ``platform``).
Polarisations are matched here, after the search (array operators are not common to STAC APIs). The download is
the item's ``asset`` (the entry's ``asset``, else the first with role ``data``); its ``file:size`` and
``file:checksum`` (multihash) are verified. Credentials (optional) are used for the asset's host.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import InputError
from .providers import CatalogProvider, DownloadAuth, time_range
from .records import ProductRecord, parse_multihash
from .retrying import RETRY_STATUS


def cql2_filter(query: Any) -> dict[str, Any] | None:
    """CQL2-JSON equality terms for the STAC properties a query names (None if it names none)."""
    terms = []
    for prop, value in (
        ("sar:instrument_mode", query.instrument_mode),
        ("sar:product_type", query.product_type),
        ("sat:orbit_state", query.orbit_state),
        ("sat:relative_orbit", query.relative_orbit),
        ("platform", query.platform),
    ):
        if value is not None:
            terms.append({"op": "=", "args": [{"property": prop}, value]})
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"op": "and", "args": terms}


class StacProvider(CatalogProvider):
    name: ClassVar[str] = "stac"
    description: ClassVar[str] = "any STAC API (item search via pystac-client); url required"
    default_url: ClassVar[str | None] = None
    credential_env: ClassVar[tuple[tuple[str, str], ...]] = (("SARPIPE_STAC_USER", "SARPIPE_STAC_PASSWORD"),)

    def _client(self) -> Any:
        from pystac_client import Client

        return self._stac_call("open", lambda: Client.open(self.url, timeout=self.timeout))

    def _stac_call(self, what: str, fn: Any) -> Any:
        import requests
        from pystac_client.exceptions import APIError

        retrier = self.retrier(f"{self.entry_name}: {what}")
        while True:
            try:
                return fn()
            except APIError as exc:
                code = getattr(exc, "status_code", None)
                if code in RETRY_STATUS:
                    retrier.wait(f"HTTP {code}")
                    continue
                if code in (401, 403):
                    raise InputError(
                        f"{what}: the STAC API refused access (HTTP {code})", where=self.entry_name
                    ) from None
                raise InputError(f"{what}: {str(exc)[:200]}", where=self.entry_name) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                retrier.wait(f"{type(exc).__name__}: {exc}")

    def search_arguments(self, limit: int | None) -> dict[str, Any]:
        q = self.query
        n = limit or q.limit or 20
        args: dict[str, Any] = {"max_items": n, "limit": min(n, 100), "method": "POST"}
        if q.collection:
            args["collections"] = [q.collection]
        if q.bbox:
            args["bbox"] = list(q.bbox)
        elif q.intersects:
            args["intersects"] = dict(q.intersects)
        elif q.wkt:
            from .records import wkt_to_geojson

            args["intersects"] = wkt_to_geojson(q.wkt)
        start, end = time_range(q)
        if start or end:
            args["datetime"] = f"{start or '..'}/{end or '..'}"
        flt = cql2_filter(q)
        if flt is not None:
            args["filter"] = flt
            args["filter_lang"] = "cql2-json"
        return args

    def search(self, limit: int | None = None) -> list[ProductRecord]:
        client = self._client()
        args = self.search_arguments(limit)
        items = self._stac_call("search", lambda: list(client.search(**args).items_as_dicts()))
        want = set(self.query.polarizations or [])
        records = [self.record(it) for it in items]
        return [r for r in records if want <= set(r.polarizations)]

    def lookup(self, product_id: str) -> ProductRecord:
        client = self._client()
        args = {"ids": [product_id], "max_items": 1, "method": "POST"}
        if self.query.collection:
            args["collections"] = [self.query.collection]
        items = self._stac_call(product_id, lambda: list(client.search(**args).items_as_dicts()))
        if not items:
            raise InputError(f"no item {product_id!r} in {self.url}", where=self.entry_name)
        return self.record(items[0])

    def record(self, item: dict[str, Any]) -> ProductRecord:
        p = item.get("properties") or {}
        assets = item.get("assets") or {}
        key = self.entry.asset
        if key is None:
            key = next((k for k, a in assets.items() if "data" in (a.get("roles") or [])), None)
        if key is None or key not in assets:
            known = ", ".join(assets) or "none"
            raise InputError(
                f"item {item.get('id')!r} has no asset {key or '(role data)'!r} (assets: {known}); set 'asset'",
                where=self.entry_name,
            )
        asset = assets[key]
        href = asset["href"]
        checksum = parse_multihash(asset["file:checksum"]) if asset.get("file:checksum") else None
        return ProductRecord(
            id=item["id"],
            provider=self.name,
            name=p.get("title") or item["id"],
            href=href,
            filename=urlsplit(href).path.rsplit("/", 1)[-1] or item["id"],
            datetime=p.get("datetime") or p.get("start_datetime"),
            platform=p.get("platform"),
            mode=p.get("sar:instrument_mode"),
            polarizations=list(p.get("sar:polarizations") or []),
            relative_orbit=p.get("sat:relative_orbit"),
            orbit_state=p.get("sat:orbit_state"),
            product_type=p.get("sar:product_type") or p.get("product:type"),
            size=asset.get("file:size"),
            footprint=item.get("geometry"),
            checksums=[checksum] if checksum else [],
        )

    def download_auth(self, record: ProductRecord) -> DownloadAuth:
        from .credentials import find_credentials

        creds = find_credentials(self.credential_env, urlsplit(record.href).hostname)  # optional: many are open
        self._credentials = creds
        return DownloadAuth(basic=(creds.user, creds.password)) if creds else DownloadAuth()
