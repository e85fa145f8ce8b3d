"""Check helpers shared by the report models."""
from __future__ import annotations

from collections.abc import Callable

import polars as pl


def each_distinct(data, ok: Callable[[str], bool]) -> pl.LazyFrame:
    """A per-value check (as pandera's element_wise=True) run once per distinct value and as one expression.

    A report column holds a handful of distinct values (○, blanks, the same 種別 on most rows): the Python
    function sees each once instead of every row through map_elements, which is also what makes polars'
    in-memory engine slow on it (annex/__init__.py). Null passes, as in an element-wise check of a nullable
    column."""
    def run(s: pl.Series) -> pl.Series:
        good = [v for v in s.unique().to_list() if v is not None and ok(v)]
        return s.is_in(pl.Series(good, dtype=pl.String).implode()) | s.is_null()
    return data.lazyframe.select(pl.col(data.key).map_batches(run, return_dtype=pl.Boolean))


def not_longer_than(data, n: int) -> pl.LazyFrame:
    """At most n characters (code points, as Python's len counts them); null passes."""
    col = pl.col(data.key)
    return data.lazyframe.select(col.is_null() | (col.str.len_chars() <= n))
