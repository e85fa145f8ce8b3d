"""zaitaku-annex: logic for the 在宅医療 annex pipeline (plain functions; Prefect wiring lives in flows/)."""
import os
import sys
from pathlib import Path

# polars 2 runs a LazyFrame's collect() on its streaming engine unless told otherwise: ~290 µs for a query on
# a few rows against ~50 µs in memory. pandera collects ~40 small queries per validation, and a national run
# validates 1,851 reports in 60 calls (a call: 25 → 13 ms); the large frames (the 名簿's 1.5 M rows) measured
# the same either way. polars reads the setting from the environment when it is imported (so the CLI need not
# import polars to set it, and the worker processes inherit it); one imported before this package is told.
os.environ["POLARS_ENGINE_AFFINITY"] = "in-memory"
if "polars" in sys.modules:
    sys.modules["polars"].Config.set_engine_affinity("in-memory")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
