"""Building annex.duckdb: stage the parsed frames, run sql/<table>.sql in order, swap the file in atomically.

The new file is built under a temporary name beside the old one; the old one is attached read-only (when it
exists and can be read) so that `changes` can compare with it. Publishing is a single os.replace: readers see
either the old or the new file, and a failure at any point leaves the old one.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb
import polars as pl

from annex import SQL_DIR

# staging -> marts; each file creates the table it is named after
TABLE_ORDER = ["municipalities", "areas", "facilities", "institutions", "notifications", "home_care_status",
               "facility_links", "link_review", "unlinked_institutions", "unlinked_facilities",
               "source_files", "findings", "report_files", "institution_reports", "reported_institutions",
               "hub_reports", "reported_hubs", "annex_institutions", "annex_hubs", "resource_counts", "coverage",
               "candidates", "runs", "changes"]
DB_NAME = "annex.duckdb"
MEMORY_LIMIT = "400MB"   # for building the file (national: 1.5 M 名簿 rows sorted); readers are not limited
# what `changes` compares with: these columns of the previous file's tables (empty when there is none, or
# when the previous file is older than these columns)
PREVIOUS = {
    "annex_institutions": ["pref_code", "inst_code", "name", "shien_symbol", "kouhou_byoin",
                           *[f"torikumi_{n}" for n in range(1, 7)]],
    "annex_hubs": ["pref_code", "hub_id", "name", "area_names", "operator", *[f"torikumi_{n}" for n in range(1, 6)]],
    "runs": ["run_id", "started_at", "outcome"],
}


def build(out_dir: Path, staged: dict[str, pl.DataFrame]) -> Path:
    """Write a new database from staged frames (keys: stg_<name>) and return its temporary path.
    The caller publishes it with publish() once everything built from it is ready."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{DB_NAME}.{uuid.uuid4().hex}.tmp"
    stage_dir = Path(str(tmp) + ".stage")
    try:
        # DuckDB's own memory is capped (sorts and joins spill to a temporary folder beside the file, removed
        # with it): nationally the build otherwise adds ~700 MB on top of the frames this process holds
        con = duckdb.connect(str(tmp), config={"memory_limit": MEMORY_LIMIT})
        try:
            # staged frames go through Parquet files beside the new database, read by temp views: DuckDB streams
            # them, where registering the frames converted every string column to Arrow in memory first (the
            # 1.5 M 名簿 rows: +1 GB peak nationally)
            stage_dir.mkdir()
            for name, frame in staged.items():
                path = stage_dir / f"{name}.parquet"
                frame.write_parquet(path, compression="uncompressed", statistics=False)
                # CREATE VIEW takes no bound parameters
                con.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM read_parquet({_path_literal(path)})')
            for table in TABLE_ORDER:
                if table == "runs":
                    _previous(con, out_dir / DB_NAME)
                con.execute((SQL_DIR / f"{table}.sql").read_text(encoding="utf-8"))
            con.execute("CHECKPOINT")
        finally:
            con.close()
            shutil.rmtree(stage_dir, ignore_errors=True)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def _path_literal(path: Path) -> str:
    """A path of ours (the output folder, never input text) as an SQL string literal, for the statements that
    take no bound parameters (ATTACH, CREATE VIEW)."""
    return "'" + str(path).replace("'", "''") + "'"


def _previous(con: duckdb.DuckDBPyConnection, final: Path) -> None:
    """prev_<table> temp tables: the previous file's tables, or empty ones of today's shape."""
    copied = False
    if final.exists():
        try:
            con.execute(f"ATTACH {_path_literal(final)} AS prev (READ_ONLY)")   # ATTACH takes no bound parameters
            try:
                for t, cols in PREVIOUS.items():
                    con.execute(f"CREATE TEMP TABLE prev_{t} AS SELECT {', '.join(cols)} FROM prev.main.{t}")
                copied = True
            finally:
                con.execute("DETACH prev")
        except duckdb.Error:
            # an older or damaged file: no baseline for `changes`; the new file is still built
            for t in PREVIOUS:
                con.execute(f"DROP TABLE IF EXISTS prev_{t}")
    if not copied:
        for t, cols in PREVIOUS.items():
            src = "stg_runs" if t == "runs" else t
            con.execute(f"CREATE TEMP TABLE prev_{t} AS SELECT {', '.join(cols)} FROM {src} LIMIT 0")


def publish(tmp: Path, out_dir: Path) -> Path:
    final = out_dir / DB_NAME
    os.replace(tmp, final)
    return final


def discard(tmp: Path) -> None:
    for p in (tmp, Path(str(tmp) + ".wal")):
        if p.exists():
            p.unlink()


def built_by(db: Path) -> str | None:
    """run_id of the run that built db (its newest `runs` row: a run lists itself last); None when the file is
    missing or unreadable. A run killed after swapping in its file but before recording success in runs.jsonl
    leaves a file built by a run the log does not know as successful: the outputs are then not the last good
    run's, and the next refresh must rebuild them even if nothing changed."""
    if not db.exists():
        return None
    try:
        con = duckdb.connect(str(db), read_only=True)
        try:
            row = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        finally:
            con.close()
    except duckdb.Error:
        return None
    return row[0] if row else None
