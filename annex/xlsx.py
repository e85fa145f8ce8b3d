"""Small helpers every workbook we write needs (templates, return workbooks, the annex)."""
from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache


@lru_cache(maxsize=1 << 16)
def display_width(s: str) -> int:
    """Width in half-width character cells: full-width and CJK characters count 2 (xlsxwriter's autofit
    under-counts them). Remembered: the same names and marks fill whole columns."""
    if s.isascii():
        return len(s)
    return sum(2 if unicodedata.east_asian_width(ch) in "WFA" else 1 for ch in s)


def wrapped_lines(text: str, width: float) -> int:
    """Lines a wrapped cell of this width needs (a rough estimate, a little generous: Excel and LibreOffice
    set CJK text a bit wider than two digit widths). Row heights must be set from it: neither Excel nor
    LibreOffice reliably grows rows of wrapped text in a generated file."""
    per_line = max(width * 0.95 - 1, 1)
    return sum(max(1, math.ceil(display_width(p) / per_line)) for p in text.split("\n"))


def safe_file_name(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .")[:120] or "_"
