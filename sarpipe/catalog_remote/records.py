"""What a catalog search returns: one :class:`ProductRecord` per product, STAC-like, and the footprint helpers
(GeoJSON <-> WKT, the small subset catalog services use)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Checksum:
    """A checksum as the service states it: ``algorithm`` upper case (``MD5``, ``SHA256``, ``BLAKE3``), ``value`` hex."""

    algorithm: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "value": self.value}


@dataclass
class ProductRecord:
    """One product found by a search.

    ``datetime`` is the sensing start (UTC ISO 8601), ``size`` in bytes (None when unknown), ``footprint`` a GeoJSON
    geometry in WGS84 longitude/latitude degrees, ``checksums`` the service's checksums of the file at ``href``,
    ``filename`` the name the download is stored under.
    """

    id: str
    provider: str
    name: str
    href: str
    filename: str
    datetime: str | None = None
    platform: str | None = None
    mode: str | None = None
    polarizations: list[str] = field(default_factory=list)
    relative_orbit: int | None = None
    orbit_state: str | None = None
    product_type: str | None = None
    size: int | None = None
    footprint: dict[str, Any] | None = None
    checksums: list[Checksum] = field(default_factory=list)

    def to_stac(self) -> dict[str, Any]:
        """The record as a STAC Item (SAR and Satellite extensions; the asset carries size and checksums)."""
        props: dict[str, Any] = {"datetime": self.datetime, "title": self.name}
        for key, value in (
            ("platform", self.platform),
            ("sar:instrument_mode", self.mode),
            ("sar:polarizations", self.polarizations or None),
            ("sar:product_type", self.product_type),
            ("sat:relative_orbit", self.relative_orbit),
            ("sat:orbit_state", self.orbit_state),
        ):
            if value is not None:
                props[key] = value
        asset: dict[str, Any] = {"href": self.href, "roles": ["data"], "title": self.filename}
        if self.size is not None:
            asset["file:size"] = self.size
        if self.checksums:
            asset["sarpipe:checksums"] = [c.to_json() for c in self.checksums]
            mh = next((multihash(c) for c in self.checksums if multihash(c)), None)
            if mh:
                asset["file:checksum"] = mh
        item: dict[str, Any] = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": self.id,
            "geometry": self.footprint,
            "properties": props,
            "assets": {"product": asset},
            "links": [],
            "sarpipe:provider": self.provider,
        }
        bbox = geometry_bbox(self.footprint)
        if bbox:
            item["bbox"] = bbox
        return item


# ----------------------------------------------------------------------------------------- multihash (STAC file:)

#: multihash codes of the algorithms STAC's ``file:checksum`` uses (https://github.com/multiformats/multicodec)
MULTIHASH_CODES = {"SHA1": 0x11, "SHA256": 0x12, "SHA512": 0x13, "MD5": 0xD5, "BLAKE3": 0x1E}


def _varint(n: int) -> str:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return out.hex()


def multihash(c: Checksum) -> str | None:
    """``file:checksum`` text (multihash, hex) of a checksum, or None for an algorithm without a code here."""
    code = MULTIHASH_CODES.get(c.algorithm.upper())
    if code is None:
        return None
    return _varint(code) + _varint(len(c.value) // 2) + c.value.lower()


def parse_multihash(text: str) -> Checksum | None:
    """The checksum in a ``file:checksum`` multihash (hex), or None when it is not one sarpipe knows."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None

    def read(pos: int) -> tuple[int, int]:
        n = shift = 0
        while pos < len(raw):
            b = raw[pos]
            n |= (b & 0x7F) << shift
            pos += 1
            if not b & 0x80:
                return n, pos
            shift += 7
        raise ValueError("truncated varint")

    try:
        code, pos = read(0)
        length, pos = read(pos)
    except ValueError:
        return None
    names = {v: k for k, v in MULTIHASH_CODES.items()}
    if code not in names or len(raw) - pos != length:
        return None
    return Checksum(names[code], raw[pos:].hex())


# ------------------------------------------------------------------------------------------------- geometry


def bbox_polygon(bbox: list[float]) -> dict[str, Any]:
    """GeoJSON polygon of a ``[west, south, east, north]`` box (degrees), counter-clockwise."""
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _num(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def _ring(ring: list) -> str:
    return "(" + ",".join(f"{_num(p[0])} {_num(p[1])}" for p in ring) + ")"


def geojson_to_wkt(geom: dict[str, Any]) -> str:
    """WKT of a GeoJSON Point, Polygon or MultiPolygon (longitude first, as both formats say)."""
    t, c = geom.get("type"), geom.get("coordinates")
    if t == "Point":
        return f"POINT({_num(c[0])} {_num(c[1])})"
    if t == "Polygon":
        return "POLYGON(" + ",".join(_ring(r) for r in c) + ")"
    if t == "MultiPolygon":
        return "MULTIPOLYGON(" + ",".join("(" + ",".join(_ring(r) for r in p) + ")" for p in c) + ")"
    raise ValueError(f"a search area must be a Point, Polygon or MultiPolygon (got {t!r})")


_WKT = re.compile(r"^\s*(?:SRID=\d+;)?\s*(POINT|POLYGON|MULTIPOLYGON)\s*(\(.*\))\s*$", re.IGNORECASE | re.DOTALL)


def wkt_to_geojson(text: str) -> dict[str, Any]:
    """GeoJSON of a WKT POINT, POLYGON or MULTIPOLYGON (optionally ``SRID=4326;`` first, as OData writes it)."""
    m = _WKT.match(text)
    if not m:
        raise ValueError(f"not a WKT POINT, POLYGON or MULTIPOLYGON: {text[:60]!r}")
    kind, body = m.group(1).upper(), m.group(2)
    tokens = re.findall(r"\(|\)|[^(),\s]+(?:\s+[^(),\s]+)+", body)

    def parse(i: int) -> tuple[Any, int]:
        assert tokens[i] == "("
        items, i = [], i + 1
        while tokens[i] != ")":
            if tokens[i] == "(":
                sub, i = parse(i)
                items.append(sub)
            else:
                items.append([float(v) for v in tokens[i].split()][:2])
                i += 1
        return items, i + 1

    coords, _ = parse(0)
    if kind == "POINT":
        return {"type": "Point", "coordinates": coords[0]}
    return {"type": "Polygon" if kind == "POLYGON" else "MultiPolygon", "coordinates": coords}


def geometry_bbox(geom: dict[str, Any] | None) -> list[float] | None:
    """``[west, south, east, north]`` of a GeoJSON geometry (no antimeridian handling), or None."""
    if not geom or "coordinates" not in geom:
        return None
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        else:
            for sub in c:
                walk(sub)

    walk(geom["coordinates"])
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None


_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_size(text: str | None) -> int | None:
    """Bytes of a DHuS size text (``"1.62 GB"``; binary units, as DHuS computes them), or None."""
    if not text:
        return None
    m = re.match(r"^\s*([0-9.]+)\s*([KMGT]?B)\s*$", text, re.IGNORECASE)
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()]) if m else None


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return "?"
