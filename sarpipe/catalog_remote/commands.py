"""The bodies of ``sarpipe catalog search`` and ``sarpipe catalog fetch``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError
from .credentials import redact
from .download import Downloaded, Progress, RichProgress, download_product
from .providers import CatalogProvider, provider_class
from .records import ProductRecord, geometry_bbox, human_size


def open_provider(catalog: Any, name: str) -> CatalogProvider:
    """The provider of remote entry ``name`` of a loaded catalog."""
    e = catalog.get(name)
    if e.kind != "remote":
        raise InputError(f"catalog entry {name!r} is {e.kind}, not a remote search", where=str(catalog.path))
    return provider_class(e.provider)(e, entry_name=name)


@contextmanager
def secrets_hidden(provider: CatalogProvider) -> Iterator[None]:
    """Whatever goes wrong inside, its message reaches the user without the provider's password or tokens."""
    try:
        yield
    except InputError as exc:
        secrets = provider.secrets()
        text = str(exc)
        if any(s and s in text for s in secrets):
            raise InputError(redact(text, secrets)) from None
        raise
    except Exception as exc:
        secrets = provider.secrets()
        if any(s and s in str(exc) for s in secrets):
            raise RuntimeError(f"{type(exc).__name__}: {redact(str(exc), secrets)}") from None
        raise


def search(catalog: Any, name: str, limit: int | None) -> list[ProductRecord]:
    provider = open_provider(catalog, name)
    with secrets_hidden(provider):
        return provider.search(limit)


def _footprint(r: ProductRecord) -> str:
    b = geometry_bbox(r.footprint)
    return "" if b is None else "bbox " + ",".join(f"{v:.2f}" for v in b)


def table(records: list[ProductRecord]) -> str:
    """A text table: id, sensing time, mode, polarisations, relative orbit, size, footprint (bounding box)."""
    head = ["id", "time", "mode", "polarisations", "orbit", "size", "footprint"]
    rows = [
        [
            r.id,
            r.datetime or "",
            r.mode or "",
            "+".join(r.polarizations),
            "" if r.relative_orbit is None else str(r.relative_orbit),
            human_size(r.size),
            _footprint(r),
        ]
        for r in records
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join([fmt.format(*head)] + [fmt.format(*row) for row in rows])


def print_search(records: list[ProductRecord], as_json: bool) -> None:
    if as_json:
        out = {"type": "FeatureCollection", "features": [r.to_stac() for r in records]}
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
    elif records:
        sys.stdout.write(table(records) + "\n")
    else:
        sys.stderr.write("no products match this search\n")


def _entry_for_id(catalog: Any, product_id: str, entry: str | None) -> str:
    if entry is not None:
        return entry
    remote = [n for n, e in catalog.entries.items() if e.kind == "remote"]
    if len(remote) == 1:
        return remote[0]
    known = ", ".join(catalog.entries) or "none"
    raise InputError(
        f"{product_id!r} is no catalog entry (entries: {known}); to fetch a product by id, say which remote "
        "entry's provider to ask with --entry NAME",
        where="NAME|ID",
    )


def fetch(
    catalog: Any, target: str, *, output: Path | None, entry: str | None, limit: int | None, quiet: bool
) -> list[Downloaded]:
    """Download the products of remote entry ``target`` (its search), or the product with id ``target``."""
    from .manifest import read_manifest, record_download

    name = target if target in catalog else _entry_for_id(catalog, target, entry)
    provider = open_provider(catalog, name)
    folder = Path(output) if output is not None else catalog.download_dir(name)
    done: list[Downloaded] = []
    with secrets_hidden(provider):
        records = provider.search(limit) if target in catalog else [provider.lookup(target)]
        if not records:
            raise InputError(f"the search of catalog entry {name!r} finds no products: nothing to fetch")
        for rec in records:
            listed = read_manifest(folder).get(rec.id)
            if listed and (folder / listed["file"]).is_file():
                sys.stderr.write(f"{rec.id}: already downloaded and verified ({folder / listed['file']})\n")
                sys.stdout.write(f"{folder / listed['file']}\n")
                continue
            final = folder / Path(rec.filename).name
            if final.exists():
                raise InputError(
                    f"{final} exists and was not downloaded by sarpipe; move it away or choose another -o",
                    where="--output",
                )
            progress: Progress = Progress() if quiet else RichProgress()
            got = download_product(provider, rec, folder, progress=progress)
            record_download(folder, name, got)
            note = f"{got.verified} verified" if got.verified not in ("size", "none") else f"{got.verified} only"
            if got.skipped:
                note += f"; not verified: {', '.join(got.skipped)} (not computable here: hashlib has no BLAKE3; pip install blake3)"
            sys.stderr.write(f"{rec.id}: {got.path} ({note})\n")
            sys.stdout.write(f"{got.path}\n")
            done.append(got)
    return done
