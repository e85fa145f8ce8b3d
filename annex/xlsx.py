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


# 禁則: a line never starts with a closing mark, punctuation, a small kana or the long-vowel mark, and never ends
# with an opening mark (Excel and LibreOffice both keep them with their neighbour)
_NO_LINE_START = frozenset("、。，．・：；？！）」』】〕｝〉》ー…‥ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々,.:;?!)]}%")
_NO_LINE_END = frozenset("（「『【〔｛〈《([{")
# Room lost per line: the cell's inner margins and the rounding of the column to whole pixels in Excel (10 pt
# ＭＳ Ｐゴシック: 7 px per width unit, a kanji 13 px, so a kanji line has ~7 % to spare but a line of digits none)
LINE_MARGIN = 0.5


@lru_cache(maxsize=1 << 16)
def wrapped_lines(text: str, width: float) -> int:
    """Lines a wrapped cell of this width (xlsxwriter's set_column units: digit widths) needs. Row heights must
    be set from it: neither Excel nor LibreOffice reliably grows rows of wrapped text in a generated file.

    Each piece that cannot be broken (a run of half-width characters, one full-width character with the marks
    禁則 keeps with it) is counted at its display width and the line filled greedily, as the renderers do. A
    full-width character counts 2 digit widths: Excel (10 pt ＭＳ Ｐゴシック) sets it in ~1.9, LibreOffice (with
    IPAPGothic for it, whose digits are wider) in ~1.6 (measured), so the estimate fits Excel, with a little to
    spare for printing, and is never short in LibreOffice, where a text up to ~1.25 × the width still fits one
    line. A text that fits in a line is 1 line (the old 0.95·width − 1 gave a spare blank line to a third of the
    institution rows). Remembered: a column's texts repeat (municipalities, 圏域, 運営主体 …)."""
    per_line = max(width - LINE_MARGIN, 1)
    return sum(_part_lines(p, per_line) for p in text.split("\n"))


def _part_lines(part: str, per_line: float) -> int:
    if display_width(part) <= per_line:
        return 1
    lines, used = 1, 0.0
    for w in _pieces(part):
        if used + w <= per_line:
            used += w
            continue
        if used:
            lines += 1
        # a piece wider than a line (a long run of digits or letters) is broken where the line ends
        extra = max(math.ceil(w / per_line) - 1, 0)
        lines += extra
        used = w - extra * per_line
    return lines


def _pieces(part: str) -> list[int]:
    """Display widths of the pieces a line may break between."""
    out: list[int] = []
    prev = ""
    for ch in part:
        w = display_width(ch)
        glued = bool(out) and (ch in _NO_LINE_START or prev in _NO_LINE_END
                               or (ch.isascii() and prev.isascii() and not prev.isspace()))
        if glued:
            out[-1] += w
        else:
            out.append(w)
        prev = ch
    return out


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
