"""Every run, successful or not: an append-only log out/runs.jsonl, and the `runs` table built from it.

The log lives beside annex.duckdb and outlives it: a failed run cannot write a new DuckDB file (the previous
one is kept), but it does append its line, so the next good run's `runs` table shows it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from annex.cache import CACHE_DIR, file_sha256, write_atomic

LOG_NAME = "runs.jsonl"
INPUT_STRUCT = pl.Struct({"source_file": pl.String, "kind": pl.String, "sha256": pl.String, "rows_in": pl.Int64,
                          "accepted": pl.Int64, "rejected": pl.Int64})
RUN_COLUMNS = {"run_id": pl.String, "started_at": pl.Datetime("us", "UTC"), "finished_at": pl.Datetime("us", "UTC"),
               "parameters": pl.String, "outcome": pl.String, "error": pl.String, "inputs": pl.List(INPUT_STRUCT)}


@dataclass
class Run:
    run_id: str
    started_at: dt.datetime
    parameters: dict = field(default_factory=dict)


def start(raw: Path, out: Path, prefs: list[str] | None, **extra) -> Run:
    return Run(uuid.uuid4().hex, dt.datetime.now(dt.timezone.utc),
               {"raw": str(raw), "out": str(out), "prefs": prefs or "all", **extra})


def inputs_from(accounting: pl.DataFrame) -> list[dict]:
    if accounting.height == 0:
        return []
    return accounting.select(list(INPUT_STRUCT.to_schema())).to_dicts()


def _line(run: Run, outcome: str, inputs: list[dict], error: str | None, **extra) -> dict:
    return {"run_id": run.run_id, "started_at": run.started_at.isoformat(),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "parameters": json.dumps(run.parameters, ensure_ascii=False, sort_keys=True), "outcome": outcome,
            "error": error, "inputs": inputs, **extra}


def record(out: Path, run: Run, outcome: str, inputs: list[dict] | None = None, error: str | None = None,
           **extra) -> None:
    """Append one line (written whole, flushed and synced). outcome: success, unchanged (inputs and code as in
    the last good run: nothing rebuilt) or failed. A line torn by an earlier crash or a full disk is closed
    with a newline first, so that it never swallows this one."""
    out.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(_line(run, outcome, inputs or [], error, **extra), ensure_ascii=False, default=str)
            + "\n").encode("utf-8")
    fd = os.open(out / LOG_NAME, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            while data:   # a short write (file size limit, disk full) is followed by one that raises
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(out / LOG_NAME)) from exc
    finally:
        os.close(fd)


def record_failure(out: Path, run: Run, exc: BaseException) -> bool:
    """The `failed` line for exc. Never raises: when the log itself cannot be written (the disk that made the
    run fail is full, the folder is read-only), says so on stderr and returns False, so that the error the user
    sees is the original one."""
    text = f"{type(exc).__name__}: {exc}"
    problem = describe_failure(exc)
    try:
        record(out, run, "failed", error=f"{problem}（{text}）" if problem else text)
        return True
    except OSError as log_exc:
        print(f"警告: 実行記録 {out / LOG_NAME} にも書き込めませんでした（{describe_failure(log_exc) or log_exc}）。",
              file=sys.stderr)
        return False


# --- why a run failed, in Japanese -------------------------------------------------------------------
# errno -> (the words DuckDB and the C library use for it, what happened, what to do)
IO_PROBLEMS = {
    errno.ENOSPC: ("No space left on device", "ディスクの空き容量が足りないため書き込めませんでした",
                   "空きを作ってから再実行してください。"),
    errno.EDQUOT: ("Disk quota exceeded", "ディスク使用量の上限（クォータ）を超えたため書き込めませんでした",
                   "不要なファイルを削除するか上限を上げてから再実行してください。"),
    errno.EFBIG: ("File too large", "ファイルの大きさの上限を超えたため書き込めませんでした",
                  "ulimit -f またはファイルシステムの上限を確認してください。"),
    errno.EROFS: ("Read-only file system", "読み取り専用のファイルシステムのため書き込めませんでした",
                  "書き込める場所を --out に指定してください。"),
    errno.EACCES: ("Permission denied", "書き込む権限がないため書き込めませんでした",
                   "出力フォルダの権限を確認してください。"),
    errno.EPERM: ("Operation not permitted", "書き込む権限がないため書き込めませんでした",
                  "出力フォルダの権限を確認してください。"),
}


def _chain(exc: BaseException) -> list[BaseException]:
    """exc, its causes and contexts, and exceptions carried as arguments (xlsxwriter's FileCreateError(OSError))."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, *(a for a in e.args if isinstance(a, BaseException))]
    return seen


def describe_failure(exc: BaseException) -> str | None:
    """A Japanese line for a failure to write (disk full, file size limit, no permission, read-only file
    system), naming the file; None for anything else. Looks through the exception's chain: an OSError from
    Python code, or DuckDB's IO Error text ('Could not write file "…": No space left on device')."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, OSError) and e.errno in IO_PROBLEMS:
            _, what, todo = IO_PROBLEMS[e.errno]
            return f"{what}（{e.filename}）。{todo}" if e.filename else f"{what}。{todo}"
    for e in chain:
        text = str(e)
        for words, what, todo in IO_PROBLEMS.values():
            if words in text:
                where = re.search(r'(?:file|directory) "([^"]+)"', text)
                return f"{what}（{where.group(1)}）。{todo}" if where else f"{what}。{todo}"
    return None


def history(out: Path) -> list[dict]:
    """Earlier runs from the log; a torn or foreign line is skipped, not fatal. (Fresh dicts each call;
    one run asks several times, and the log grows by a line of inputs per run: parsed once per version.)"""
    path = out / LOG_NAME
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    return [dict(r) for r in _parsed_log(str(path), st.st_size, st.st_mtime_ns, st.st_ino)]


@functools.lru_cache(maxsize=4)
def _parsed_log(path: str, size: int, mtime_ns: int, inode: int) -> tuple[dict, ...]:
    lines = []
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and {"run_id", "started_at", "outcome"} <= rec.keys():
            lines.append(rec)
    return tuple(lines)


def frame(out: Path, current: Run, inputs: list[dict]) -> pl.DataFrame:
    """The runs table: the log so far plus this run (as successful: the table only exists if it is)."""
    rows = history(out) + [_line(current, "success", inputs, None)]
    fields = list(INPUT_STRUCT.to_schema())
    for r in rows:
        for k in ("started_at", "finished_at"):
            r[k] = dt.datetime.fromisoformat(r[k]) if r.get(k) else None
        r["inputs"] = [{c: i.get(c) for c in fields} for i in r.get("inputs") or []]
        r.setdefault("error", None)
        r.setdefault("parameters", None)
    return pl.DataFrame([{c: r.get(c) for c in RUN_COLUMNS} for r in rows], schema=RUN_COLUMNS)


# --- one run at a time ---------------------------------------------------------------------------
class Busy(RuntimeError):
    """Another refresh holds the output folder."""


@contextlib.contextmanager
def lock(out: Path, wait: float = 0.0):
    """Hold out/.annex.lock for the whole run. A second refresh on the same folder waits up to `wait`
    seconds, then refuses with the holder's PID and start time; it never interleaves with the first.
    flock is released by the kernel if the holder dies, so a killed run leaves no stale lock."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".annex.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "不明"
                    raise Busy(f"別の更新が実行中です（{holder}）。終わってから実行するか、--wait 秒数 を指定して"
                               "待ってください。") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()}、{dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S} 開始".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- nothing new, nothing to do ------------------------------------------------------------------
# files under raw/ that describe how to fetch, not what to read: a fetch that found nothing new must not
# make the next refresh rebuild
NOT_INPUTS = {"reference/fetch_log.jsonl", "reference/sources.toml"}


def manifest(raw: Path, prefs: list[str] | None, as_of: dt.date | None) -> dict:
    """Everything a run's outputs depend on: every input file under raw/ (relative path -> sha256), the code
    that reads and builds them (annex/, schemas/, sql/) as one hash, and the parameters. Kept for the last
    built run (save_manifest), so that the next run can tell which files changed (pipeline.changed_prefectures)."""
    from annex import PROJECT_ROOT
    files, code = {}, hashlib.sha256()
    for base, pattern in ((raw, "**/*"), (PROJECT_ROOT / "annex", "*.py"), (PROJECT_ROOT / "schemas", "*.py"),
                          (PROJECT_ROOT / "sql", "*.sql")):
        for p in sorted(base.glob(pattern)):
            if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.parts) \
                    and p.relative_to(base).as_posix() not in NOT_INPUTS:
                if base == raw:
                    files[p.relative_to(base).as_posix()] = file_sha256(p)
                else:
                    code.update(str(p.relative_to(PROJECT_ROOT)).encode() + b"\0" + file_sha256(p).encode())
    return {"params": {"prefs": sorted(prefs or []), "as_of": str(as_of)}, "code": code.hexdigest(), "files": files}


def fingerprint(raw: Path | dict, prefs: list[str] | None = None, as_of: dt.date | None = None) -> str:
    """One hash of manifest(raw, prefs, as_of) (or of a manifest already made)."""
    man = raw if isinstance(raw, dict) else manifest(raw, prefs, as_of)
    return hashlib.sha256(json.dumps(man, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


MANIFEST_NAME = "last_manifest.json"   # in out/.cache: the manifest of the last built run


def save_manifest(out: Path, run: Run, man: dict) -> None:
    """After a run that built the outputs has recorded its success: its manifest, for the next run to compare
    with. Written whole (temporary file, then rename); a run dying before this leaves the previous one, which
    names another run and is then not used."""
    path = out / CACHE_DIR / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda p: p.write_text(json.dumps({"run_id": run.run_id, "manifest": man}, ensure_ascii=False),
                                              encoding="utf-8"))


def built_manifest(out: Path) -> dict | None:
    """The manifest of the last run that built the outputs, if it is the one saved (else None)."""
    try:
        saved = json.loads((out / CACHE_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("run_id") is None or saved.get("run_id") != last_built(out):
        return None
    return saved.get("manifest")


def last_success(out: Path) -> dict | None:
    done = [r for r in history(out) if r.get("outcome") in ("success", "unchanged")]
    return done[-1] if done else None


def last_built(out: Path) -> str | None:
    """run_id of the last run that built the outputs and recorded it (outcome success)."""
    built = [r["run_id"] for r in history(out) if r.get("outcome") == "success"]
    return built[-1] if built else None
