"""Every run, successful or not: an append-only log out/runs.jsonl, and the `runs` table built from it.

The log lives beside annex.duckdb and outlives it: a failed run cannot write a new DuckDB file (the previous
one is kept), but it does append its line, so the next good run's `runs` table shows it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from annex.cache import file_sha256

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
    """Append one line (one write call, flushed and synced: a crash leaves whole lines). outcome: success,
    unchanged (inputs and code as in the last good run: nothing rebuilt) or failed."""
    out.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(_line(run, outcome, inputs or [], error, **extra), ensure_ascii=False, default=str)
            + "\n").encode("utf-8")
    fd = os.open(out / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def history(out: Path) -> list[dict]:
    """Earlier runs from the log; a torn or foreign line is skipped, not fatal."""
    path = out / LOG_NAME
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and {"run_id", "started_at", "outcome"} <= rec.keys():
            lines.append(rec)
    return lines


def frame(out: Path, current: Run, inputs: list[dict]) -> pl.DataFrame:
    """The runs table: the log so far plus this run (as successful: the table only exists if it is)."""
    rows = history(out) + [_line(current, "success", inputs, None)]
    for r in rows:
        for k in ("started_at", "finished_at"):
            r[k] = dt.datetime.fromisoformat(r[k]) if r.get(k) else None
        r["inputs"] = [{c: i.get(c) for c in INPUT_STRUCT.to_schema()} for i in r.get("inputs") or []]
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


def fingerprint(raw: Path, prefs: list[str] | None, as_of: dt.date | None) -> str:
    """Everything a run's outputs depend on: every input file under raw/ (path and content), the code that
    reads and builds them (annex/, schemas/, sql/), and the parameters."""
    from annex import PROJECT_ROOT
    h = hashlib.sha256()
    h.update(json.dumps({"prefs": sorted(prefs or []), "as_of": str(as_of)}).encode())
    for base, pattern in ((raw, "**/*"), (PROJECT_ROOT / "annex", "*.py"), (PROJECT_ROOT / "schemas", "*.py"),
                          (PROJECT_ROOT / "sql", "*.sql")):
        for p in sorted(base.glob(pattern)):
            if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.parts) \
                    and p.relative_to(base).as_posix() not in NOT_INPUTS:
                h.update(str(p.relative_to(base)).encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def last_success(out: Path) -> dict | None:
    done = [r for r in history(out) if r.get("outcome") in ("success", "unchanged")]
    return done[-1] if done else None
