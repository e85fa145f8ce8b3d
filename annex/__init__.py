"""zaitaku-annex: logic for the 在宅医療 annex pipeline (plain functions; Prefect wiring lives in flows/)."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
