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
    if notifications.height == 0:
        return pl.DataFrame(schema=STATUS_COLUMNS)
    sym = pl.col("symbol")
    shien = (notifications.filter(sym.str.contains(SHIEN_PATTERN))
             .with_columns((sym.str.slice(3) + sym).alias("_order"))
             .sort(["inst_code", "_order"])
             .group_by("inst_code", maintain_order=True).first()
             .select("inst_code", sym.str.slice(0, 3).alias("shien_kind"), sym.str.slice(3).alias("shien_type"),
                     sym.alias("shien_symbol")))
    flags = notifications.group_by("inst_code").agg(
        (sym == "在後病").any().alias("kouhou_byoin"), sym.str.starts_with("在医総管").any().alias("zaiisoukan"))
    return (flags.join(shien, on="inst_code", how="left")
            .select(list(STATUS_COLUMNS)).sort("inst_code"))


def institutions_with_status(institutions: pl.DataFrame, notifications: pl.DataFrame) -> pl.DataFrame:
    """Institutions of the reference data with their status columns (null/false when none)."""
    st = shien_status(notifications)
    return (institutions.join(st, on="inst_code", how="left")
            .with_columns(pl.col("kouhou_byoin").fill_null(False), pl.col("zaiisoukan").fill_null(False)))
