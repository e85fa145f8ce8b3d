"""Building annex.duckdb: stage the parsed frames, run sql/<table>.sql in order, swap the file in atomically."""
from __future__ import annotations

import os
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
               "candidates"]
DB_NAME = "annex.duckdb"


def build(out_dir: Path, staged: dict[str, pl.DataFrame]) -> Path:
    """Write <out_dir>/annex.duckdb from staged frames (keys: stg_<name>).

    The database is built under a temporary name in the same folder and moved over the old file with
    os.replace, so readers see either the old or the new file, and a failure leaves the old one.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / DB_NAME
    tmp = out_dir / f".{DB_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        con = duckdb.connect(str(tmp))
        try:
            for name, frame in staged.items():
                con.register(f"_{name}", frame)
                con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM "_{name}"')
                con.unregister(f"_{name}")
            for table in TABLE_ORDER:
                con.execute((SQL_DIR / f"{table}.sql").read_text(encoding="utf-8"))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, final)
    finally:
        for p in (tmp, Path(str(tmp) + ".wal")):
            if p.exists():
                p.unlink()
    return final
