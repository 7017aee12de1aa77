"""``dhus``: any Copernicus Data Hub (DHuS) server, through sentinelsat.

Search: DHuS OpenSearch ``GET {url}/search?format=json&rows=N&start=0&q=...`` (``platformname``, ``producttype``,
``sensoroperationalmode``, ``polarisationmode``, ``orbitdirection``, ``relativeorbitnumber``, ``beginPosition``,
``footprint:"Intersects(WKT)"``), HTTP basic authentication. Before a download the product's OData record
(``{url}/odata/v1/Products('UUID')?$format=json``) gives its MD5 and exact size; the file comes from
``.../Products('UUID')/$value``. There is no default ``url``: the original Open Access Hub is closed; give the
api_url of a DHuS that still runs (a national mirror, a collaborative hub).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from ..errors import InputError
from .providers import CatalogProvider, DownloadAuth, search_area, time_range
from .records import Checksum, ProductRecord, geojson_to_wkt, parse_size, wkt_to_geojson
from .retrying import RETRY_STATUS, retry_after_seconds


def _iso(v: Any) -> str | None:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    return str(v) if v is not None else None


class DhusProvider(CatalogProvider):
    name: ClassVar[str] = "dhus"
    description: ClassVar[str] = "any DHuS server (OpenSearch + OData, via sentinelsat); url required"
    default_url: ClassVar[str | None] = None
    credential_env: ClassVar[tuple[tuple[str, str], ...]] = (
        ("SARPIPE_DHUS_USER", "SARPIPE_DHUS_PASSWORD"),
        ("DHUS_USER", "DHUS_PASSWORD"),
    )

    def __init__(self, entry: Any, **kw: Any):
        super().__init__(entry, **kw)
        self._api = None

    @property
    def api(self) -> Any:
        if self._api is None:
            from sentinelsat import SentinelAPI

            creds = self.credentials()
            self._api = SentinelAPI(
                creds.user, creds.password, self.url + "/", show_progressbars=False, timeout=self.timeout
            )
        return self._api

    def keywords(self) -> dict[str, Any]:
        """sentinelsat ``query`` arguments of the catalog query (OpenSearch names)."""
        q = self.query
        kw: dict[str, Any] = {}
        if q.collection:
            kw["platformname"] = q.collection.title()  # SENTINEL-1 -> Sentinel-1, as DHuS spells it
        if q.product_type:
            kw["producttype"] = q.product_type
        if q.instrument_mode:
            kw["sensoroperationalmode"] = q.instrument_mode
        if q.polarizations:
            kw["polarisationmode"] = " ".join(q.polarizations)
        if q.orbit_state:
            kw["orbitdirection"] = q.orbit_state.upper()
        if q.relative_orbit:
            kw["relativeorbitnumber"] = q.relative_orbit
        start, end = time_range(q)
        if start or end:
            kw["date"] = (start or "*", end or "NOW")
        area = search_area(q)
        if area is not None:
            kw["area"] = geojson_to_wkt(area)
        if not kw:
            raise InputError("an empty query would list the whole archive: give at least a collection", where="query")
        return kw

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        import requests
        from sentinelsat.exceptions import QuerySyntaxError, SentinelAPIError, UnauthorizedError

        retrier = self.retrier(f"{self.entry_name}: {what}")
        while True:
            try:
                return fn()
            except UnauthorizedError:
                creds = self._credentials
                raise InputError(
                    f"{what}: the DHuS server refused the credentials from {creds.source if creds else '?'} "
                    "(HTTP 401); check the user name and password",
                    where=self.entry_name,
                ) from None
            except QuerySyntaxError as exc:
                raise InputError(f"{what}: the server refused the query: {exc.msg}", where=self.entry_name) from None
            except SentinelAPIError as exc:
                r = exc.response
                if r is not None and r.status_code in RETRY_STATUS:
                    retrier.wait(f"HTTP {r.status_code}", retry_after_seconds(r.headers.get("Retry-After")))
                    continue
                code = f"HTTP {r.status_code}: " if r is not None else ""
                raise InputError(f"{what}: {code}{exc.msg}", where=self.entry_name) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                retrier.wait(f"{type(exc).__name__}: {exc}")

    def search(self, limit: int | None = None) -> list[ProductRecord]:
        kw = self.keywords()
        n = limit or self.query.limit or 20
        found = self._call("search", lambda: self.api.query(limit=n, order_by="-beginposition", **kw))
        return [self.record(uuid, props) for uuid, props in found.items()]

    def record(self, uuid: str, p: dict[str, Any]) -> ProductRecord:
        title = p.get("title") or p.get("identifier") or uuid
        footprint = None
        if p.get("footprint"):
            try:
                footprint = wkt_to_geojson(p["footprint"])
            except ValueError:
                footprint = None
        platform = None
        if title[:2] == "S1" and len(title) > 2:
            platform = f"sentinel-1{title[2].lower()}"
        elif p.get("platformname"):
            platform = str(p["platformname"]).lower()
        return ProductRecord(
            id=uuid,
            provider=self.name,
            name=title,
            href=p.get("link") or f"{self.url}/odata/v1/Products('{uuid}')/$value",
            filename=f"{title}.zip",
            datetime=_iso(p.get("beginposition")),
            platform=platform,
            mode=p.get("sensoroperationalmode"),
            polarizations=str(p.get("polarisationmode") or "").split(),
            relative_orbit=p.get("relativeorbitnumber"),
            orbit_state=str(p["orbitdirection"]).lower() if p.get("orbitdirection") else None,
            product_type=p.get("producttype"),
            size=parse_size(p.get("size")),
            footprint=footprint,
        )

    def lookup(self, product_id: str) -> ProductRecord:
        return self.prepare_download(
            ProductRecord(id=product_id, provider=self.name, name=product_id, href="", filename=f"{product_id}.zip")
        )

    def prepare_download(self, record: ProductRecord) -> ProductRecord:
        od = self._call(record.id, lambda: self.api.get_product_odata(record.id))
        record.size = int(od["size"])
        record.checksums = [Checksum("MD5", od["md5"])] if od.get("md5") else []
        record.href = od.get("url") or record.href
        if record.name == record.id and od.get("title"):
            record.name, record.filename = od["title"], f"{od['title']}.zip"
            record.datetime = record.datetime or _iso(od.get("date"))
        return record

    def download_auth(self, record: ProductRecord) -> DownloadAuth:
        creds = self.credentials()
        return DownloadAuth(basic=(creds.user, creds.password))
