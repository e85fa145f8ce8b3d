"""Parsed results kept as Parquet, keyed on file content: a reference file whose sha256 has not changed is not
parsed again. Keys also cover the code that parses (annex/, schemas/) and the reader's parameters, so a new
reader version never serves an old parse. Reports are not cached: they carry personal data (記入者, 電話), and
out/.cache must not become a second place where it is kept. A full rebuild removes what it did not use (prune).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Callable

import polars as pl

from annex import PROJECT_ROOT
from annex.findings import ReadResult

CACHE_DIR = ".cache"
# how parses are kept: neither compressed nor with column statistics (encoding the 1.5 M national 名簿 rows
# took 0.8 s of CPU so, 0.5 s without; read back 0.18 → 0.08 s; 30 MB instead of 15 on disk)
PARQUET_OPTIONS = {"compression": "uncompressed", "statistics": False}


@lru_cache(maxsize=1)
def code_version() -> str:
    h = hashlib.sha256()
    for base in (PROJECT_ROOT / "annex", PROJECT_ROOT / "schemas"):
        for p in sorted(base.glob("*.py")):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's content. A run needs it three times per input (its fingerprint, the parse-cache key,
    source_files); it is read once, remembered per path, size, modification and change time and inode (as
    git's index does: any write to the file changes its change time, which no user can set back) — and, inside
    hash_memo(), across runs, so that a nightly run does not read 100 MB of
    unchanged reference files only to find them unchanged."""
    st = os.stat(path)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    key = os.path.abspath(path)
    known = _memo.get(key)
    if known is not None and known[:4] == stamp:
        _memo_seen.add(key)
        return known[4]
    sha = _sha256_of(str(path), *stamp)
    if _memo_file is not None:
        _memo[key] = [*stamp, sha]
        _memo_seen.add(key)
    return sha


HASH_MEMO = "sha256_memo.json"
_memo: dict[str, list] = {}
_memo_seen: set[str] = set()
_memo_file: Path | None = None


@contextlib.contextmanager
def hash_memo(cache: Path):
    """Within: file_sha256 uses and extends cache/HASH_MEMO; on leaving, the entries this run looked at are
    written back (files no longer read drop out). A missing or damaged memo only means hashing again."""
    global _memo_file
    _memo.clear()
    _memo_seen.clear()
    try:
        loaded = json.loads((cache / HASH_MEMO).read_text(encoding="utf-8"))
        _memo.update({k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 5})
    except (OSError, ValueError, AttributeError):
        pass
    _memo_file = cache / HASH_MEMO
    try:
        yield
        if _memo_seen:
            keep = {k: _memo[k] for k in sorted(_memo_seen) if k in _memo}
            try:   # a memo that cannot be written is only a slower next run
                cache.mkdir(parents=True, exist_ok=True)
                write_atomic(cache / HASH_MEMO, lambda p: p.write_text(json.dumps(keep), encoding="utf-8"))
            except OSError:
                pass
    finally:
        _memo_file = None
        _memo.clear()
        _memo_seen.clear()


@lru_cache(maxsize=4096)
def _sha256_of(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """write(temporary path) beside path, then renamed over it: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _entry(cache: Path, path: Path, kind: str, params: str) -> tuple[Path, Path]:
    """The cache's (Parquet, JSON) pair for one parse of path."""
    key = _key(kind, file_sha256(path), code_version(), params)
    return cache / f"{kind}-{key}.parquet", cache / f"{kind}-{key}.json"


def is_cached(cache: Path | None, path: Path, kind: str, params: str) -> bool:
    """Whether cached_read would answer from the cache (no parse)."""
    if cache is None or not path.is_file():
        return False
    return all(p.exists() for p in _entry(cache, path, kind, params))


def cached_read(cache: Path | None, path: Path, kind: str, params: str, read: Callable[[], ReadResult],
                rows: pl.Expr | None = None) -> ReadResult:
    """read() once per (file content, code, params); later the same ReadResult from Parquet + JSON.

    The file path inside the result (findings, source_file column) is the path of this call, so a cached parse
    of the same bytes under another folder still names the file the user has. rows: only the accepted rows
    it selects are returned (filtered while the Parquet file is scanned); the cache keeps them all.
    """
    if cache is None or not path.is_file():
        return _selected(read(), rows)
    data, meta = _entry(cache, path, kind, params)
    if data.exists() and meta.exists():
        try:
            _used(data, meta)
            m = json.loads(meta.read_text(encoding="utf-8"))
            accepted = pl.read_parquet(data) if rows is None else pl.scan_parquet(data).filter(rows).collect()
            if "source_file" in accepted.columns:
                accepted = accepted.with_columns(pl.lit(str(path)).alias("source_file"))
            findings = [{**f, "source_file": str(path)} for f in m["findings"]]
            return ReadResult(m["kind"], str(path), accepted, findings, m["rows_in"], m["skipped_blank"],
                              m["out_of_scope"], m["status"], m["as_of"], str(data) if rows is None else None)
        except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
            pass  # a damaged cache entry is parsed again and rewritten
    res = read()
    cache.mkdir(parents=True, exist_ok=True)
    # from one chunk (a 名簿's frame is its sheets' pieces): the file's row groups are then of one size, which
    # DuckDB needs to insert them in order (warehouse.StagedFiles)
    res = dataclasses.replace(res, accepted=res.accepted.rechunk(), parquet=str(data))
    write_atomic(data, lambda p: res.accepted.write_parquet(p, **PARQUET_OPTIONS))
    write_atomic(meta, lambda p: p.write_text(json.dumps(
        {"kind": res.kind, "findings": res.findings, "rows_in": res.rows_in, "skipped_blank": res.skipped_blank,
         "out_of_scope": res.out_of_scope, "status": res.status, "as_of": res.as_of}, ensure_ascii=False,
        default=str), encoding="utf-8"))
    return _selected(res, rows)


def _selected(res: ReadResult, rows: pl.Expr | None) -> ReadResult:
    if rows is None or res.accepted.height == 0:
        return res
    return dataclasses.replace(res, accepted=res.accepted.filter(rows), parquet=None)


def cached_frames(cache: Path | None, kind: str, key_parts: list[str], names: list[str],
                  compute: Callable[[], dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """Derived frames (the links of a prefecture) keyed on the content of everything they were derived from."""
    if cache is None:
        return compute()
    key = _key(kind, code_version(), *key_parts)
    files = {n: cache / f"{kind}-{key}-{n}.parquet" for n in names}
    if all(p.exists() for p in files.values()):
        try:
            _used(*files.values())
            return {n: pl.read_parquet(p) for n, p in files.items()}
        except (OSError, pl.exceptions.PolarsError):
            pass
    out = compute()
    cache.mkdir(parents=True, exist_ok=True)
    for n, p in files.items():
        write_atomic(p, lambda t, n=n: out[n].write_parquet(t, **PARQUET_OPTIONS))
    return out


# an entry of the cache (cached_read's Parquet and JSON, cached_frames' Parquet files), by its name; the
# cache's other files (the hash memo, the last build's manifest, the prune mark) are not entries
ENTRY = re.compile(r"[a-z_]+-[0-9a-f]{32}(?:-[a-z_]+)?\.(?:parquet|json)")
PRUNE_MARK = "prune_mark"


def _used(*paths: Path) -> None:
    """Mark entries read from the cache as used by this run (their modification time: written ones have it)."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.utime(p)


def prune_mark(cache: Path) -> int | None:
    """Mark the start of a run that rebuilds everything; its modification time (the file system's clock, the
    one the entries' times come from), for prune()."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        mark = cache / PRUNE_MARK
        mark.touch()
        return mark.stat().st_mtime_ns
    except OSError:
        return None


def prune(cache: Path, since: int | None) -> list[str]:
    """After a run that rebuilt everything and succeeded: remove the entries it neither read nor wrote (older
    than its prune_mark). Every parse is keyed on the file's content and the code, so without this the cache
    grew by a parse of every reference file each month and at each new version of the code. A run that
    redoes only some prefectures uses only some entries, and must not prune."""
    removed: list[str] = []
    try:   # a cache that cannot be listed (gone, no permission) is only left as it is
        entries = list(cache.iterdir()) if since is not None else []
    except OSError:
        entries = []
    for p in entries:
        try:
            if ENTRY.fullmatch(p.name) and p.stat().st_mtime_ns < since:
                p.unlink()
                removed.append(p.name)
        except OSError:   # gone already, or not ours to remove: only a larger cache
            continue
    return sorted(removed)
