"""支援病/支援診 status of each institution, in Python, for the checks that run before the DuckDB build.

Same rule as sql/home_care_status.sql (a test holds the two equal): the strongest 支援病/支援診 type wins
(1 < 2ア < 2イ < 2 < 3 by type text), 在後病 and 在医総管 are flags.
"""
from __future__ import annotations

import polars as pl

SHIEN_PATTERN = r"^支援(病|診)[123](ア|イ)?$"
STATUS_COLUMNS = {"inst_code": pl.String, "shien_kind": pl.String, "shien_type": pl.String,
                  "shien_symbol": pl.String, "kouhou_byoin": pl.Boolean, "zaiisoukan": pl.Boolean}


def status_symbol() -> pl.Expr:
    """The notifications shien_status reads (支援病/支援診, 在後病, 在医総管); any other does not change a status."""
    sym = pl.col("symbol")
    return sym.str.contains(SHIEN_PATTERN) | (sym == "在後病") | sym.str.starts_with("在医総管")


def shien_status(notifications: pl.DataFrame) -> pl.DataFrame:
    """One row per institution that has any notification."""
    return _shien_status(notifications).collect()


def _shien_status(notifications: pl.DataFrame) -> pl.LazyFrame:
    """shien_status as one query: run per prefecture by the reports stage, its dozen steps were as many
    collects (~4 ms a prefecture against ~2 ms)."""
    if notifications.height == 0:
        return pl.LazyFrame(schema=STATUS_COLUMNS)
    sym = pl.col("symbol")
    rows = notifications.lazy()
    shien = (rows.filter(sym.str.contains(SHIEN_PATTERN))
             .with_columns((sym.str.slice(3) + sym).alias("_order"))
             .sort(["inst_code", "_order"])
             .group_by("inst_code", maintain_order=True).first()
             .select("inst_code", sym.str.slice(0, 3).alias("shien_kind"), sym.str.slice(3).alias("shien_type"),
                     sym.alias("shien_symbol")))
    flags = rows.group_by("inst_code").agg(
        (sym == "在後病").any().alias("kouhou_byoin"), sym.str.starts_with("在医総管").any().alias("zaiisoukan"))
    return (flags.join(shien, on="inst_code", how="left")
            .select(list(STATUS_COLUMNS)).sort("inst_code"))


def institutions_with_status(institutions: pl.DataFrame, notifications: pl.DataFrame) -> pl.DataFrame:
    """Institutions of the reference data (in their order) with their status columns (null/false when none)."""
    return (institutions.lazy().join(_shien_status(notifications), on="inst_code", how="left", maintain_order="left")
            .with_columns(pl.col("kouhou_byoin").fill_null(False), pl.col("zaiisoukan").fill_null(False))
            .collect())
