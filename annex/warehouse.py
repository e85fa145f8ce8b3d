"""Building annex.duckdb: stage the parsed frames, run sql/<table>.sql in order, swap the file in atomically.

The new file is built under a temporary name beside the old one; the old one is attached read-only (when it
exists and can be read) so that `changes` can compare with it. Publishing is a single os.replace: readers see
either the old or the new file, and a failure at any point leaves the old one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import duckdb
import polars as pl

from annex import SQL_DIR

# staging -> marts; each file creates the table it is named after
TABLE_ORDER = ["notifications", "municipalities", "areas", "facilities", "institutions", "facility_links",
               "link_review", "unlinked_institutions", "unlinked_facilities", "source_files", "findings",
               "report_files", "institution_reports", "hub_reports", "reported_hubs", "annex_hubs",
               "home_care_status", "reported_institutions", "annex_institutions", "resource_counts", "coverage",
               "candidates", "runs", "changes"]
# build(): the 1.5 M notifications (first: the longest statement) are inserted by a second connection while this
# one builds every other table, none of which reads that table (tested: home_care_status reads the staged rows)
BESIDE = "notifications"
assert BESIDE in TABLE_ORDER   # build() always starts it
DB_NAME = "annex.duckdb"
MEMORY_LIMIT = "400MB"   # for building the file (national: 1.5 M 名簿 rows); readers are not limited
# the file's storage format: DuckDB's default (v0.10.2, readable by every release since) compresses string columns
# the old way, at ~0.2 s of CPU per text column of the 1.5 M notifications whatever it holds; the v1.3.0 format
# builds that table in 1.6 s of CPU instead of 2.5 s, 23 MB instead of 26. Readers need DuckDB 1.3 or later
# (the CLI installed with the project is the library's own version).
STORAGE_VERSION = "v1.3.0"
BUILD_CONFIG = {"memory_limit": MEMORY_LIMIT, "storage_compatibility_version": STORAGE_VERSION}
# what `changes` compares with: these columns of the previous file's tables (empty when there is none, or
# when the previous file is older than these columns)
PREVIOUS = {
    "annex_institutions": ["pref_code", "inst_code", "name", "shien_symbol", "kouhou_byoin",
                           *[f"torikumi_{n}" for n in range(1, 7)]],
    "annex_hubs": ["pref_code", "hub_id", "name", "area_names", "operator", *[f"torikumi_{n}" for n in range(1, 6)]],
    "runs": ["run_id", "started_at", "outcome"],
}


@dataclass(frozen=True)
class StagedFiles:
    """A staged table that is already on disk in pieces: Parquet files written from one chunk each (the parse
    cache's), in the order their rows are staged, each file's rows with source_file set to its own value (the
    cache keeps the path the file was parsed under). Nationally the 1.5 M 名簿 rows: writing them out again for
    the stage took ~0.6 s of CPU on the run's one busy thread."""
    files: tuple[tuple[Path, str], ...]   # (Parquet file, the source_file of its rows)
    height: int = 0                        # rows in all the files (as a frame's height: for the run's log)


Staged = Union[pl.DataFrame, StagedFiles]


def build(out_dir: Path, staged: dict[str, Staged]) -> Path:
    """Write a new database from staged frames (keys: stg_<name>) and return its temporary path.
    The caller publishes it with publish() once everything built from it is ready.

    One DuckDB thread per statement, two statements at a time: BESIDE in a second connection (a thread of this
    process; DuckDB runs without the interpreter lock), all the other tables here meanwhile. Inserted by one
    thread, the notifications keep their staged order (two threads interleaved their row groups); and DuckDB's
    two threads per statement used more CPU than they saved time (national build ~4.6 → 3.5 s, 7.2 → 5.3 s of
    CPU)."""
    # BESIDE starts before the other frames are staged (nationally its rows are the parse cache's files, staged
    # already): writing those frames out (~0.2 s) is no longer all this process does while the other core waits
    name = f"stg_{BESIDE}"
    first = {name: staged[name]} if name in staged and not isinstance(staged[name], StagedFiles) else {}
    # the pool is left (its thread waited for) before the file is closed, or removed if anything failed
    with _new_file(out_dir, first) as (con, tmp), ThreadPoolExecutor(1) as pool:
        con.execute("SET threads = 1")   # the database's setting: both connections
        side = _prepare(con.cursor())    # a connection of its own: the staged view it reads is made again for it
        beside = pool.submit(_build_beside, side, tmp, staged.get(name))
        try:
            _stage_views(con, _stage_dir(tmp), {k: v for k, v in staged.items() if k not in first})
            for table in TABLE_ORDER:
                if table == BESIDE:
                    continue
                if table == "runs":
                    _previous(con, out_dir / DB_NAME)
                con.execute(_sql(table))
        finally:
            beside.exception()   # waits: the connection is not closed under its statement
            side.close()
        beside.result()
    return tmp


# the view of a table's rows its SQL file defines (from its stg_ view), for the pieces of StagedFiles after the
# first: the file's CREATE TABLE takes the first piece's rows, each further piece is inserted through this view
ROWS_VIEW = {BESIDE: "notification_rows"}


def _build_beside(con: duckdb.DuckDBPyConnection, tmp: Path, staged: Staged | None) -> None:
    """BESIDE on its own connection. From StagedFiles one statement per file, in order: DuckDB 1.5 stored the tail
    of an uneven row group after later row groups of the same statement (see _stage_views), and each file ends
    in one. The stg_ view of this connection is remade for each file; all of them in one transaction (a commit
    per file made the other connection's statements wait for it)."""
    name = f"stg_{BESIDE}"
    if not isinstance(staged, StagedFiles):
        _stage_view(con, _stage_dir(tmp) / f"{name}.parquet")
        con.execute(_sql(BESIDE))
        return
    _files_table(con, name, staged)
    con.execute("BEGIN TRANSACTION")
    for i, (path, _) in enumerate(staged.files):
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {_file_rows(name, i, path)}')
        con.execute(_sql(BESIDE) if i == 0 else f'INSERT INTO {BESIDE} SELECT * FROM {ROWS_VIEW[BESIDE]}')
    con.execute("COMMIT")


def _file_rows(name: str, i: int, path: Path) -> str:
    """The SELECT of the i-th file of StagedFiles <name>, its rows' source_file from <name>_files."""
    return (f'SELECT * REPLACE ((SELECT source_file FROM "{name}_files" WHERE ordinal = {i}) AS source_file) '
            f'FROM read_parquet({_path_literal(path)})')


def _files_table(con: duckdb.DuckDBPyConnection, name: str, staged: StagedFiles) -> None:
    """The temp table <name>_files (ordinal, source_file) of StagedFiles: source_file comes from an input's file
    name, so it is bound as a parameter, never pasted into the views' SQL."""
    con.execute(f'CREATE TEMP TABLE "{name}_files" (ordinal INTEGER, source_file VARCHAR)')
    con.executemany(f'INSERT INTO "{name}_files" VALUES (?, ?)',
                    [(i, source) for i, (_, source) in enumerate(staged.files)])


def _sql(table: str) -> str:
    return (SQL_DIR / f"{table}.sql").read_text(encoding="utf-8")


@contextlib.contextmanager
def _new_file(out_dir: Path, staged: dict[str, Staged], copy_of: Path | None = None):
    """(connection, path) of a new database under a temporary name beside the published one — empty, or a copy of
    copy_of — with the staged frames as temp views. On leaving: CHECKPOINT and close, the staging removed; if the
    body fails, the new file is removed too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{DB_NAME}.{uuid.uuid4().hex}.tmp"
    stage_dir = _stage_dir(tmp)
    try:
        if copy_of is not None:
            shutil.copyfile(copy_of, tmp)
        # DuckDB's own memory is capped (sorts and joins spill to a temporary folder beside the file, removed
        # with it): nationally the build otherwise adds ~700 MB on top of the frames this process holds
        con = _connect(tmp)
        try:
            stage_dir.mkdir()
            _stage_views(con, stage_dir, staged)
            yield con, tmp
            con.execute("CHECKPOINT")
        finally:
            con.close()
            shutil.rmtree(stage_dir, ignore_errors=True)
    except BaseException:
        discard(tmp)
        raise


# The tables that change when only reports change (the reference data, the prefecture's configuration and
# its link overrides being as in the last build), in build order. update() rebuilds their rows for the
# prefectures concerned; every other table is the last build's.
REPORT_TABLES = ["source_files", "findings", "report_files", "institution_reports", "reported_institutions",
                 "hub_reports", "reported_hubs", "annex_institutions", "annex_hubs", "coverage", "candidates",
                 "changes"]


def update(out_dir: Path, staged: dict[str, pl.DataFrame], pref_codes: list[str],
           run_rows: Callable[[list[dict]], pl.DataFrame]) -> Path:
    """A new database that is the published one with the rows of REPORT_TABLES replaced for pref_codes,
    from staged frames that hold those prefectures' reports only (stg_source_files, stg_findings,
    stg_report_files, stg_institution_reports, stg_hub_reports). The same sql/<table>.sql files run in a
    scratch schema that sees the published tables behind it; their rows then replace the old ones. `changes`
    compares those prefectures with their rows in the published file; other prefectures keep theirs, as they
    keep everything else (carried over, like a run with nothing changed). `runs` is rebuilt whole: run_rows
    gets this run's inputs (every file in source_files) and returns the stg_runs frame.
    Like build(), the result has a temporary name for the caller to publish()."""
    with _new_file(out_dir, staged, copy_of=out_dir / DB_NAME) as (con, tmp):
        con.execute("CREATE TEMP TABLE changed_prefs AS SELECT unnest(?::VARCHAR[]) AS pref_code", [pref_codes])
        # the report files these prefectures had: their source_files and findings rows are replaced too
        con.execute("""CREATE TEMP TABLE changed_files AS
                       SELECT source_file FROM main.report_files WHERE pref_code IN (SELECT pref_code FROM changed_prefs)
                       UNION SELECT source_file FROM stg_report_files""")
        for t, cols in PREVIOUS.items():
            where = "" if t == "runs" else " WHERE pref_code IN (SELECT pref_code FROM changed_prefs)"
            con.execute(f"CREATE TEMP TABLE prev_{t} AS SELECT {', '.join(cols)} FROM main.{t}{where}")
        con.execute("CREATE SCHEMA part")
        con.execute("SET search_path = 'part,main'")
        for table in REPORT_TABLES:
            if table == "changes":
                _replace_runs(con, run_rows)
            con.execute((SQL_DIR / f"{table}.sql").read_text(encoding="utf-8"))
        con.execute("SET search_path = 'main'")
        columns: dict[str, list[str]] = {}
        for t, c in con.execute("""SELECT table_name, column_name FROM information_schema.columns
                                   WHERE table_schema = 'main' ORDER BY table_name, ordinal_position""").fetchall():
            columns.setdefault(t, []).append(c)
        for table in REPORT_TABLES:
            cols = columns[table]
            if "pref_code" in cols:
                where = "pref_code IN (SELECT pref_code FROM changed_prefs)"
            else:
                where = "source_file IN (SELECT source_file FROM changed_files)"
            quoted = ", ".join(f'"{c}"' for c in cols)
            con.execute(f"DELETE FROM main.{table} WHERE {where}")
            # a table built from the reference side as well (coverage: every area) has rows for the
            # other prefectures in the scratch schema too: only the changed ones' are taken
            con.execute(f"INSERT INTO main.{table} ({quoted}) SELECT {quoted} FROM part.{table} WHERE {where}")
        con.execute("DROP SCHEMA part CASCADE")
    return tmp


def _replace_runs(con: duckdb.DuckDBPyConnection, run_rows: Callable[[list[dict]], pl.DataFrame]) -> None:
    """runs in the main schema, rebuilt from the log plus this run with the inputs the new file lists (the
    carried-over source_files rows with the ones just rebuilt)."""
    cur = con.execute("""SELECT source_file, kind, sha256, rows_in, accepted, rejected FROM (
                             SELECT * FROM main.source_files WHERE source_file NOT IN (SELECT source_file FROM changed_files)
                             UNION ALL BY NAME SELECT * FROM part.source_files)
                         ORDER BY kind, source_file""")
    frame = run_rows(dict_rows(cur))
    con.register("stg_runs_frame", frame)
    con.execute("CREATE OR REPLACE TEMP VIEW stg_runs AS SELECT * FROM stg_runs_frame")
    con.execute("DROP TABLE main.runs")
    con.execute("SET search_path = 'main'")
    con.execute((SQL_DIR / "runs.sql").read_text(encoding="utf-8"))
    con.execute("SET search_path = 'part,main'")


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return _prepare(duckdb.connect(str(path), config=BUILD_CONFIG))


def _prepare(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # DuckDB draws a progress bar on the terminal for statements over 2 s (the national 名簿 table): the CLI
    # has its own progress lines, and a scheduled run's log is no place for one (a session-only setting)
    con.execute("SET enable_progress_bar = false")
    return con


def _stage_dir(tmp: Path) -> Path:
    return Path(str(tmp) + ".stage")


def dict_rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    """The rows of an executed query as dicts (without going through Arrow: importing pyarrow alone costs a
    run that only updates a few prefectures ~0.6 s)."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _stage_views(con: duckdb.DuckDBPyConnection, stage_dir: Path, staged: dict[str, Staged]) -> None:
    """Staged frames as temp views over Parquet files beside the new database: DuckDB streams them, where
    registering the frames converted every string column to Arrow in memory first (the 1.5 M 名簿 rows: +1 GB
    peak nationally). StagedFiles are read where they are; this connection's view of them is in no set order
    (BESIDE, the one table that keeps the order, is inserted file by file: _build_beside)."""
    for name, frame in staged.items():
        if isinstance(frame, StagedFiles):
            _files_table(con, name, frame)
            con.execute(f'CREATE TEMP VIEW "{name}" AS ' + " UNION ALL ".join(
                _file_rows(name, i, path) for i, (path, _) in enumerate(frame.files)))
            continue
        path = stage_dir / f"{name}.parquet"
        # from one chunk, in row groups of one size: from a frame in pieces (a file's sheets) polars writes a row
        # group per piece, and DuckDB 1.5 inserted the tail of an uneven one (the last 53 rows of 149,557) after the
        # file's other row groups, one thread and insertion order notwithstanding (tested)
        frame.rechunk().write_parquet(path, compression="uncompressed", statistics=False)
        _stage_view(con, path)


def _stage_view(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The temp view stg_<name> over stage_dir/stg_<name>.parquet (CREATE VIEW takes no bound parameters)."""
    con.execute(f'CREATE TEMP VIEW "{path.stem}" AS SELECT * FROM read_parquet({_path_literal(path)})')


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
