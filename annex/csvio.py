"""Bytes -> text for CSV files as officials and publishers ship them (UTF-8 with or without BOM, CP932)."""
from __future__ import annotations

import csv
import io


class EncodingError(ValueError):
    pass


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). UTF-8 (BOM optional) first, then CP932; anything else is an error."""
    for enc in ("utf-8-sig", "cp932"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        # a stray BOM in the middle of a file (files concatenated by hand) is noise, not data
        return text.replace("\ufeff", ""), enc
    raise EncodingError("文字コードを判別できません（UTF-8 または Shift_JIS(CP932) で保存してください）")


def rows_with_line_numbers(text: str):
    """Yield (line_number, fields) where line_number is the 1-based line on which the record starts,
    as a spreadsheet or text editor shows it (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1
