"""zaitaku-annex: logic for the 在宅医療 annex pipeline (plain functions; Prefect wiring lives in flows/)."""
from pathlib import Path

import polars as pl

# polars 2 runs a LazyFrame's collect() on its streaming engine unless told otherwise: ~290 µs for a query on
# a few rows against ~50 µs in memory. pandera collects ~40 small queries per validation, and a national run
# validates 1,851 reports in 60 calls (a call: 25 → 13 ms); the large frames (the 名簿's 1.5 M rows) measured
# the same either way. The setting is process-wide and inherited by the worker processes (an environment
# variable).
pl.Config.set_engine_affinity("in-memory")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
