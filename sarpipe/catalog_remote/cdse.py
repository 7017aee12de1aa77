"""``cdse``: the Copernicus Data Space Ecosystem OData catalogue and its token-authenticated download.

Search: ``GET {url}/odata/v1/Products?$filter=...&$top=N&$orderby=ContentDate/Start desc&$expand=Attributes``
with ``Collection/Name``, ``OData.CSC.Intersects``, ``ContentDate/Start`` and ``Attributes`` (``operationalMode``,
``polarisationChannels``, ``orbitDirection``, ``relativeOrbitNumber``, ``productType``) terms. Download:
``GET {download_url}/odata/v1/Products(ID)/$value`` with ``Authorization: Bearer TOKEN``, the token from the CDSE
identity server (``POST {auth_url}``: password grant, ``client_id=cdse-public``). Checksums: the product's
``Checksum`` list (MD5 and BLAKE3; BLAKE3 is verified only where the ``blake3`` package is installed, since
``hashlib`` has no BLAKE3).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import InputError
from .providers import CatalogProvider, DownloadAuth, search_area, time_range
from .records import Checksum, ProductRecord, geojson_to_wkt, wkt_to_geojson

CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu"
DOWNLOAD_URL = "https://download.dataspace.copernicus.eu"
TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
CLIENT_ID = "cdse-public"

#: product-type words of Sentinel-1 names (S1A_IW_SLC__1SDV_...): matched in the name; anything else is an exact
#: ``productType`` attribute (e.g. ``IW_SLC__1S``)
_SHORT_TYPES = ("RAW", "SLC", "GRD", "OCN")


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _string_attribute(name: str, value: str) -> str:
    return (
        f"Attributes/OData.CSC.StringAttribute/any(att:att/Name eq {_quote(name)} and "
        f"att/OData.CSC.StringAttribute/Value eq {_quote(value)})"
    )


def _integer_attribute(name: str, value: int) -> str:
    return (
        f"Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq {_quote(name)} and "
        f"att/OData.CSC.IntegerAttribute/Value eq {int(value)})"
    )


def odata_filter(query: Any) -> str:
    """The OData ``$filter`` of a catalog query (terms joined by ``and``, in a fixed order)."""
    terms = []
    if query.collection:
        terms.append(f"Collection/Name eq {_quote(query.collection)}")
    area = search_area(query)
    if area is not None:
        terms.append(f"OData.CSC.Intersects(area=geography'SRID=4326;{geojson_to_wkt(area)}')")
    start, end = time_range(query)
    if start:
        terms.append(f"ContentDate/Start ge {start}")
    if end:
        terms.append(f"ContentDate/Start le {end}")
    if query.product_type:
        pt = query.product_type.upper()
        terms.append(f"contains(Name,'_{pt}')" if pt in _SHORT_TYPES else _string_attribute("productType", pt))
    if query.instrument_mode:
        terms.append(_string_attribute("operationalMode", query.instrument_mode.upper()))
    if query.polarizations:
        terms.append(_string_attribute("polarisationChannels", "&".join(query.polarizations)))
    if query.orbit_state:
        terms.append(_string_attribute("orbitDirection", query.orbit_state.upper()))
    if query.relative_orbit:
        terms.append(_integer_attribute("relativeOrbitNumber", query.relative_orbit))
    if query.platform:
        serial = query.platform.strip()[-1:].upper()
        if query.platform.lower().startswith("sentinel-") and serial.isalpha():
            terms.append(_string_attribute("platformSerialIdentifier", serial))
    if not terms:
        raise InputError("an empty query would list the whole archive: give at least a collection", where="query")
    return " and ".join(terms)


class _TokenAuth(DownloadAuth):
    def __init__(self, provider: CdseProvider):
        super().__init__()
        self.provider = provider
        self.refresh()

    def refresh(self) -> bool:
        self.headers = {"Authorization": f"Bearer {self.provider.access_token()}"}
        return True


class CdseProvider(CatalogProvider):
    name: ClassVar[str] = "cdse"
    description: ClassVar[str] = "Copernicus Data Space Ecosystem (OData search, token-authenticated download)"
    default_url: ClassVar[str | None] = CATALOGUE_URL
    credential_env: ClassVar[tuple[tuple[str, str], ...]] = (("SARPIPE_CDSE_USER", "SARPIPE_CDSE_PASSWORD"),)

    def __init__(self, entry: Any, **kw: Any):
        super().__init__(entry, **kw)
        overridden = bool(entry.url)  # an overridden service keeps downloads and tokens on it unless told otherwise
        self.download_url = (entry.download_url or (self.url if overridden else DOWNLOAD_URL)).rstrip("/")
        self.auth_url = entry.auth_url or (self.url + TOKEN_PATH if overridden else TOKEN_URL)
        self._tokens: list[str] = []

    def credential_host(self) -> str | None:
        return urlsplit(self.auth_url).hostname

    def secrets(self) -> list[str]:
        return super().secrets() + self._tokens

    def search(self, limit: int | None = None) -> list[ProductRecord]:
        params = {
            "$filter": odata_filter(self.query),
            "$orderby": "ContentDate/Start desc",
            "$top": str(limit or self.query.limit or 20),
            "$expand": "Attributes",
        }
        r = self.request("GET", f"{self.url}/odata/v1/Products", params=params, what="search")
        try:
            return [self.record(p) for p in r.json()["value"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"search: not an OData product list ({exc})", where=self.entry_name) from None

    def lookup(self, product_id: str) -> ProductRecord:
        r = self.request(
            "GET", f"{self.url}/odata/v1/Products({product_id})", params={"$expand": "Attributes"}, what=product_id
        )
        return self.record(r.json())

    def record(self, p: dict[str, Any]) -> ProductRecord:
        attrs = {a.get("Name"): a.get("Value") for a in p.get("Attributes") or []}
        footprint = p.get("GeoFootprint")
        if not footprint and p.get("Footprint"):
            footprint = wkt_to_geojson(p["Footprint"].removeprefix("geography").strip("'"))
        serial, short = attrs.get("platformSerialIdentifier"), attrs.get("platformShortName")
        name = p["Name"]
        return ProductRecord(
            id=p["Id"],
            provider=self.name,
            name=name,
            href=f"{self.download_url}/odata/v1/Products({p['Id']})/$value",
            filename=(name.removesuffix(".SAFE") + ".SAFE.zip") if name.endswith(".SAFE") else name,
            datetime=(p.get("ContentDate") or {}).get("Start"),
            platform=f"{short}{serial}".lower() if short and serial else (short or "").lower() or None,
            mode=attrs.get("operationalMode"),
            polarizations=[s for s in str(attrs.get("polarisationChannels") or "").split("&") if s],
            relative_orbit=int(attrs["relativeOrbitNumber"]) if attrs.get("relativeOrbitNumber") is not None else None,
            orbit_state=str(attrs["orbitDirection"]).lower() if attrs.get("orbitDirection") else None,
            product_type=attrs.get("productType"),
            size=int(p["ContentLength"]) if p.get("ContentLength") else None,
            footprint=footprint,
            checksums=[Checksum(c["Algorithm"].upper(), c["Value"]) for c in p.get("Checksum") or [] if c.get("Value")],
        )

    def access_token(self) -> str:
        """A fresh access token from the identity server (password grant)."""
        creds = self.credentials()
        data = {"client_id": CLIENT_ID, "username": creds.user, "password": creds.password, "grant_type": "password"}
        r = self.request("POST", self.auth_url, data=data, what="token", ok=(200, 400, 401, 403))
        if r.status_code != 200:
            try:
                detail = r.json().get("error_description") or r.json().get("error") or ""
            except ValueError:
                detail = ""
            raise InputError(
                f"the CDSE identity server refused the credentials from {creds.source} (HTTP {r.status_code}"
                + (f": {detail}" if detail else "")
                + "); check the user name and password",
                where=self.entry_name,
            )
        try:
            token = r.json()["access_token"]
        except (ValueError, KeyError):
            raise InputError("token: the identity server's answer has no access_token", where=self.entry_name) from None
        self._tokens.append(token)
        return token

    def download_auth(self, record: ProductRecord) -> DownloadAuth:
        return _TokenAuth(self)
