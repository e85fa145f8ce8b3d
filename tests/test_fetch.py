"""annex.fetch against a real HTTP server on 127.0.0.1 (no mocks): what is saved, what is refused, and that a
failure leaves the previous snapshot byte for byte."""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import shutil
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from annex.facility_files import read_facility_file
from annex.fetch import ConfigError, fetch_all, load_config, register_cli, settings
from annex.reference import facility_file_plan

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "raw"
NET = Path("reference/iryo_joho_net")
OLD = NET / "01-1_hospital_facility_info_20250601.csv.zip"
NEW_NAME = "01-1_hospital_facility_info_20260601"
NEW = NET / f"{NEW_NAME}.csv.zip"
MEIBO = RAW / "reference/kouseikyoku/shisetsu-touhoku-ika-r0808.xlsx"
LIMITS = {"max_download_mb": 0.25, "max_uncompressed_mb": 8, "timeout_seconds": 0.3, "max_seconds_per_try": 5,
          "attempts": 3, "backoff_seconds": 0.01}


# ------------------------------------------------------------------------------------------ the local server

class Server:
    """Routes: path -> list of responses, served in turn (the last one repeats). A response is a dict:
    status, body, headers, delay (seconds before answering), length (Content-Length to claim; None = omit)."""

    def __init__(self):
        self.routes: dict[str, list[dict]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"   # one request per connection: a short body ends with the close

            def do_GET(self):
                n = server.hits.get(self.path, 0)
                server.hits[self.path] = n + 1
                seq = server.routes.get(self.path) or [{"status": 404, "body": b"not found"}]
                r = seq[min(n, len(seq) - 1)]
                time.sleep(r.get("delay", 0))
                body = r.get("body", b"")
                try:
                    self.send_response(r.get("status", 200))
                    for k, v in r.get("headers", {}).items():
                        self.send_header(k, v)
                    length = r.get("length", len(body))
                    if length is not None:
                        self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up (size limit, timeout): expected

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, prefix: str, name: str, *responses: dict) -> str:
        """Put responses at /<prefix>/<name>; returns the base URL /<prefix>/."""
        self.routes[f"/{prefix}/{name}"] = list(responses)
        return f"{self.base}/{prefix}/"


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture()
def raw(tmp_path):
    """A copy of raw/reference (never the real raw/)."""
    dst = tmp_path / "raw"
    shutil.copytree(RAW / "reference", dst / "reference")
    return dst


@pytest.fixture()
def client():
    with httpx.Client(trust_env=False) as c:   # no proxy from the environment for 127.0.0.1
        yield c


# ----------------------------------------------------------------------------------------------- helpers

def facility_zip(name: str = NEW_NAME, rows: int = 5, member: str | None = None) -> bytes:
    """A real-looking 01-1 file: the header and the first rows of the shipped 2025-06-01 file."""
    with zipfile.ZipFile(RAW / OLD) as z:
        text = z.read(z.namelist()[0])
    lines = text.split(b"\r\n") if b"\r\n" in text else text.split(b"\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member or f"{name}.csv", b"\r\n".join(lines[:rows + 1]) + b"\r\n")
    return buf.getvalue()


def net_config(base: str, **limits) -> dict:
    return {"iryo_joho_net": {"base_url": base, "snapshots": ["20260601"], "kinds": ["01-1_hospital_facility_info"]},
            "limits": LIMITS | limits}


def log_lines(raw: Path) -> list[dict]:
    path = raw / "reference/fetch_log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_failed_and_intact(raw: Path, report, before: bytes) -> None:
    """The fetch failed, nothing new is in the folder, the previous snapshot is byte-identical and still chosen."""
    [f] = report.files
    assert f.outcome == "failed" and not report.ok
    assert (raw / OLD).read_bytes() == before
    assert not (raw / NEW).exists()
    assert sorted(p.name for p in (raw / NET).iterdir()) == sorted(p.name for p in (RAW / NET).iterdir())
    assert "前回取得した 20250601 版を使います" in f.message
    assert f.path == raw / OLD
    to_read, _ = facility_file_plan(raw)
    assert raw / OLD in to_read
    [line] = log_lines(raw)
    assert line["outcome"] == "failed" and line["error"] and line["sha256"] is None


# ------------------------------------------------------------------------------------------------ the tests

def test_good_file_is_saved_then_unchanged(server, raw, client):
    body = facility_zip()
    base = server.serve("good", f"{NEW_NAME}.csv.zip", {"body": body})
    report = fetch_all(raw, net_config(base), client=client)
    [f] = report.files
    assert report.ok and f.outcome == "saved", f.message
    assert (raw / NEW).read_bytes() == body and f.sha256 == sha(body) and f.path == raw / NEW
    assert (raw / OLD).read_bytes() == (RAW / OLD).read_bytes()
    assert not list((raw / NET).glob(".fetch-*"))           # no temporary file left
    [line] = log_lines(raw)
    assert line["outcome"] == "saved" and line["sha256"] == sha(body) and line["http_status"] == 200
    assert line["bytes"] == len(body) and line["url"] == base + f"{NEW_NAME}.csv.zip"
    # the pipeline now takes the new snapshot, and the reader reads it
    to_read, superseded = facility_file_plan(raw)
    assert raw / NEW in to_read and raw / OLD in superseded
    res = read_facility_file(raw / NEW)
    assert res.status == "read" and res.accepted.height == 5
    # second fetch of the same content: not rewritten
    mtime = (raw / NEW).stat().st_mtime_ns
    again = fetch_all(raw, net_config(base), client=client)
    assert again.ok and again.files[0].outcome == "unchanged" and again.files[0].sha256 == sha(body)
    assert (raw / NEW).stat().st_mtime_ns == mtime
    assert [x["outcome"] for x in log_lines(raw)] == ["saved", "unchanged"]
    assert "変更なし 1 件" in again.summary()


def test_changed_content_replaces_snapshot_and_keeps_the_earlier(server, raw, client):
    """The publisher replaced a file under the same date: the new content takes the name, the earlier content is
    kept (a submission made with it can be reproduced) where neither a reader nor the run fingerprint looks."""
    from annex.reference import _plans
    from annex.runs import manifest
    first, second = facility_zip(rows=3), facility_zip(rows=6)
    base = server.serve("changed", f"{NEW_NAME}.csv.zip", {"body": first}, {"body": second})
    assert fetch_all(raw, net_config(base), client=client).files[0].outcome == "saved"
    f = fetch_all(raw, net_config(base), client=client).files[0]
    kept = raw / NET / ".replaced" / f"{NEW_NAME}.csv.zip.prev-{sha(first)[:8]}"
    assert f.outcome == "saved" and "置き換えました" in f.message and "iryo_joho_net/.replaced/" in f.message
    assert (raw / NEW).read_bytes() == second and kept.read_bytes() == first
    assert [x["sha256"] for x in log_lines(raw)] == [sha(first), sha(second)]
    # the snapshot choice, with and without a date, never takes the kept file (nor lists it as superseded)
    for as_of in (None, dt.date(2026, 6, 1), dt.date(2026, 5, 31)):
        to_read, superseded = facility_file_plan(raw, as_of)
        assert kept not in to_read + superseded
        assert (raw / NEW in to_read) == (as_of != dt.date(2026, 5, 31)) and raw / OLD in to_read + superseded
    assert not any(".replaced" in k for k in manifest(raw, None, None)["files"])
    # the same for a 名簿 (its folder is read by pattern: *.xls*)
    meibo, workbook = "shisetsu-touhoku-ika-r0808.xlsx", MEIBO.read_bytes()
    changed = _with_extra_member(workbook)
    base = server.serve("meibo-changed", meibo, {"body": changed})
    config = {"iryo_joho_net": {"snapshots": []}, "kouseikyoku": {"urls": [base + meibo]},
              "limits": LIMITS | {"max_download_mb": 2, "max_uncompressed_mb": 20}}
    g = fetch_all(raw, config, client=client).files[0]
    kept_meibo = raw / "reference/kouseikyoku/.replaced" / f"{meibo}.prev-{sha(workbook)[:8]}"
    assert g.outcome == "saved" and kept_meibo.read_bytes() == workbook
    assert (raw / "reference/kouseikyoku" / meibo).read_bytes() == changed
    read_meibo = _plans(raw, None)[1][0]
    assert sorted(p.name for p in read_meibo) == ["shisetsu-shikoku-ika-r0809.xlsx", meibo]


def _with_extra_member(xlsx: bytes) -> bytes:
    """The same workbook with one more (ignored) member: other bytes, still a valid xlsx."""
    buf = io.BytesIO(xlsx)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("docProps/custom-note.txt", "republished")
    return buf.getvalue()


def test_old_name_without_csv_is_tried_after_404(server, raw, client):
    body = facility_zip()
    base = server.serve("oldname", f"{NEW_NAME}.zip", {"body": body})
    f = fetch_all(raw, net_config(base), client=client).files[0]
    assert f.outcome == "saved" and f.url.endswith(f"{NEW_NAME}.zip")
    assert (raw / NEW).read_bytes() == body      # saved under the usual .csv.zip name
    [line] = log_lines(raw)
    assert [t["http_status"] for t in line["tries"]] == [404, 200]


def test_500_then_200_succeeds_on_retry(server, raw, client):
    body = facility_zip()
    path = f"{NEW_NAME}.csv.zip"
    base = server.serve("flaky", path, {"status": 500, "body": b"error"}, {"status": 503}, {"body": body})
    f = fetch_all(raw, net_config(base), client=client).files[0]
    assert f.outcome == "saved" and f.attempts == 3
    assert server.hits["/flaky/" + path] == 3
    [line] = log_lines(raw)
    assert [t["http_status"] for t in line["tries"]] == [500, 503, 200]
    assert line["tries"][0]["error"] == "サーバーエラー（HTTP 500）"
    assert line["sha256"] == sha(body) and (raw / NEW).read_bytes() == body


def test_backoff_doubles_between_tries(server, raw, client, monkeypatch):
    """The wait before each retry doubles (backoff, 2 × backoff, …), and there is none before the first try."""
    from annex import fetch
    waits, fetching = [], threading.get_ident()
    real_sleep = time.sleep
    # only this thread's sleeps are the fetch's (the server's threads sleep too)
    monkeypatch.setattr(fetch.time, "sleep",
                        lambda s: waits.append(s) if threading.get_ident() == fetching else real_sleep(s))
    path = f"{NEW_NAME}.csv.zip"
    base = server.serve("backoff", path, {"status": 503})
    report = fetch_all(raw, net_config(base, attempts=4, backoff_seconds=0.5), client=client)
    assert report.files[0].outcome == "failed" and server.hits["/backoff/" + path] == 4
    assert waits == [0.5, 1.0, 2.0]


def test_slow_response_is_retried_then_failed(server, raw, client):
    before = (raw / OLD).read_bytes()
    path = f"{NEW_NAME}.csv.zip"
    base = server.serve("slow", path, {"body": facility_zip(), "delay": 1.0})
    t0 = time.monotonic()
    report = fetch_all(raw, net_config(base, attempts=2), client=client)
    assert time.monotonic() - t0 < 3
    assert_failed_and_intact(raw, report, before)
    assert server.hits["/slow/" + path] == 2
    assert "応答がありませんでした" in report.files[0].message and "2 回試行" in report.files[0].message


def test_truncated_body_is_retried_then_failed(server, raw, client):
    before = (raw / OLD).read_bytes()
    body = facility_zip(rows=30)
    path = f"{NEW_NAME}.csv.zip"
    base = server.serve("short", path, {"body": body[:len(body) // 2], "length": len(body)})
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert server.hits["/short/" + path] == 3
    assert "途中で切れました" in report.files[0].message


def test_cut_zip_fails_validation(server, raw, client):
    before = (raw / OLD).read_bytes()
    body = facility_zip(rows=30)
    path = f"{NEW_NAME}.csv.zip"
    base = server.serve("cut", path, {"body": body[:len(body) - 40]})   # honest length, broken zip
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert server.hits["/cut/" + path] == 1                             # a bad file is not fetched again
    assert "検査に合格しませんでした" in report.files[0].message


def test_404_fails_without_retry(server, raw, client):
    before = (raw / OLD).read_bytes()
    base = f"{server.base}/missing/"
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert server.hits["/missing/" + f"{NEW_NAME}.csv.zip"] == 1 and server.hits["/missing/" + f"{NEW_NAME}.zip"] == 1
    f = report.files[0]
    assert f.http_status == 404 and "見つかりません（HTTP 404）" in f.message


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_oversize_is_aborted(server, raw, client, declared):
    before = (raw / OLD).read_bytes()
    big = b"x" * (1024 * 1024)     # 1 MB, limit 0.25 MB
    prefix = f"big-{declared}"
    base = server.serve(prefix, f"{NEW_NAME}.csv.zip", {"body": big, "length": len(big) if declared else None})
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert server.hits[f"/{prefix}/{NEW_NAME}.csv.zip"] == 1
    assert "大きすぎます" in report.files[0].message


def test_traversal_member_is_rejected(server, raw, client):
    before = (raw / OLD).read_bytes()
    base = server.serve("evil", f"{NEW_NAME}.csv.zip", {"body": facility_zip(member="../evil.csv")})
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert "../evil.csv" in report.files[0].message
    assert not (raw / "reference/evil.csv").exists() and not (raw / "evil.csv").exists()


def test_zip_bomb_is_rejected(server, raw, client):
    before = (raw / OLD).read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(f"{NEW_NAME}.csv", b'\xef\xbb\xbf"ID"' + b"\0" * (40 * 1024 * 1024))
    bomb = buf.getvalue()
    assert len(bomb) < 100_000
    base = server.serve("bomb", f"{NEW_NAME}.csv.zip", {"body": bomb})
    report = fetch_all(raw, net_config(base, max_uncompressed_mb=100), client=client)  # the ratio, not the total
    assert_failed_and_intact(raw, report, before)
    assert "展開後のサイズが大きすぎます" in report.files[0].message


@pytest.mark.parametrize("case", ["wrong-member", "not-a-facility-file", "html-page"])
def test_wrong_content_is_rejected(server, raw, client, case):
    before = (raw / OLD).read_bytes()
    if case == "wrong-member":
        body = facility_zip(member="01-1_hospital_facility_info_20251201.csv")
    elif case == "not-a-facility-file":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"{NEW_NAME}.csv", "\ufeff名称,住所\r\nA,B\r\n".encode())
        body = buf.getvalue()
    else:
        body = "<!DOCTYPE html><html><body>ページが見つかりません</body></html>".encode()
    base = server.serve(case, f"{NEW_NAME}.csv.zip", {"body": body, "headers": {"Content-Type": "text/html"}})
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    expected = {"wrong-member": "想定と違います", "not-a-facility-file": '"ID" で始まっていません',
                "html-page": "Web ページ（HTML）"}[case]
    assert expected in report.files[0].message


def test_redirects(server, raw, client):
    body = facility_zip()
    server.serve("real", f"{NEW_NAME}.csv.zip", {"body": body})
    base = server.serve("moved", f"{NEW_NAME}.csv.zip",
                        {"status": 302, "headers": {"Location": f"/real/{NEW_NAME}.csv.zip"}})
    f = fetch_all(raw, net_config(base), client=client).files[0]
    assert f.outcome == "saved" and (raw / NEW).read_bytes() == body
    (raw / NEW).unlink()
    before = (raw / OLD).read_bytes()
    (raw / "reference/fetch_log.jsonl").unlink()
    base = server.serve("tofile", f"{NEW_NAME}.csv.zip", {"status": 301, "headers": {"Location": "file:///etc/passwd"}})
    report = fetch_all(raw, net_config(base), client=client)
    assert_failed_and_intact(raw, report, before)
    assert "http(s) ではないため従いません" in report.files[0].message


def test_no_previous_snapshot(server, raw, client):
    (raw / OLD).unlink()
    report = fetch_all(raw, net_config(f"{server.base}/none/"), client=client)
    [f] = report.files
    assert f.outcome == "failed" and f.path is None
    assert "以前に取得した版もない" in f.message and "医療情報ネット（病院）" in f.message
    assert "失敗 1 件" in report.summary()


def test_meibo_xlsx(server, raw, client):
    good = MEIBO.read_bytes()
    base = server.serve("meibo", "shisetsu-touhoku-ika-r0809.xlsx", {"body": good})
    server.serve("meibo", "shisetsu-touhoku-ika-r0810.xlsx", {"body": facility_zip()})   # a zip, not a workbook
    config = {"iryo_joho_net": {"snapshots": []}, "limits": LIMITS | {"max_download_mb": 2, "max_uncompressed_mb": 20},
              "kouseikyoku": {"urls": [base + "shisetsu-touhoku-ika-r0809.xlsx", base + "shisetsu-touhoku-ika-r0810.xlsx"]}}
    report = fetch_all(raw, config, client=client)
    saved, bad = report.files
    dest = raw / "reference/kouseikyoku/shisetsu-touhoku-ika-r0809.xlsx"
    assert saved.outcome == "saved" and dest.read_bytes() == good and saved.sha256 == sha(good)
    assert bad.outcome == "failed" and "[Content_Types].xml" in bad.message
    assert "前回取得した r0809（令和8年9月）版を使います" in bad.message
    assert not (raw / "reference/kouseikyoku/shisetsu-touhoku-ika-r0810.xlsx").exists()
    assert not report.ok


def test_config_checks():
    with pytest.raises(ConfigError, match="http:// か https://"):
        settings({"iryo_joho_net": {"base_url": "file:///etc/", "snapshots": ["20260601"]}})
    with pytest.raises(ConfigError, match="YYYYMMDD"):
        settings({"iryo_joho_net": {"snapshots": ["2026-06-01"]}})
    with pytest.raises(ConfigError, match="不明なキー"):
        settings({"limits": {"retries": 3}})
    with pytest.raises(ConfigError, match=r"\.xlsx"):
        settings({"kouseikyoku": {"urls": ["https://example.invalid/list.html"]}})
    with pytest.raises(ConfigError, match="扱えません"):
        settings({"iryo_joho_net": {"snapshots": ["20260601"], "kinds": ["05_pharmacy"]}})


def test_shipped_config():
    targets, limits = settings(load_config(RAW / "reference/sources.toml"))
    assert [t.urls[0] for t in targets] == [
        f"https://www.mhlw.go.jp/content/11121000/{k}_20260601.csv.zip"
        for k in ("01-1_hospital_facility_info", "02-1_clinic_facility_info", "03-1_dental_facility_info")]
    assert all(t.urls[1].endswith("_20260601.zip") for t in targets)
    assert limits.max_download == 200 * 1024 * 1024 and limits.attempts == 3 and limits.backoff == 1.0


def test_cli(server, raw, tmp_path, capsys):
    body = facility_zip()
    base = server.serve("cli", f"{NEW_NAME}.csv.zip", {"body": body})
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[iryo_joho_net]\nbase_url = "{base}"\nsnapshots = ["20260601"]\n'
                   f'kinds = ["01-1_hospital_facility_info", "02-1_clinic_facility_info"]\n'
                   f'[limits]\ntimeout_seconds = 0.3\nattempts = 1\n', encoding="utf-8")
    ap = argparse.ArgumentParser(prog="annex")
    register_cli(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["fetch", "--raw", str(raw), "--config", str(cfg)])
    with pytest.MonkeyPatch.context() as mp:     # the CLI makes its own client: keep proxies off for 127.0.0.1
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(var, raising=False)
        rc = args.func(args)
    out = capsys.readouterr().out
    assert rc == 1                                # the clinic file is not served
    assert "保存 1 件・変更なし 0 件・失敗 1 件" in out and "前回取得した 20260601 版を使います" in out
    assert (raw / NEW).read_bytes() == body
    args = ap.parse_args(["fetch", "--raw", str(raw), "--config", str(tmp_path / "nothing.toml")])
    assert args.func(args) == 1
    assert "取得設定ファイルがありません" in capsys.readouterr().err
