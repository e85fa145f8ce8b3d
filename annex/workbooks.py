"""Opening Excel workbooks that come from outside (returned reports, 厚生局 名簿) without trusting them.

calamine does the reading; around it: an .xlsx is a zip, so its members are checked against traversal and
bombs from their declared sizes before anything is decompressed (the same rules as the 医療情報ネット zips), then
against sizes that lie, by decompressing each member once, a MiB at a time;
a password-protected workbook is named as such; a damaged .xls that makes calamine panic (a Rust panic is a
BaseException, which `except Exception` does not catch) becomes an ordinary error; only the rows a reader
needs are materialised (a sheet whose last cell is on row 1,048,576 is not turned into a million lists).
Also what calamine does not tell: hidden rows and formulas that reference other files (.xlsx only).
"""
from __future__ import annotations

import codecs
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib
from python_calamine import CalamineWorkbook

from annex.facility_files import MAX_UNCOMPRESSED, check_zip_member

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"      # OLE compound file: .xls, or an encrypted .xlsx
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
READ_CHUNK = 1 << 20          # the most _Parts decompresses at a time
# compressed bytes read at a time: inflated, ~64 KB of XML comes out as ~0.5 MB, within READ_CHUNK in one call
# (from a MiB at a time, inflate kept copying the input it had not used yet: 2-3 times as long)
INPUT_CHUNK = 1 << 16
MAX_PIECE = 1 << 16           # longest text _inspect keeps between chunks (a tag is far shorter)
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
    """An .xlsx is a zip: refuse members with ../ paths, bomb-sized declared sizes or real sizes larger than the
    declared ones before opening it.
    inspect: also read what calamine does not tell (_inspect: hidden rows, external links) from the same zip."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return XlsxInfo()  # not a readable zip: calamine says what is wrong with it
    with z, open(path, "rb") as f:
        members = z.infolist()
        try:
            for info in members:
                check_zip_member(info)
            if (total := sum(i.file_size for i in members)) > MAX_UNCOMPRESSED:
                raise zipfile.BadZipFile(f"展開後の合計サイズが大きすぎます（{total:,} バイト）")
        except zipfile.BadZipFile as exc:
            raise WorkbookError(f"{UNREADABLE}: {exc}") from None
        parts = _Parts(f, members)
        info = _inspect(parts) if inspect else XlsxInfo()
        parts.check_rest()
        return info


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


class _Parts:
    """The members of an .xlsx, decompressed by us READ_CHUNK at a time whatever their headers say, each once:
    _inspect reads the parts it needs through chunks(), check_rest() the others, keeping nothing. A member that
    decompresses to more than its header declares is refused the moment it does: the sizes check_zip_member
    judged can lie (1,000 bytes declared, 1.5 GB real), and what reads the workbook afterwards believes them —
    fastexcel decompressed such a member whole and read the 名簿 as if nothing were wrong; zipfile stops at the
    declared size, so it cannot tell, and its read() decompressed the 1.5 GB before cutting them off. About 2 %
    of the time fastexcel then takes to read a 名簿."""

    def __init__(self, f: BinaryIO, members: list[zipfile.ZipInfo]):
        self.f, self.members = f, members
        self.by_name = {i.filename: i for i in members}
        self.done: set[int] = set()        # id() of the members decompressed to their end

    def chunks(self, member: str | zipfile.ZipInfo):
        info = self.by_name[member] if isinstance(member, str) else member   # KeyError: no such part
        name = info.filename   # compression: stored or deflate (check_zip_member refused any other)
        self.f.seek(info.header_offset)
        head = self.f.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise WorkbookError(f"{UNREADABLE}: zipの中の {name} の位置が壊れています")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        self.f.seek(info.header_offset + 30 + name_len + extra_len)
        # ISA-L's inflate (the same raw deflate as zlib's) takes a quarter of zlib's time: the 8 national 名簿
        # workbooks inflate to ~480 MB, which zlib took ~0.7 s of CPU for on top of fastexcel's own inflating
        inflate = isal_zlib.decompressobj(-isal_zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
        left, size = info.compress_size, 0
        try:
            while left > 0 and (data := self.f.read(min(left, INPUT_CHUNK))):
                left -= len(data)
                while data:
                    if inflate is None:
                        block, data = data, b""
                    else:
                        block, data = inflate.decompress(data, READ_CHUNK), inflate.unconsumed_tail
                        if inflate.eof:   # the member's deflate stream has ended: bytes after it are not part of it
                            data, left = b"", 0   # (zlib kept handing them back as its unconsumed tail: a hang)
                    size += len(block)
                    if size > info.file_size:
                        raise WorkbookError(f"{UNREADABLE}: zipの中の {name} は書かれているサイズ"
                                            f"（{info.file_size:,} バイト）より大きく展開されます（zip爆弾の疑い）")
                    yield block
        except isal_zlib.error as exc:
            raise WorkbookError(f"{UNREADABLE}: zipの中の {name} を展開できません（{exc}）") from None
        self.done.add(id(info))

    def check_rest(self) -> None:
        for info in self.members:
            if id(info) not in self.done:
                for _ in self.chunks(info):
                    pass

    def text(self, member: str) -> str:
        return b"".join(self.chunks(member)).decode("utf-8", "replace")

    def tags(self, member: str):
        """The member's text in pieces that each end right before a '<', so that no tag (and no text after
        a tag) is split between two pieces; a piece of more than MAX_PIECE characters without a '<' (text no
        tag needs) is shortened."""
        decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        carry = ""
        for block in self.chunks(member):
            text = carry + decode(block)
            cut = text.rfind("<")
            if cut > 0:
                yield text[:cut]
                text = text[cut:]
            carry = text[:MAX_PIECE]
        yield carry + decode(b"", True)


def _inspect(read: _Parts) -> XlsxInfo:
    """Hidden rows and external links of an .xlsx, read from its XML (empty for anything unreadable; a member
    that cannot be decompressed, or that decompresses to more than it declares, raises WorkbookError)."""
    info = XlsxInfo()
    try:
        names = set(read.by_name)
        info.external_links = any(n.startswith("xl/externalLinks/") for n in names)
        book = read.text("xl/workbook.xml")
        rels = read.text("xl/_rels/workbook.xml.rels")
        target = {(m[0] or m[3]): (m[1] or m[2]) for m in _REL.findall(rels)}
        for m in _SHEET.findall(book):
            name, rid = (m[0], m[1]) if m[0] else (m[3], m[2])
            t = target.get(rid, "")
            member = t.lstrip("/") if t.startswith("/") else "xl/" + t
            if member not in names:
                continue
            rows = set()
            for xml in read.tags(member):
                if 'hidden="' in xml:   # the pattern is run only where a row can be hidden (a substring search)
                    rows.update(int(r.group(1)) for h in _HIDDEN_ROW.finditer(xml)
                                if (r := _ROW_NUMBER.search(h.group(0))))
                if _EXTERNAL_FORMULA.search(xml):
                    info.external_links = True
            if rows:
                info.hidden_rows[_unescape(name)] = rows
    except WorkbookError:
        raise
    except Exception:  # best effort: parts missing or odd (KeyError, …) are calamine's to report
        return XlsxInfo()
    return info
