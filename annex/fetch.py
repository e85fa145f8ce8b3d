"""Downloading the reference files named in raw/reference/sources.toml into the snapshot folders.

A file is saved only after it passed every check: it is streamed to a hidden temporary file in the target folder
(size limit while streaming, read timeout, overall time limit), checked as a zip (members, paths, uncompressed
size and ratio — the rules of annex.facility_files) and then moved into place with os.replace. A failed download
leaves the previous snapshot untouched, so the pipeline's snapshot choice (annex.reference) keeps using it. A
snapshot whose content changed under the same name is replaced, its earlier content kept in REPLACED_DIR.
Every file's outcome is appended to raw/reference/fetch_log.jsonl.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from annex.cache import file_sha256
from annex.facility_files import FILE_NAME, MAX_RATIO, check_zip_member, iter_zip_member, parse_file_name
from annex.reference import FACILITY_DIR, MEIBO_DIR

CONFIG_PATH = Path("reference/sources.toml")
LOG_PATH = Path("reference/fetch_log.jsonl")
LOCK_PATH = Path("reference/.fetch.lock")
PART_PREFIX, PART_SUFFIX = ".fetch-", ".part"
# beside each snapshot folder: the earlier content of a snapshot the publisher replaced under the same name.
# Hidden, so that neither a reader (it is not a snapshot to read) nor a run's fingerprint looks there
REPLACED_DIR = ".replaced"
USER_AGENT = "zaitaku-annex/0.1 (reference data fetch)"
KINDS = {"01-1_hospital_facility_info": "病院", "02-1_clinic_facility_info": "診療所",
         "03-1_dental_facility_info": "歯科診療所"}
MB = 1024 * 1024
MAX_REDIRECTS = 5
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
NOT_FOUND_STATUS = {404, 410}
OUTCOME_LABEL = {"saved": "保存", "unchanged": "変更なし", "failed": "失敗"}

DEFAULTS: dict = {
    "iryo_joho_net": {"base_url": "https://www.mhlw.go.jp/content/11121000/", "snapshots": [],
                      "kinds": list(KINDS), "suffixes": [".csv.zip", ".zip"]},
    "kouseikyoku": {"urls": []},
    "limits": {"max_download_mb": 200, "max_uncompressed_mb": 2048, "timeout_seconds": 60,
               "max_seconds_per_try": 1800, "attempts": 3, "backoff_seconds": 1.0},
}


class ConfigError(ValueError):
    """sources.toml is missing or wrong; the message is Japanese and names the key."""


class FetchError(Exception):
    """One try failed. message is Japanese; retry says whether trying again could help."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = False, not_found: bool = False):
        super().__init__(message)
        self.message, self.status, self.retry, self.not_found = message, status, retry, not_found


class FetchBusy(RuntimeError):
    """Another `annex fetch` is downloading into the same raw/ (Japanese message)."""


class InvalidFile(Exception):
    """The downloaded bytes are not the file we expect (Japanese message)."""


# ---------------------------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class Limits:
    max_download: int            # bytes
    max_uncompressed: int        # bytes
    timeout: float               # seconds without data
    max_seconds: float           # seconds for one whole try
    attempts: int
    backoff: float


@dataclass(frozen=True)
class Target:
    """One file to fetch: the URLs to try in order and where it is saved."""
    source: str                  # "iryo_joho_net" | "kouseikyoku"
    urls: tuple[str, ...]
    dest: Path                   # the snapshot path under raw/
    member: str | None = None    # the one CSV member a facility zip must hold

    @property
    def label(self) -> str:
        return self.dest.name


def load_config(path: Path) -> dict:
    """sources.toml as a dict (not yet checked: see settings())."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"取得設定ファイルがありません: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"取得設定ファイル {path} の書き方に誤りがあります: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"取得設定ファイル {path} を UTF-8 として読めません。") from None


def _merged(config: dict) -> dict:
    out = copy.deepcopy(DEFAULTS)
    for section, values in config.items():
        if section not in out:
            raise ConfigError(f"取得設定に不明な見出し [{section}] があります"
                              f"（使えるのは {'・'.join('[' + s + ']' for s in DEFAULTS)}）。")
        if not isinstance(values, dict):
            raise ConfigError(f"取得設定の [{section}] は見出しとして書いてください。")
        for key, value in values.items():
            if key not in out[section]:
                raise ConfigError(f"取得設定の [{section}] に不明なキー {key} があります"
                                  f"（使えるのは {'・'.join(out[section])}）。")
            out[section][key] = value
    return out


def _number(section: dict, key: str, *, minimum: float, integer: bool = False) -> float:
    v = section[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)) or v < minimum:
        kind = "整数" if integer else "数"
        raise ConfigError(f"取得設定 [limits] の {key} は {minimum} 以上の{kind}にしてください（今は {v!r}）。")
    return v


def _http_url(url, where: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"取得設定 {where} の URL は http:// か https:// で始まる必要があります（今は {url!r}）。")
    return url


def _string_list(section: dict, key: str, where: str) -> list[str]:
    v = section[key]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"取得設定 {where} の {key} は [\"…\", \"…\"] の形の一覧にしてください。")
    return v


def settings(config: dict) -> tuple[list[Target], Limits]:
    """Check the configuration and turn it into the files to fetch and the limits. Raises ConfigError."""
    cfg = _merged(config)
    lim = cfg["limits"]
    limits = Limits(
        max_download=int(_number(lim, "max_download_mb", minimum=0.001) * MB),
        max_uncompressed=int(_number(lim, "max_uncompressed_mb", minimum=0.001) * MB),
        timeout=float(_number(lim, "timeout_seconds", minimum=0.001)),
        max_seconds=float(_number(lim, "max_seconds_per_try", minimum=0.001)),
        attempts=int(_number(lim, "attempts", minimum=1, integer=True)),
        backoff=float(_number(lim, "backoff_seconds", minimum=0)))
    targets: list[Target] = []
    net = cfg["iryo_joho_net"]
    base = _http_url(net["base_url"], "[iryo_joho_net] base_url")
    base = base if base.endswith("/") else base + "/"
    suffixes = _string_list(net, "suffixes", "[iryo_joho_net]")
    if not suffixes or any(s not in (".csv.zip", ".zip") for s in suffixes):
        raise ConfigError("取得設定 [iryo_joho_net] の suffixes に書けるのは \".csv.zip\" と \".zip\" です。")
    for snap in _string_list(net, "snapshots", "[iryo_joho_net]"):
        try:
            dt.datetime.strptime(snap, "%Y%m%d")
        except ValueError:
            raise ConfigError(f"取得設定 [iryo_joho_net] の snapshots の {snap!r} は YYYYMMDD の日付にしてください"
                              "（例: \"20260601\"）。") from None
        for kind in _string_list(net, "kinds", "[iryo_joho_net]"):
            if kind not in KINDS:
                raise ConfigError(f"取得設定 [iryo_joho_net] の kinds の {kind!r} は扱えません"
                                  f"（使えるのは {'・'.join(KINDS)}）。")
            name = f"{kind}_{snap}"
            targets.append(Target("iryo_joho_net", tuple(base + name + s for s in suffixes),
                                  FACILITY_DIR / f"{name}.csv.zip", member=f"{name}.csv"))
    for url in _string_list(cfg["kouseikyoku"], "urls", "[kouseikyoku]"):
        _http_url(url, "[kouseikyoku] urls")
        targets.append(Target("kouseikyoku", (url,), MEIBO_DIR / meibo_file_name(url)))
    unique = list({t.dest: t for t in targets}.values())
    return unique, limits


def meibo_file_name(url: str) -> str:
    """The file name a 名簿 URL is saved under: its last path part (a doubled dot, as the 東北 site sometimes
    writes it, made single). Only plain .xlsx/.xls names are accepted."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    name = re.sub(r"\.{2,}", ".", name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.xlsx?", name, flags=re.IGNORECASE):
        raise ConfigError(f"取得設定 [kouseikyoku] の URL {url} は .xlsx（または .xls）のファイルを指していません"
                          "（英数字・- _ . だけのファイル名が必要です）。")
    return name


# ------------------------------------------------------------------------------------------------ downloading

@dataclass
class Download:
    status: int
    url: str                     # after redirects
    size: int
    sha256: str


def download(client: httpx.Client, url: str, fh, limits: Limits) -> Download:
    """One GET of url into the open binary file fh, following at most MAX_REDIRECTS http(s) redirects.
    Raises FetchError; never writes more than limits.max_download bytes."""
    timeout = httpx.Timeout(limits.timeout)
    deadline = time.monotonic() + limits.max_seconds
    for _ in range(MAX_REDIRECTS + 1):
        try:
            req = client.build_request("GET", url, timeout=timeout,
                                       headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            resp = client.send(req, stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            raise FetchError(f"{limits.timeout:g} 秒待っても応答がありませんでした", retry=True) from None
        except httpx.TransportError as exc:
            raise FetchError(f"接続できませんでした（{type(exc).__name__}: {exc}）", retry=True) from None
        try:
            if resp.is_redirect:
                target = urljoin(url, resp.headers.get("location", ""))
                if urlsplit(target).scheme not in ("http", "https"):
                    raise FetchError(f"転送先（リダイレクト）が http(s) ではないため従いません: {target}",
                                     status=resp.status_code)
                url = target
                continue
            return _receive(resp, url, fh, limits, deadline)
        finally:
            resp.close()
    raise FetchError(f"転送（リダイレクト）が {MAX_REDIRECTS} 回を超えました")


def _receive(resp: httpx.Response, url: str, fh, limits: Limits, deadline: float) -> Download:
    status = resp.status_code
    if status != 200:
        if status in NOT_FOUND_STATUS:
            raise FetchError(f"ファイルが見つかりません（HTTP {status}）", status=status, not_found=True)
        retry = status in RETRY_STATUS or status >= 500
        what = "サーバーエラー" if status >= 500 else "取得できません"
        raise FetchError(f"{what}（HTTP {status}）", status=status, retry=retry)
    declared = resp.headers.get("content-length")
    declared = int(declared) if declared and declared.isdigit() else None
    if declared is not None and declared > limits.max_download:
        raise FetchError(f"ファイルが大きすぎます（{declared:,} バイト。上限 {_mb(limits.max_download)}）",
                         status=status)
    digest, size = hashlib.sha256(), 0
    fh.seek(0)
    fh.truncate()
    try:
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > limits.max_download:
                raise FetchError(f"ファイルが大きすぎます（{size:,} バイトを超えたところで中止。上限 "
                                 f"{_mb(limits.max_download)}）", status=status)
            if time.monotonic() > deadline:
                raise FetchError(f"{limits.max_seconds:g} 秒で受信が終わりませんでした（{size:,} バイト受信）",
                                 status=status, retry=True)
            digest.update(chunk)
            fh.write(chunk)
    except httpx.TimeoutException:
        raise FetchError(f"受信の途中で {limits.timeout:g} 秒以上止まりました（{size:,} バイト受信）",
                         status=status, retry=True) from None
    except httpx.TransportError as exc:
        expected = f" / {declared:,}" if declared is not None else ""
        raise FetchError(f"受信が途中で切れました（{size:,}{expected} バイト受信。{type(exc).__name__}）",
                         status=status, retry=True) from None
    if declared is not None and resp.num_bytes_downloaded != declared:
        raise FetchError(f"受信が途中で切れました（{resp.num_bytes_downloaded:,} / {declared:,} バイト）",
                         status=status, retry=True)
    fh.flush()
    return Download(status, url, size, digest.hexdigest())


def _mb(n: int) -> str:
    return f"{n / MB:,.4g} MB"


# ------------------------------------------------------------------------------------------------- validation

def validate_facility_zip(path: Path, member: str, limits: Limits) -> None:
    """A 医療情報ネット file: a zip holding exactly `member`, safe paths and sizes, a CSV whose header starts with
    "ID" (after the UTF-8 BOM). Reads the member to the end, which also checks its CRC. Raises InvalidFile."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            _check_members(members, limits)
            names = [i.filename for i in members]
            if names != [member]:
                raise InvalidFile(f"zipの中身が想定と違います（{member} の1つだけのはずが "
                                  f"{'、'.join(names) if names else '空'}）")
            head = b""
            for block in iter_zip_member(z, members[0], limits.max_uncompressed):
                if len(head) < 16:
                    head += block[:16]
            if not head.removeprefix(b"\xef\xbb\xbf").startswith(b'"ID"'):
                raise InvalidFile(f"{member} の1行目が \"ID\" で始まっていません（医療情報ネットの施設情報ファイルではありません）")
    except InvalidFile:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise InvalidFile(f"zipファイルが壊れているか不正です（{exc}）") from None


def validate_workbook(path: Path, limits: Limits, *, xls: bool = False) -> None:
    """A 名簿: an .xlsx is a zip with [Content_Types].xml and safe members; an .xls (xls=True) is an OLE2
    compound file. Raises InvalidFile."""
    if xls:
        with open(path, "rb") as f:
            if f.read(8) != bytes.fromhex("d0cf11e0a1b11ae1"):
                raise InvalidFile("Excel（.xls）ファイルではありません")
        return
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            _check_members(members, limits)
            if "[Content_Types].xml" not in {i.filename for i in members}:
                raise InvalidFile("Excel（.xlsx）ファイルではありません（[Content_Types].xml がありません）")
            left = limits.max_uncompressed
            for info in members:
                for block in iter_zip_member(z, info, left):
                    left -= len(block)
    except InvalidFile:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise InvalidFile(f"Excel（.xlsx）ファイルが壊れているか不正です（{exc}）") from None


def _check_members(members: list[zipfile.ZipInfo], limits: Limits) -> None:
    for info in members:
        check_zip_member(info, limits.max_uncompressed, MAX_RATIO)
    total = sum(i.file_size for i in members)
    if total > limits.max_uncompressed:
        raise InvalidFile(f"展開後の合計サイズが上限を超えます（{total:,} バイト。上限 {_mb(limits.max_uncompressed)}）")


def _sniff_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml"))


# ------------------------------------------------------------------------------------------------- the result

@dataclass
class FileResult:
    url: str
    outcome: str                 # "saved" | "unchanged" | "failed"
    path: Path | None            # the snapshot now in place; on failure the one the pipeline will use (or None)
    sha256: str | None
    message: str                 # Japanese
    http_status: int | None = None
    bytes: int | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


@dataclass
class FetchReport:
    files: list[FileResult] = field(default_factory=list)
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    def summary(self) -> str:
        if not self.files:
            return "取得するファイルが設定されていません（raw/reference/sources.toml を確認してください）。"
        counts = {k: sum(f.outcome == k for f in self.files) for k in OUTCOME_LABEL}
        head = "取得結果: " + "・".join(f"{OUTCOME_LABEL[k]} {n} 件" for k, n in counts.items())
        if self.log is not None:
            head += f"（記録: {self.log}）"
        lines = [head]
        for f in self.files:
            lines.append(f"  [{OUTCOME_LABEL[f.outcome]}] {f.url}")
            lines.append(f"      {f.message}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ fetching

def fetch_all(raw: Path, config: dict | None = None, *, client: httpx.Client | None = None) -> FetchReport:
    """Fetch every file of the configuration (default raw/reference/sources.toml) into raw/.
    Raises ConfigError for a bad configuration; download and validation problems are in the report."""
    raw = Path(raw)
    if config is None:
        config = load_config(raw / CONFIG_PATH)
    targets, limits = settings(config)
    report = FetchReport(log=raw / LOG_PATH)
    with fetch_lock(raw):
        for folder in {raw / t.dest.parent for t in targets}:
            remove_partial_downloads(folder)
        own = client is None
        if own:
            client = httpx.Client(follow_redirects=False)
        try:
            for target in targets:
                result = fetch_one(client, raw, target, limits)
                report.files.append(result)
        finally:
            if own:
                client.close()
    return report


def fetch_for_refresh(raw: Path) -> tuple[FetchReport | None, str]:
    """The fetch a refresh starts with (`annex refresh --fetch`, `annex serve --fetch`): (the report, or None
    when nothing was fetched; the Japanese text to show). Like a failed download, a missing or wrong
    sources.toml or a fetch already running does not stop the refresh: it goes on with the files under raw/."""
    try:
        report = fetch_all(raw)
    except (ConfigError, FetchBusy) as exc:
        return None, f"取得しませんでした（{exc}）。raw/ にある版で続けます。"
    return report, report.summary()


@contextlib.contextmanager
def fetch_lock(raw: Path):
    """One fetch at a time per raw/ (raw/reference/.fetch.lock, flock: released by the kernel if the holder
    dies). A second fetch refuses with FetchBusy instead of downloading the same files alongside."""
    path = raw / LOCK_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchBusy(f"別の取得（annex fetch）が {raw} で実行中です。終わってからもう一度実行してください。") from None
        yield
    finally:
        os.close(fd)


def remove_partial_downloads(folder: Path) -> list[str]:
    """Temporary files of a fetch that was killed mid-download (.fetch-*.part): safe to remove under the fetch
    lock. They are hidden, and neither the readers nor the run fingerprint look at them, but they can be large."""
    gone = []
    if folder.is_dir():
        for p in folder.glob(f"{PART_PREFIX}*{PART_SUFFIX}"):
            p.unlink(missing_ok=True)
            gone.append(p.name)
    return gone


def fetch_one(client: httpx.Client, raw: Path, target: Target, limits: Limits) -> FileResult:
    """Download, check and save one file; append its line to the fetch log."""
    dest = raw / target.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tried: list[dict] = []
    fd, tmp_name = tempfile.mkstemp(prefix=PART_PREFIX, suffix=PART_SUFFIX, dir=dest.parent)
    tmp = Path(tmp_name)
    url, got, error, status = target.urls[0], None, None, None
    try:
        with os.fdopen(fd, "w+b") as fh:
            for url in target.urls:
                got, error = _download_with_retries(client, url, fh, limits, tried)
                status = got.status if got else error.status
                if got is not None or not error.not_found:
                    break
        if got is not None:
            try:
                if _sniff_html(tmp):
                    raise InvalidFile("ファイルではなく Web ページ（HTML）が返されました")
                if target.member is not None:
                    validate_facility_zip(tmp, target.member, limits)
                else:
                    validate_workbook(tmp, limits, xls=target.dest.suffix.lower() == ".xls")
            except InvalidFile as exc:
                error = FetchError(f"ダウンロードしたファイルが検査に合格しませんでした: {exc}", status=status)
        elif error.not_found and len(target.urls) > 1:
            names = "・".join(PurePosixPath(urlsplit(u).path).name for u in target.urls)
            error = FetchError(f"{error.message}。試した名前: {names}", status=status, not_found=True)
        if error is None and got is not None:
            if dest.exists() and file_sha256(dest) == got.sha256:
                result = FileResult(url, "unchanged", dest, got.sha256,
                                    f"前回と同じ内容のため保存し直していません（{_rel(dest, raw)}、sha256 {got.sha256[:12]}…）。",
                                    status, got.size)
            else:
                kept = keep_previous(dest) if dest.exists() else None
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
                msg = f"保存しました: {_rel(dest, raw)}（{got.size:,} バイト、sha256 {got.sha256[:12]}…）"
                if kept is not None:
                    msg += f"。同じ名前の以前のファイルを新しい内容で置き換えました（以前の内容は {_rel(kept, raw)} に残しています）"
                msg += "。" + _newer_note(dest)
                result = FileResult(url, "saved", dest, got.sha256, msg, status, got.size)
        else:
            previous = previous_snapshot(raw, target)
            if previous is not None:
                label = snapshot_label(previous)
                label += "版" if label.endswith("）") else " 版"
                tail = f"前回取得した {label}を使います（{_rel(previous, raw)}）。"
            else:
                tail = f"以前に取得した版もないため、{_what(target)}のファイルなしで処理されます。"
            n = len(tried)
            result = FileResult(url, "failed", previous, None,
                                f"取得に失敗しました（{error.message}。{n} 回試行）。{tail}",
                                status, got.size if got else None)
        result.attempts = len(tried)
    finally:
        tmp.unlink(missing_ok=True)
    append_log(raw / LOG_PATH, result, raw, tried, error.message if result.outcome == "failed" else None)
    return result


def keep_previous(dest: Path) -> Path:
    """Before dest is replaced by a download with other content (the publisher replaced the file under the
    same date): its present content kept as <folder>/.replaced/<name>.prev-<sha8>, so that a submission made
    with it can still be reproduced. Linked, not moved: dest is never missing, whenever the fetch dies."""
    kept = dest.parent / REPLACED_DIR / f"{dest.name}.prev-{file_sha256(dest)[:8]}"
    if not kept.exists():
        kept.parent.mkdir(exist_ok=True)
        try:
            os.link(dest, kept)
        except OSError:   # a file system without hard links: a copy, whole or not at all
            part = kept.with_name(f"{PART_PREFIX}{kept.name}{PART_SUFFIX}")
            shutil.copy2(dest, part)
            os.replace(part, kept)
    return kept


def _download_with_retries(client, url: str, fh, limits: Limits, tried: list[dict]):
    """(Download, None) or (None, the last FetchError), after at most limits.attempts tries."""
    error = None
    for attempt in range(1, limits.attempts + 1):
        if attempt > 1:
            time.sleep(limits.backoff * 2 ** (attempt - 2))
        started = time.monotonic()
        try:
            got = download(client, url, fh, limits)
            tried.append({"url": url, "http_status": got.status, "bytes": got.size, "error": None,
                          "seconds": round(time.monotonic() - started, 3)})
            return got, None
        except FetchError as exc:
            error = exc
            tried.append({"url": url, "http_status": exc.status, "bytes": None, "error": exc.message,
                          "seconds": round(time.monotonic() - started, 3)})
            if not exc.retry:
                break
    return None, error


def previous_snapshot(raw: Path, target: Target) -> Path | None:
    """The file of the same kind the pipeline reads when this fetch failed: for 医療情報ネット the latest
    snapshot of the kind, for a 名簿 the latest month of the same bureau's list (or the same file name)."""
    folder = raw / target.dest.parent
    if not folder.is_dir():
        return None
    if target.source == "iryo_joho_net":
        kind = parse_file_name(target.dest)[0]
        found = [(parse_file_name(p)[1], p) for p in folder.iterdir()
                 if p.is_file() and parse_file_name(p) and parse_file_name(p)[0] == kind]
        return max(found)[1] if found else None
    series, _ = _meibo_series(target.dest.name)
    found = [(_meibo_series(p.name)[1], p) for p in folder.iterdir()
             if p.is_file() and not p.name.startswith((".", "~$")) and _meibo_series(p.name)[0] == series]
    return max(found)[1] if found else None


def _meibo_series(name: str) -> tuple[str, str]:
    """('shisetsu-touhoku-ika', '0808') for shisetsu-touhoku-ika-r0808.xlsx; the whole stem when no rYYMM."""
    stem = name.rsplit(".", 1)[0].rstrip(".")
    m = re.fullmatch(r"(.+?)[-_]?r(\d{4})", stem)
    return (m.group(1), m.group(2)) if m else (stem, "")


def snapshot_label(path: Path) -> str:
    """20250601 for a facility file, r0808（令和8年8月） for a 名簿."""
    m = FILE_NAME.match(path.name)
    if m:
        return m.group(3)
    _, yymm = _meibo_series(path.name)
    if yymm:
        return f"r{yymm}（令和{int(yymm[:2])}年{int(yymm[2:])}月）"
    return path.name


def _newer_note(dest: Path) -> str:
    """A note when a newer snapshot of the same kind is already there (the pipeline will read that one)."""
    parsed = parse_file_name(dest)
    if not parsed:
        return ""
    newer = [p for p in dest.parent.iterdir()
             if parse_file_name(p) and parse_file_name(p)[0] == parsed[0] and parse_file_name(p)[1] > parsed[1]]
    if newer:
        return f"ただし、より新しい {snapshot_label(max(newer))} 版があるため、処理にはそちらが使われます。"
    return ""


def _what(target: Target) -> str:
    if target.member is not None:
        return f"医療情報ネット（{KINDS[target.member.rsplit('_', 1)[0]]}）"
    return "この厚生局の名簿"


def _rel(path: Path, raw: Path) -> str:
    try:
        return str(Path(raw.name) / path.relative_to(raw))
    except ValueError:
        return str(path)


def append_log(log: Path, result: FileResult, raw: Path, tried: list[dict], error: str | None) -> None:
    """One JSON line per file and run, with every HTTP try in `tries`."""
    record = {
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "url": result.url, "outcome": result.outcome, "http_status": result.http_status, "bytes": result.bytes,
        "sha256": result.sha256, "path": _rel(result.path, raw) if result.path else None,
        "error": error, "message": result.message, "attempts": len(tried), "tries": tried,
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------------- CLI

def _run_cli(args: argparse.Namespace) -> int:
    raw = Path(args.raw)
    try:
        config = load_config(Path(args.config)) if args.config else None
        report = fetch_all(raw, config)
    except (ConfigError, FetchBusy) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the `fetch` command to the `annex` command line."""
    p = subparsers.add_parser(
        "fetch", help="医療情報ネットのオープンデータ等を取得し raw/reference/ に保存します",
        description="raw/reference/sources.toml に書かれた医療情報ネットのオープンデータ（と厚生局の名簿）を"
                    "ダウンロードし、検査に合格したものだけを raw/reference/ に時点付きで保存します。"
                    "失敗したときは前回のファイルがそのまま使われます。記録は raw/reference/fetch_log.jsonl。")
    p.add_argument("--raw", type=Path, default=Path("raw"), metavar="DIR", help="入力フォルダ（既定: raw/）")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="取得設定ファイル（既定: <DIR>/reference/sources.toml）")
    p.set_defaults(func=_run_cli)
    return p
