"""Catalog providers (cdse, dhus, stac) and ``sarpipe catalog search|fetch`` against small HTTP servers on 127.0.0.1
that speak what the real services speak: CDSE OData ``$filter`` queries, the CDSE identity server's password grant
and ``Products(ID)/$value`` downloads; DHuS OpenSearch ``search?q=`` and its OData product record; a STAC API's
landing page and ``POST /search``. Downloads that drop mid-way (resumed with Range), carry a wrong checksum
(refused, kept aside), meet 429/503 (retried, Retry-After honoured) and credentials that are refused (exit 2, the
password never shown). Nothing here reaches a real host: a guard refuses any connection off the loopback."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sarpipe.catalog import load_catalog
from sarpipe.catalog_remote import retrying
from sarpipe.yamlconf import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import line_of, run_here, write  # noqa: E402

PASSWORD = "s3cret-Pa55word"  # noqa: S105 - a test credential: it must never appear in any output
PAYLOAD = random.Random(68).randbytes(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PRODUCT_ID = "2f6e52d6-8f1a-4ad0-9f0e-5d2c9e6b1a7c"
PRODUCT_NAME = "S1A_S3_RAW__0SDV_20240605T173012_20240605T173037_054195_069752_1A2B"
FOOTPRINT = {"type": "Polygon", "coordinates": [[[3.8, 51.7], [4.7, 51.7], [4.7, 52.2], [3.8, 52.2], [3.8, 51.7]]]}


# ------------------------------------------------------------------------------------------ no real hosts


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Refuse every connection that is not to 127.0.0.1 (the default endpoints are real URLs; tests override them)."""
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"test tried to reach {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_getaddrinfo(socket.getaddrinfo))


def _loopback_getaddrinfo(real):
    def getaddrinfo(host, *a, **k):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"test tried to resolve {host}")
        return real(host, *a, **k)

    return getaddrinfo


def test_guard_refuses_real_hosts():
    import requests

    with pytest.raises(AssertionError, match="tried to resolve catalogue.dataspace.copernicus.eu"):
        requests.get("https://catalogue.dataspace.copernicus.eu/odata/v1/Products", timeout=1)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for var in (
        "SARPIPE_CDSE_USER",
        "SARPIPE_CDSE_PASSWORD",
        "DHUS_USER",
        "DHUS_PASSWORD",
        "SARPIPE_DHUS_USER",
        "SARPIPE_DHUS_PASSWORD",
        "SARPIPE_STAC_USER",
        "SARPIPE_STAC_PASSWORD",
    ):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no real ~/.netrc
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def waits(monkeypatch):
    """The retry waits asked for, recorded instead of slept."""
    got: list[float] = []
    monkeypatch.setattr(retrying, "_sleep", got.append)
    return got


# ------------------------------------------------------------------------------------------ a tiny server


class Service:
    """An HTTP server on 127.0.0.1 in a thread; ``handle(req)`` answers, ``requests`` keeps what it received."""

    def __init__(self, handle):
        self.handle = handle
        self.requests: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                u = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = {
                    "method": self.command,
                    "path": u.path,
                    "query": {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "handler": self,
                }
                service.requests.append(req)
                answer = service.handle(req)
                if answer is None:  # the handler wrote (or dropped) the response itself
                    return
                status, headers, data = answer
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def received(self, method, path):
        return [r for r in self.requests if r["method"] == method and r["path"] == path]


@pytest.fixture
def serve():
    services = []

    def start(handle):
        s = Service(handle)
        services.append(s)
        return s

    yield start
    for s in services:
        s.close()


def file_answer(req, payload=PAYLOAD):
    """The payload, or its tail for ``Range: bytes=N-`` (206 with Content-Range), as HTTP servers do."""
    rng = req["headers"].get("range")
    if rng:
        start = int(rng.removeprefix("bytes=").split("-")[0])
        if start >= len(payload):
            return 416, {"Content-Range": f"bytes */{len(payload)}"}, b""
        return 206, {"Content-Range": f"bytes {start}-{len(payload) - 1}/{len(payload)}"}, payload[start:]
    return 200, {"Content-Type": "application/zip"}, payload


def drop_after(req, n):
    """Send the headers of the whole file, ``n`` bytes of it, then drop the connection."""
    h = req["handler"]
    h.send_response(200)
    h.send_header("Content-Length", str(len(PAYLOAD)))
    h.end_headers()
    h.wfile.write(PAYLOAD[:n])
    h.wfile.flush()
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


# ------------------------------------------------------------------------------------------ CDSE

TOKEN = "eyJhbGciOi.fake-access-token"


def cdse_product(checksum_md5=MD5):
    """One product as the CDSE OData catalogue returns it (with $expand=Attributes)."""
    return {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": PRODUCT_ID,
        "Name": PRODUCT_NAME + ".SAFE",
        "ContentType": "application/octet-stream",
        "ContentLength": len(PAYLOAD),
        "OriginDate": "2024-06-05T18:40:11.000Z",
        "PublicationDate": "2024-06-05T18:52:41.446Z",
        "ModificationDate": "2024-06-05T18:52:41.446Z",
        "Online": True,
        "EvictionDate": "",
        "S3Path": f"/eodata/Sentinel-1/SAR/S3_RAW__0S/2024/06/05/{PRODUCT_NAME}.SAFE",
        "Checksum": [
            {"Value": checksum_md5, "Algorithm": "MD5", "ChecksumDate": "2024-06-05T18:52:40.000Z"},
            {"Value": "ab" * 32, "Algorithm": "BLAKE3", "ChecksumDate": "2024-06-05T18:52:40.000Z"},
        ],
        "ContentDate": {"Start": "2024-06-05T17:30:12.345Z", "End": "2024-06-05T17:30:37.123Z"},
        "Footprint": "geography'SRID=4326;POLYGON ((3.8 51.7, 4.7 51.7, 4.7 52.2, 3.8 52.2, 3.8 51.7))'",
        "GeoFootprint": FOOTPRINT,
        "Attributes": [
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "operationalMode",
                "Value": "SM",
                "ValueType": "String",
            },
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "polarisationChannels",
                "Value": "VV&VH",
                "ValueType": "String",
            },
            {
                "@odata.type": "#OData.CSC.IntegerAttribute",
                "Name": "relativeOrbitNumber",
                "Value": 37,
                "ValueType": "Integer",
            },
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "orbitDirection",
                "Value": "ASCENDING",
                "ValueType": "String",
            },
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "platformShortName",
                "Value": "SENTINEL-1",
                "ValueType": "String",
            },
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "platformSerialIdentifier",
                "Value": "A",
                "ValueType": "String",
            },
            {
                "@odata.type": "#OData.CSC.StringAttribute",
                "Name": "productType",
                "Value": "S3_RAW__0S",
                "ValueType": "String",
            },
        ],
    }


def cdse(download=file_answer, checksum_md5=MD5):
    """A CDSE stand-in: catalogue, identity server (user 'alice', PASSWORD) and download service on one host."""

    def handle(req):
        p = req["path"]
        if p == "/odata/v1/Products" and req["method"] == "GET":
            return (
                200,
                {},
                {"@odata.context": "$metadata#Products(Attributes())", "value": [cdse_product(checksum_md5)]},
            )
        if p == "/auth/realms/CDSE/protocol/openid-connect/token" and req["method"] == "POST":
            form = {k: v[0] for k, v in parse_qs(req["body"].decode()).items()}
            if form == {
                "client_id": "cdse-public",
                "username": "alice",
                "password": PASSWORD,
                "grant_type": "password",
            }:
                return (
                    200,
                    {},
                    {
                        "access_token": TOKEN,
                        "expires_in": 600,
                        "refresh_expires_in": 3600,
                        "refresh_token": "r",
                        "token_type": "Bearer",
                    },
                )
            return 401, {}, {"error": "invalid_grant", "error_description": "Invalid user credentials"}
        if p == f"/odata/v1/Products({PRODUCT_ID})/$value":
            if req["headers"].get("authorization") != f"Bearer {TOKEN}":
                return 401, {}, {"detail": "Unauthorized"}
            return download(req)
        return 404, {}, {"detail": "Not Found"}

    return handle


def cdse_catalog(tmp_path, url, retry="{attempts: 4, backoff_s: 0.5}", extra=""):
    return write(
        tmp_path / "cat.yaml",
        f"""
        entries:
          rotterdam_sm:
            kind: remote
            provider: cdse
            url: {url}
            retry: {retry}
            query:
              collection: SENTINEL-1
              bbox: [3.9, 51.8, 4.6, 52.1]
              datetime: 2024-06-01/2024-06-30
              sar:instrument_mode: SM
              sar:product_type: RAW
              sar:polarizations: [VV, VH]
              sat:relative_orbit: 37
              limit: 5
        {extra}
        """,
    )


#: the $filter the entry above means, written out by hand from the CDSE OData documentation
EXPECTED_FILTER = (
    "Collection/Name eq 'SENTINEL-1'"
    " and OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((3.9 51.8,4.6 51.8,4.6 52.1,3.9 52.1,3.9 51.8))')"
    " and ContentDate/Start ge 2024-06-01T00:00:00.000Z and ContentDate/Start le 2024-06-30T23:59:59.999Z"
    " and contains(Name,'_RAW')"
    " and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'operationalMode'"
    " and att/OData.CSC.StringAttribute/Value eq 'SM')"
    " and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'polarisationChannels'"
    " and att/OData.CSC.StringAttribute/Value eq 'VV&VH')"
    " and Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber'"
    " and att/OData.CSC.IntegerAttribute/Value eq 37)"
)


def test_cdse_search_sends_the_odata_filter_and_prints_the_table(serve, tmp_path, capsys, monkeypatch):
    s = serve(cdse())
    cat = cdse_catalog(tmp_path, s.url)
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "search", "rotterdam_sm", "--catalog", cat)
    assert code == 0, err
    (q,) = s.received("GET", "/odata/v1/Products")
    assert q["query"]["$filter"] == EXPECTED_FILTER
    assert q["query"]["$top"] == "5" and q["query"]["$orderby"] == "ContentDate/Start desc"
    assert q["query"]["$expand"] == "Attributes"
    head, row = out.splitlines()
    assert head.split() == ["id", "time", "mode", "polarisations", "orbit", "size", "footprint"]
    assert row.split() == [
        PRODUCT_ID,
        "2024-06-05T17:30:12.345Z",
        "SM",
        "VV+VH",
        "37",
        "292.97",
        "KiB",
        "bbox",
        "3.80,51.70,4.70,52.20",
    ]
    assert not s.received("POST", "/auth/realms/CDSE/protocol/openid-connect/token"), "search needs no token"

    code, out, _ = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "search", "rotterdam_sm", "--catalog", cat, "--limit", "2", "--json"
    )
    assert code == 0 and s.requests[-1]["query"]["$top"] == "2"
    (item,) = json.loads(out)["features"]
    assert item["id"] == PRODUCT_ID and item["geometry"] == FOOTPRINT
    p = item["properties"]
    assert p["sar:instrument_mode"] == "SM" and p["sar:polarizations"] == ["VV", "VH"]
    assert p["sat:relative_orbit"] == 37 and p["platform"] == "sentinel-1a" and p["sat:orbit_state"] == "ascending"
    asset = item["assets"]["product"]
    assert asset["href"] == f"{s.url}/odata/v1/Products({PRODUCT_ID})/$value" and asset["file:size"] == len(PAYLOAD)
    assert asset["file:checksum"] == "d50110" + MD5, "multihash: md5 code 0xd5 (varint d501), 16 bytes"


def test_cdse_fetch_resumes_a_dropped_download_and_verifies(serve, tmp_path, capsys, monkeypatch, waits):
    state = {"drop": True}

    def download(req):
        if state["drop"]:
            return drop_after(req, 120_000)
        return file_answer(req)

    s = serve(cdse(download))
    cat = cdse_catalog(tmp_path, s.url, retry="{attempts: 1}")  # no retry: the rerun must resume
    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD)
    dest = tmp_path / "dl"
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", dest, "--catalog", cat
    )
    assert code == 2 and "connection lost" in err and PASSWORD not in out + err
    part = dest / f"{PRODUCT_NAME}.SAFE.zip.part"
    kept = part.stat().st_size
    assert 0 < kept <= 120_000 and part.read_bytes() == PAYLOAD[:kept], "the partial file is kept"
    assert not (dest / f"{PRODUCT_NAME}.SAFE.zip").exists()

    state["drop"] = False
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", dest, "--catalog", cat, "-q"
    )
    assert code == 0, err
    last = s.received("GET", f"/odata/v1/Products({PRODUCT_ID})/$value")[-1]
    assert last["headers"]["range"] == f"bytes={kept}-", "the rerun asks only for the missing bytes"
    final = dest / f"{PRODUCT_NAME}.SAFE.zip"
    assert out.strip() == str(final)
    assert hashlib.md5(final.read_bytes()).hexdigest() == MD5 and not part.exists()
    assert "MD5 verified" in err and "BLAKE3" in err, "the BLAKE3 checksum it could not compute is named"
    assert waits == []

    # a second fetch finds it downloaded and verified: no new download
    n = len(s.requests)
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", dest, "--catalog", cat, "-q"
    )
    assert code == 0 and "already downloaded" in err
    assert not [r for r in s.requests[n:] if r["path"].endswith("$value")]


def test_cdse_fetch_retries_429_and_503_honouring_retry_after(serve, tmp_path, capsys, monkeypatch, waits):
    answers = iter([(429, {"Retry-After": "3"}, b"slow down"), (503, {}, b"busy")])

    def download(req):
        return next(answers, None) or file_answer(req)

    s = serve(cdse(download))
    cat = cdse_catalog(tmp_path, s.url, retry="{attempts: 4, backoff_s: 0.5}")
    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD)
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "d", "--catalog", cat, "-q"
    )
    assert code == 0, err
    # first wait: the server's Retry-After (3 s); second: backoff_s * 2**1 = 1 s
    assert waits == [3.0, 1.0]
    assert len(s.received("GET", f"/odata/v1/Products({PRODUCT_ID})/$value")) == 3
    assert hashlib.md5((tmp_path / "d" / f"{PRODUCT_NAME}.SAFE.zip").read_bytes()).hexdigest() == MD5

    # a server that never recovers: the total is bounded
    answers = iter([(503, {}, b"busy")] * 10)
    s.handle = cdse(lambda req: next(answers))
    waits.clear()
    code, _, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "e", "--catalog", cat, "-q"
    )
    assert code == 2 and "gave up after 4 attempts" in err and waits == [0.5, 1.0, 2.0]


def test_cdse_fetch_refuses_a_wrong_checksum(serve, tmp_path, capsys, monkeypatch, waits):
    s = serve(cdse(checksum_md5="0" * 32))
    cat = cdse_catalog(tmp_path, s.url)
    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD)
    dest = tmp_path / "dl"
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", dest, "--catalog", cat, "-q"
    )
    assert code == 2 and err.startswith("error: rotterdam_sm:") and "does not match" in err
    assert f"MD5 {MD5}, the catalog says {'0' * 32}" in err
    rejected = dest / f"{PRODUCT_NAME}.SAFE.zip.rejected"
    assert rejected.read_bytes() == PAYLOAD, "the refused download is kept aside"
    assert not (dest / f"{PRODUCT_NAME}.SAFE.zip").exists() and not (dest / f"{PRODUCT_NAME}.SAFE.zip.part").exists()
    assert load_catalog(cat).entry_path("rotterdam_sm") is None, "nothing verified: no product for catalog:NAME"


def test_cdse_refused_credentials_never_show_the_password(serve, tmp_path, capsys, monkeypatch, caplog):
    s = serve(cdse())
    cat = cdse_catalog(tmp_path, s.url)
    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD + "-wrong")
    caplog.set_level(logging.DEBUG)
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "d", "--catalog", cat
    )
    assert code == 2
    assert "refused the credentials from the environment (SARPIPE_CDSE_USER, SARPIPE_CDSE_PASSWORD)" in err
    assert "Invalid user credentials" in err
    assert PASSWORD not in out + err + caplog.text
    assert not s.received("GET", f"/odata/v1/Products({PRODUCT_ID})/$value")

    # none at all: the message says where they may come from
    monkeypatch.delenv("SARPIPE_CDSE_PASSWORD")
    code, _, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "d", "--catalog", cat
    )
    assert code == 2 and "no credentials for cdse" in err and ".netrc" in err


def test_credentials_from_netrc(serve, tmp_path, capsys, monkeypatch, waits):
    s = serve(cdse())
    cat = cdse_catalog(tmp_path, s.url)
    netrc = Path.home() / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {PASSWORD}\n")
    netrc.chmod(0o600)
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "d", "--catalog", cat, "-q"
    )
    assert code == 0, err
    (tok,) = s.received("POST", "/auth/realms/CDSE/protocol/openid-connect/token")
    assert parse_qs(tok["body"].decode())["password"] == [PASSWORD]
    assert PASSWORD not in out + err

    netrc.write_text(f"machine 127.0.0.1 login alice password {PASSWORD} bogus\n")
    code, _, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "e", "--catalog", cat, "-q"
    )
    assert code == 2 and ".netrc: cannot parse this file (line" in err and PASSWORD not in err


def test_catalog_refuses_credentials_and_unknown_providers(tmp_path):
    path = write(
        tmp_path / "cat.yaml",
        f"""
        entries:
          a:
            kind: remote
            provider: cdse
            password: {PASSWORD}
            query: {{collection: SENTINEL-1}}
          b:
            kind: remote
            provider: dhus
            query: {{collection: SENTINEL-1}}
          c:
            kind: remote
            provider: asf
          d:
            kind: remote
            provider: stac
            url: http://127.0.0.1:1/
            query: {{wkt: "POLYGON((1 2, 3 4", bbox: [0, 0, 1, 1]}}
        """,
    )
    with pytest.raises(ConfigError) as exc:
        load_catalog(path)
    text = "\n".join(exc.value.problems)
    assert f"cat.yaml:{line_of(path, 'password')}:" in text and "entries.a.password: credentials are never read" in text
    assert PASSWORD not in text
    assert "has no default endpoint: give 'url' (the DHuS api_url" in text
    assert f"cat.yaml:{line_of(path, 'asf')}:" in text and "unknown catalog provider 'asf'" in text
    assert "not a WKT POINT, POLYGON or MULTIPOLYGON" in text


def test_catalog_input_is_the_fetched_product(serve, tmp_path, capsys, monkeypatch, waits):
    from sarpipe.pipeline.schema import load_pipeline

    s = serve(cdse())
    cat = cdse_catalog(tmp_path, s.url, extra="")
    pipe = write(
        tmp_path / "p.yaml",
        """
        name: from_cdse
        output_dir: runs
        catalog: cat.yaml
        steps:
          - name: slc
            stage: focus
            inputs: {raw: catalog:rotterdam_sm}
        """,
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_pipeline(pipe)
    assert "run `sarpipe catalog fetch rotterdam_sm` first" in str(exc.value)
    assert f"p.yaml:{line_of(pipe, 'catalog:rotterdam_sm')}:" in str(exc.value)

    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD)
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "--catalog", cat, "-q")
    assert code == 0, err
    product = tmp_path / "downloads" / "rotterdam_sm" / f"{PRODUCT_NAME}.SAFE.zip"
    assert out.strip() == str(product), "without -o the entry's download_dir (default downloads/NAME)"
    pipeline = load_pipeline(pipe)
    assert pipeline.catalog.entry_path("rotterdam_sm") == product
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", pipe, "--dry-run")
    assert code == 0 and "would run 1 step" in out, err
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "show", "rotterdam_sm", "--catalog", cat)
    assert code == 0 and f"downloaded: {product}" in out


# ------------------------------------------------------------------------------------------ DHuS


def dhus_entry(uuid, title):
    """One OpenSearch entry as DHuS's JSON feed gives it."""
    base = "{url}/dhus/odata/v1/Products('" + uuid + "')"
    return {
        "title": title,
        "link": [
            {"href": base + "/$value"},
            {"rel": "alternative", "href": base + "/"},
            {"rel": "icon", "href": base + "/Products('Quicklook')/$value"},
        ],
        "id": uuid,
        "summary": "Date: 2024-06-05T17:30:12.345Z, Instrument: SAR-C SAR, Mode: VV VH, Satellite: Sentinel-1, Size: 292.97 KB",
        "date": [
            {"name": "ingestiondate", "content": "2024-06-05T18:52:41.446Z"},
            {"name": "beginposition", "content": "2024-06-05T17:30:12.345Z"},
            {"name": "endposition", "content": "2024-06-05T17:30:37.123Z"},
        ],
        "int": [{"name": "orbitnumber", "content": "54195"}, {"name": "relativeorbitnumber", "content": "37"}],
        "str": [
            {"name": "sensoroperationalmode", "content": "SM"},
            {"name": "orbitdirection", "content": "ASCENDING"},
            {"name": "producttype", "content": "RAW"},
            {"name": "platformname", "content": "Sentinel-1"},
            {"name": "polarisationmode", "content": "VV VH"},
            {"name": "size", "content": "292.97 KB"},
            {"name": "footprint", "content": "POLYGON ((3.8 51.7,4.7 51.7,4.7 52.2,3.8 52.2,3.8 51.7))"},
            {"name": "identifier", "content": title},
            {"name": "uuid", "content": uuid},
        ],
    }


def dhus(url_box, busy=0):
    busy_left = [busy]

    def authorised(req):
        import base64

        return req["headers"].get("authorization") == "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()

    def handle(req):
        if not authorised(req):
            return 401, {"WWW-Authenticate": 'Basic realm="DHuS"'}, b"<html><body>Unauthorized</body></html>"
        p = req["path"]
        if p == "/dhus/search" and busy_left[0]:
            busy_left[0] -= 1
            return 503, {"Retry-After": "2"}, b"<html><body>Service Unavailable</body></html>"
        if p == "/dhus/search":
            entry = json.loads(json.dumps(dhus_entry(PRODUCT_ID, PRODUCT_NAME)).replace("{url}", url_box[0]))
            # DHuS sends a single entry as an object, not a list
            return (
                200,
                {},
                {
                    "feed": {
                        "opensearch:totalResults": "1",
                        "opensearch:startIndex": "0",
                        "opensearch:itemsPerPage": "2",
                        "entry": entry,
                    }
                },
            )
        if p == f"/dhus/odata/v1/Products('{PRODUCT_ID}')" and req["query"].get("$format") == "json":
            return (
                200,
                {},
                {
                    "d": {
                        "__metadata": {"media_src": f"{url_box[0]}/dhus/odata/v1/Products('{PRODUCT_ID}')/$value"},
                        "Id": PRODUCT_ID,
                        "Name": PRODUCT_NAME,
                        "ContentLength": str(len(PAYLOAD)),
                        "Checksum": {"Algorithm": "MD5", "Value": MD5.upper()},
                        "ContentDate": {"Start": "/Date(1717608612345)/", "End": "/Date(1717608637123)/"},
                        "ContentGeometry": '<gml:Polygon srsName="http://www.opengis.net/gml/srs/epsg.xml#4326" '
                        'xmlns:gml="http://www.opengis.net/gml"><gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>'
                        "51.7,3.8 51.7,4.7 52.2,4.7 52.2,3.8 51.7,3.8</gml:coordinates></gml:LinearRing>"
                        "</gml:outerBoundaryIs></gml:Polygon>",
                        "CreationDate": "/Date(1717613561446)/",
                        "IngestionDate": "/Date(1717613561446)/",
                        "Online": True,
                        "Attributes": {"results": []},
                    }
                },
            )
        if p == f"/dhus/odata/v1/Products('{PRODUCT_ID}')/$value":
            return file_answer(req)
        return 404, {}, b"not found"

    return handle


def test_dhus_search_and_fetch_through_sentinelsat(serve, tmp_path, capsys, monkeypatch, waits):
    box = [""]
    s = serve(dhus(box, busy=1))
    box[0] = s.url
    cat = write(
        tmp_path / "cat.yaml",
        f"""
        entries:
          hub:
            kind: remote
            provider: dhus
            url: {s.url}/dhus/
            query:
              collection: SENTINEL-1
              wkt: POLYGON((3.9 51.8, 4.6 51.8, 4.6 52.1, 3.9 52.1, 3.9 51.8))
              datetime: 2024-06-01/2024-06-30
              sar:instrument_mode: SM
              sar:product_type: RAW
              sar:polarizations: [VV, VH]
              limit: 2
        """,
    )
    monkeypatch.setenv("DHUS_USER", "bob")
    monkeypatch.setenv("DHUS_PASSWORD", PASSWORD)
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "search", "hub", "--catalog", cat)
    assert code == 0, err
    assert waits == [2.0], "the hub's 503 is retried after its Retry-After"
    busy, q = s.received("GET", "/dhus/search")
    assert busy["query"] == q["query"]
    # DHuS full-text (Solr) search syntax: quoted values, keywords sorted as sentinelsat writes them, the area last
    assert q["query"]["q"] == (
        'beginPosition:["2024-06-01T00:00:00.000Z" TO "2024-06-30T23:59:59.999Z"] platformname:"Sentinel-1"'
        ' polarisationmode:"VV VH" producttype:"RAW" sensoroperationalmode:"SM"'
        ' footprint:"Intersects(POLYGON((3.9 51.8,4.6 51.8,4.6 52.1,3.9 52.1,3.9 51.8)))"'
    )
    assert (
        q["query"]["rows"] == "2" and q["query"]["format"] == "json" and q["query"]["orderby"] == "beginposition desc"
    )
    row = out.splitlines()[1].split()
    assert row[:5] == [PRODUCT_ID, "2024-06-05T17:30:12.345Z", "SM", "VV+VH", "37"]

    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "hub", "-o", tmp_path / "d", "--catalog", cat, "-q"
    )
    assert code == 0, err
    got = tmp_path / "d" / f"{PRODUCT_NAME}.zip"
    assert got.read_bytes() == PAYLOAD and "MD5 verified" in err

    monkeypatch.setenv("DHUS_PASSWORD", PASSWORD + "x")
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "search", "hub", "--catalog", cat)
    assert code == 2 and "refused the credentials from the environment (DHUS_USER, DHUS_PASSWORD)" in err
    assert PASSWORD not in out + err


# ------------------------------------------------------------------------------------------ STAC


def stac(url_box):
    def handle(req):
        base = url_box[0]
        if req["path"] == "/" and req["method"] == "GET":
            return (
                200,
                {},
                {
                    "type": "Catalog",
                    "id": "fake",
                    "description": "a STAC API stand-in",
                    "stac_version": "1.0.0",
                    "conformsTo": [
                        "https://api.stacspec.org/v1.0.0/core",
                        "https://api.stacspec.org/v1.0.0/item-search",
                        "https://api.stacspec.org/v1.0.0/item-search#filter",
                        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
                        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
                        "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
                    ],
                    "links": [
                        {"rel": "self", "href": base + "/", "type": "application/json"},
                        {"rel": "root", "href": base + "/", "type": "application/json"},
                        {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"},
                    ],
                },
            )
        if req["path"] == "/search" and req["method"] == "POST":

            def item(i, pols):
                return {
                    "type": "Feature",
                    "stac_version": "1.0.0",
                    "id": f"S1A_SM_{i}",
                    "collection": "sentinel-1-raw",
                    "geometry": FOOTPRINT,
                    "bbox": [3.8, 51.7, 4.7, 52.2],
                    "properties": {
                        "datetime": "2024-06-05T17:30:12.345Z",
                        "platform": "sentinel-1a",
                        "sar:instrument_mode": "SM",
                        "sar:polarizations": pols,
                        "sat:relative_orbit": 37,
                    },
                    "assets": {
                        "thumbnail": {"href": base + "/thumb.png", "roles": ["thumbnail"]},
                        "product": {
                            "href": f"{base}/data/S1A_SM_{i}.zip",
                            "roles": ["data"],
                            "file:size": len(PAYLOAD),
                            "file:checksum": "1220" + SHA256,
                        },
                    },
                    "links": [],
                }

            return (
                200,
                {},
                {"type": "FeatureCollection", "features": [item(1, ["VV", "VH"]), item(2, ["HH"])], "links": []},
            )
        if req["path"].startswith("/data/"):
            return file_answer(req)
        return 404, {}, {"code": "NotFound"}

    return handle


def test_stac_search_posts_the_query_and_fetches_the_data_asset(serve, tmp_path, capsys, monkeypatch, waits):
    box = [""]
    s = serve(stac(box))
    box[0] = s.url
    cat = write(
        tmp_path / "cat.yaml",
        f"""
        entries:
          items:
            kind: remote
            provider: stac
            url: {s.url}/
            query:
              collection: sentinel-1-raw
              bbox: [3.9, 51.8, 4.6, 52.1]
              datetime: 2024-06-01/2024-06-30
              sar:instrument_mode: SM
              sar:polarizations: [VV]
              limit: 3
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "search", "items", "--catalog", cat, "--json")
    assert code == 0, err
    (q,) = s.received("POST", "/search")
    body = json.loads(q["body"])
    assert body["collections"] == ["sentinel-1-raw"] and body["bbox"] == [3.9, 51.8, 4.6, 52.1]
    assert body["datetime"] == "2024-06-01T00:00:00.000Z/2024-06-30T23:59:59.999Z"
    assert body["limit"] == 3
    assert body["filter"] == {"op": "=", "args": [{"property": "sar:instrument_mode"}, "SM"]}
    assert body["filter-lang"] == "cql2-json"
    ids = [f["id"] for f in json.loads(out)["features"]]
    assert ids == ["S1A_SM_1"], "the HH-only item does not have the VV the query asks for"

    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "items", "-o", tmp_path / "d", "--catalog", cat, "-q"
    )
    assert code == 0, err
    assert (tmp_path / "d" / "S1A_SM_1.zip").read_bytes() == PAYLOAD and "SHA256 verified" in err

    # and by id, asking the entry's provider
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "S1A_SM_1", "-o", tmp_path / "e", "--catalog", cat, "-q"
    )
    assert code == 0, err
    assert json.loads(s.received("POST", "/search")[-1]["body"])["ids"] == ["S1A_SM_1"]


def test_a_dropped_connection_is_resumed_within_the_run(serve, tmp_path, capsys, monkeypatch, waits):
    answers = iter([lambda req: drop_after(req, 90_000), lambda req: (503, {}, b"busy")])

    def download(req):
        return next(answers, file_answer)(req)

    s = serve(cdse(download))
    cat = cdse_catalog(tmp_path, s.url, retry="{attempts: 5, backoff_s: 0.25}")
    monkeypatch.setenv("SARPIPE_CDSE_USER", "alice")
    monkeypatch.setenv("SARPIPE_CDSE_PASSWORD", PASSWORD)
    code, out, err = run_here(
        capsys, monkeypatch, tmp_path, "catalog", "fetch", "rotterdam_sm", "-o", tmp_path / "d", "--catalog", cat, "-q"
    )
    assert code == 0, err
    first, second, third = s.received("GET", f"/odata/v1/Products({PRODUCT_ID})/$value")
    assert "range" not in first["headers"]
    kept = int(second["headers"]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < kept <= 90_000 and third["headers"]["range"] == f"bytes={kept}-", "each new try resumes"
    assert waits == [0.25, 0.5], "exponential backoff between the tries"
    assert hashlib.md5((tmp_path / "d" / f"{PRODUCT_NAME}.SAFE.zip").read_bytes()).hexdigest() == MD5


def test_third_party_provider_from_the_entry_point_group(tmp_path, monkeypatch, capsys):
    """A provider registered under ``sarpipe.catalog_providers`` is validated and searched like a built-in."""
    import importlib.metadata as md
    import types

    from sarpipe.catalog_remote import providers
    from sarpipe.catalog_remote.providers import PROVIDER_ENTRY_POINT_GROUP, CatalogProvider
    from sarpipe.catalog_remote.records import ProductRecord

    class ArchiveProvider(CatalogProvider):
        name = "archive"
        default_url = "http://127.0.0.1:9"

        def search(self, limit=None):
            return [
                ProductRecord(
                    id=f"{self.query.collection}-{i}", provider=self.name, name="n", href="", filename="f", mode="SM"
                )
                for i in range(limit or 2)
            ]

    mod = types.ModuleType("fake_archive_provider")
    mod.ArchiveProvider = ArchiveProvider
    monkeypatch.setitem(sys.modules, "fake_archive_provider", mod)
    ep = md.EntryPoint("archive", "fake_archive_provider:ArchiveProvider", PROVIDER_ENTRY_POINT_GROUP)
    real = md.entry_points
    monkeypatch.setattr(
        md, "entry_points", lambda **kw: [ep] if kw.get("group") == PROVIDER_ENTRY_POINT_GROUP else real(**kw)
    )
    monkeypatch.setattr(providers, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(providers, "_REGISTERED", {})
    monkeypatch.setattr(providers, "_LOADED", {})
    assert "archive" in providers.provider_names()
    cat = write(tmp_path / "cat.yaml", "entries:\n  a: {kind: remote, provider: archive, query: {collection: X}}\n")
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "catalog", "search", "a", "--catalog", cat, "--limit", "3")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["X-0", "X-1", "X-2"]


def test_credentials_follow_redirects_only_within_the_site():
    from sarpipe.catalog_remote.download import _same_site

    a = "https://download.dataspace.copernicus.eu/odata/v1/Products(1)/$value"
    assert _same_site(a, "https://zipper.dataspace.copernicus.eu/download/1")
    assert not _same_site(a, "https://s3.example.com/bucket/1")
    assert not _same_site("http://127.0.0.1:80/x", "http://127.0.0.2:80/x")
