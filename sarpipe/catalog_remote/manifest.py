"""``sarpipe-downloads.json`` in a download folder: the products ``sarpipe catalog fetch`` downloaded and verified
there (id, file, size, checksum), so that a rerun skips them and ``catalog:NAME`` finds them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST_NAME = "sarpipe-downloads.json"
MANIFEST_PRODUCT = "catalog-downloads"


def read_manifest(folder: Path) -> dict[str, Any]:
    p = folder / MANIFEST_NAME
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except (ValueError, OSError):
        return {}
    return data.get("products", {}) if isinstance(data, dict) else {}


def downloaded_files(folder: Path) -> list[Path]:
    """The verified downloads listed in ``folder``'s manifest that are still there, in download order."""
    return [folder / v["file"] for v in read_manifest(folder).values() if (folder / v.get("file", "")).is_file()]


def record_download(folder: Path, entry: str, downloaded: Any) -> None:
    """Add one verified download to the manifest (written atomically)."""
    from ..atomic import atomic_path
    from ..outputs import PRODUCT_ATTR

    products = read_manifest(folder)
    rec = downloaded.record
    products[rec.id] = {
        "file": downloaded.path.name,
        "name": rec.name,
        "provider": rec.provider,
        "size": os.path.getsize(downloaded.path),
        "verified": downloaded.verified,
        "checksums": [c.to_json() for c in rec.checksums],
        "href": rec.href,
    }
    text = json.dumps({PRODUCT_ATTR: MANIFEST_PRODUCT, "entry": entry, "products": products}, indent=1) + "\n"
    with atomic_path(folder / MANIFEST_NAME, option="--output") as tmp:
        tmp.write_text(text)
