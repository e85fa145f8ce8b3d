"""Check helpers shared by the report models."""
from __future__ import annotations

import weakref
from collections.abc import Callable

import polars as pl

from annex.frames import Memo


VERDICTS_KEPT = 1 << 16   # values kept per check at most (then begun anew): a report column repeats a few


# per check function: the verdicts of every call, weakly held (a lambda made per call takes its own along)
_VERDICTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def each_distinct(data, ok: Callable[[str], bool]) -> pl.LazyFrame:
    """A per-value check (as pandera's element_wise=True) run once per distinct value and as one expression.

    A report column holds a handful of distinct values (○, blanks, the same 種別 on most rows): the Python
    function sees each once instead of every row through map_elements, which is also what makes polars'
    in-memory engine slow on it (annex/__init__.py). ok must depend on the value alone: its verdicts are kept
    from call to call (a national run validates ~20 batches of prefectures, whose ○, 種別 and blanks are the
    same), so give a function defined once (at module level), not a lambda made at each call. Each row's
    verdict is looked up in a dict: cheaper on a few thousand rows than polars' unique and is_in. Null passes,
    as in an element-wise check of a nullable column."""
    verdicts = _VERDICTS.get(ok)
    if verdicts is None:
        verdicts = _VERDICTS[ok] = Memo(lambda v: v is None or bool(ok(v)), VERDICTS_KEPT)

    def run(s: pl.Series) -> pl.Series:
        return pl.Series(s.name, list(map(verdicts.__getitem__, s.to_list())), dtype=pl.Boolean)
    return data.lazyframe.select(pl.col(data.key).map_batches(run, return_dtype=pl.Boolean))


def not_longer_than(data, n: int) -> pl.LazyFrame:
    """At most n characters (code points, as Python's len counts them); null passes."""
    col = pl.col(data.key)
    return data.lazyframe.select(col.is_null() | (col.str.len_chars() <= n))
