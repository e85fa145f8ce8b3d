"""Opening Excel workbooks that come from outside (returned reports, 厚生局 名簿) without trusting them.

calamine does the reading; around it: an .xlsx is a zip, so its members are checked against traversal and
bombs from their declared sizes before anything is decompressed (the same rules as the 医療情報ネット zips);
a password-protected workbook is named as such; a damaged .xls that makes calamine panic (a Rust panic is a
BaseException, which `except Exception` does not catch) becomes an ordinary error; only the rows a reader
needs are materialised (a sheet whose last cell is on row 1,048,576 is not turned into a million lists).
Also what calamine does not tell: hidden rows and formulas that reference other files (.xlsx only).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from python_calamine import CalamineWorkbook

from annex.facility_files import check_zip_member

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"      # OLE compound file: .xls, or an encrypted .xlsx
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
UNREADABLE = "Excelファイルとして開けません（壊れている・パスワード付き・形式違い）"
PASSWORD = ("パスワードが設定されているため開けません。パスワードを解除して（ファイル → 情報 → ブックの保護 → "
            "パスワードを使用して暗号化 で空欄にして）保存し直してください。")


class WorkbookError(Exception):
    """The workbook cannot be read; str() is the Japanese explanation for the sender."""


def call(func, *args):
    """Run a calamine (or fastexcel) call; its errors and its Rust panics become WorkbookError."""
    try:
        return func(*args)
    except WorkbookError:
        raise
    except Exception as exc:
        raise WorkbookError(f"{UNREADABLE}: {exc}") from None
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if type(exc).__name__ != "PanicException":
            raise
        raise WorkbookError(f"{UNREADABLE}: ファイルの途中が欠けているか壊れています（{exc}）") from None


def _encrypted(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.read(8) != CFB_MAGIC:
            return False
        return ENCRYPTED_STREAM in f.read(64 * 1024 * 1024)


def _check_zip(path: Path, inspect: bool = False) -> XlsxInfo:
    """An .xlsx is a zip: refuse members with ../ paths or bomb-sized declared sizes before opening it.
    inspect: also read what calamine does not tell (_inspect: hidden rows, external links) from the same zip."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return XlsxInfo()  # not a readable zip: calamine says what is wrong with it
    with z:
        for info in z.infolist():
            try:
                check_zip_member(info)
            except zipfile.BadZipFile as exc:
                raise WorkbookError(f"{UNREADABLE}: {exc}") from None
        return _inspect(z) if inspect else XlsxInfo()


def check_xlsx_zip(path: str | Path) -> None:
    """The zip checks alone, for a reader that opens the workbook with something else (fastexcel)."""
    _check_zip(Path(path))


def open_workbook(path: str | Path) -> CalamineWorkbook:
    return open_with_info(path, inspect=False)[0]


def open_with_info(path: str | Path, inspect: bool = True) -> tuple[CalamineWorkbook, XlsxInfo]:
    """The workbook, and (inspect) its hidden rows and external links, the zip opened once for the checks and
    the inspection (1,851 reports nationally)."""
    path = Path(path)
    info = _check_zip(path, inspect)
    try:
        return call(CalamineWorkbook.from_path, str(path)), info
    except WorkbookError:
        if _encrypted(path):
            raise WorkbookError(PASSWORD) from None
        raise


def get_sheet(wb: CalamineWorkbook, name: str):
    return call(wb.get_sheet_by_name, name)


def sheet_rows(sheet, limit: int | None = None) -> list[list]:
    """The sheet's cells from A1 (empty leading rows and columns kept), at most limit rows."""
    return call(sheet.to_python, False, limit)   # a list of lists, the caller may change them


@dataclass
class XlsxInfo:
    hidden_rows: dict[str, set[int]] = field(default_factory=dict)   # sheet name -> 1-based rows
    external_links: bool = False                                       # formulas reading other files


_SHEET = re.compile(r'<sheet\b[^>]*?\bname="([^"]*)"[^>]*?\br:id="([^"]*)"|<sheet\b[^>]*?\br:id="([^"]*)"[^>]*?\bname="([^"]*)"')
_REL = re.compile(r'<Relationship\b[^>]*?\bId="([^"]*)"[^>]*?\bTarget="([^"]*)"|<Relationship\b[^>]*?\bTarget="([^"]*)"[^>]*?\bId="([^"]*)"')
_HIDDEN_ROW = re.compile(r'<row\b[^>]*?\bhidden="(?:1|true)"[^>]*>')
_ROW_NUMBER = re.compile(r'\br="(\d+)"')
# Excel stores a reference to another workbook as [1]Sheet!A1 (its externalLink part); written by hand it is
# [book.xlsx]Sheet!A1. Structured references (Table1[[#This Row],[x]]) are not external.
_EXTERNAL_FORMULA = re.compile(r"<f\b[^>]*>[^<]*(?:\[\d+\]|\[[^\]<]*\.(?:xlsx|xlsm|xlsb|xls|csv)\])", re.IGNORECASE)


def _unescape(s: str) -> str:
    return s.replace("&quot;", '"').replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _inspect(z: zipfile.ZipFile) -> XlsxInfo:
    """Hidden rows and external links of an .xlsx, read from its XML (empty for anything unreadable)."""
    info = XlsxInfo()
    try:
        names = set(z.namelist())
        info.external_links = any(n.startswith("xl/externalLinks/") for n in names)
        book = z.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
        target = {(m[0] or m[3]): (m[1] or m[2]) for m in _REL.findall(rels)}
        for m in _SHEET.findall(book):
            name, rid = (m[0], m[1]) if m[0] else (m[3], m[2])
            t = target.get(rid, "")
            member = t.lstrip("/") if t.startswith("/") else "xl/" + t
            if member not in names:
                continue
            xml = z.read(member).decode("utf-8", "replace")
            rows = {int(r.group(1)) for h in _HIDDEN_ROW.finditer(xml) if (r := _ROW_NUMBER.search(h.group(0)))}
            if rows:
                info.hidden_rows[_unescape(name)] = rows
            if _EXTERNAL_FORMULA.search(xml):
                info.external_links = True
    except Exception:  # best effort: damaged parts (zlib.error, KeyError, …) are calamine's to report
        return XlsxInfo()
    return info
