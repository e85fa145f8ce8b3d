"""Every run, successful or not: an append-only log out/runs.jsonl, and the `runs` table built from it.

The log lives beside annex.duckdb and outlives it: a failed run cannot write a new DuckDB file (the previous
one is kept), but it does append its line, so the next good run's `runs` table shows it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

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


def _line(run: Run, outcome: str, inputs: list[dict], error: str | None,
          finished_at: dt.datetime | None = None) -> dict:
    return {"run_id": run.run_id, "started_at": run.started_at.isoformat(),
            "finished_at": (finished_at or dt.datetime.now(dt.timezone.utc)).isoformat(),
            "parameters": json.dumps(run.parameters, ensure_ascii=False, sort_keys=True), "outcome": outcome,
            "error": error, "inputs": inputs}


def record(out: Path, run: Run, outcome: str, inputs: list[dict] | None = None, error: str | None = None) -> None:
    """Append one line (one write call, flushed and synced: a crash leaves whole lines)."""
    out.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(_line(run, outcome, inputs or [], error), ensure_ascii=False) + "\n").encode("utf-8")
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
