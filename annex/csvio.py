"""Bytes -> text for CSV files as officials and publishers ship them (UTF-8 with or without BOM, CP932)."""
from __future__ import annotations

import csv
import io


class EncodingError(ValueError):
    pass


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). UTF-8 (BOM optional) first, then CP932; anything else is an error.

    encoding is 'utf-8-sig', 'cp932', or 'mixed' (see decode_detail)."""
    txt, enc, _ = decode_detail(data)
    return txt, enc


def decode_detail(data: bytes) -> tuple[str, str, list[int]]:
    """(text, encoding, lines read as CP932 in a file that is otherwise UTF-8).

    A UTF-8 BOM in front of CP932 text (a tool that adds one to whatever it saves) is dropped. A UTF-8 file
    with some lines in CP932 (rows pasted in from another file, an editor that saved part of it in the other
    code) is read line by line, each in the code it is valid in: encoding 'mixed', and the CP932 lines
    (1-based) are returned so the reader can say which rows to check. A stray BOM in the middle of a file
    (files concatenated by hand) is noise, not data.
    """
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return body.decode("utf-8").replace("\ufeff", ""), "utf-8-sig", []
    except UnicodeDecodeError:
        pass
    lines = body.splitlines(keepends=True)
    utf8_lines, cp932_lines, parts = 0, [], []
    for n, line in enumerate(lines, start=1):
        try:
            parts.append(line.decode("utf-8"))
            utf8_lines += not line.isascii()
        except UnicodeDecodeError:
            try:
                parts.append(line.decode("cp932"))
            except UnicodeDecodeError:
                raise EncodingError(_UNKNOWN) from None
            cp932_lines.append(n)
    if utf8_lines >= len(cp932_lines):
        return "".join(parts).replace("\ufeff", ""), "mixed", cp932_lines
    try:
        return body.decode("cp932").replace("\ufeff", ""), "cp932", []
    except UnicodeDecodeError:
        raise EncodingError(_UNKNOWN) from None


_UNKNOWN = "文字コードを判別できません（UTF-8 または Shift_JIS(CP932) で保存してください）"


def rows_with_line_numbers(text: str):
    """Yield (line_number, fields) where line_number is the 1-based line on which the record starts,
    as a spreadsheet or text editor shows it (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1
