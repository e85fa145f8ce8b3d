"""Small helpers every workbook we write needs (templates, return workbooks, the annex)."""
from __future__ import annotations

import hashlib
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


MAX_NAME_BYTES = 200   # file systems allow 255 bytes per name (ext4, XFS, APFS): room for a suffix such as .tmp
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}\Z")


def safe_file_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name from text we do not control (a sender's name, a report's file name): characters no file
    system or no reader wants (/ \\ : * ? " < > | and control characters) become _, no leading or trailing dots
    and spaces, at most max_bytes in UTF-8 (file systems count bytes: 80 kanji are 240), the extension kept.
    When anything had to be replaced or cut, ~ and a hash of the whole original name go before the extension,
    so that names that differ only there (a:b and a?b, two long names with the same start) stay two files."""
    m = _EXTENSION.search(name)
    stem, ext = (name[:m.start()], m.group()) if m else (name, "")
    safe = _UNSAFE.sub("_", stem).strip(" .") or "_"
    if safe == stem and len(safe.encode("utf-8")) + len(ext) <= max_bytes:
        return safe + ext
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    room = max_bytes - len(ext) - len(tag)
    cut = safe.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")   # never half a character
    return (cut or "_") + tag + ext
