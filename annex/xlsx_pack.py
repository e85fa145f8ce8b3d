"""Packing many small xlsxwriter workbooks of one kind (the senders' return workbooks) with less work each.

A return workbook is a few KB, and most of xlsxwriter's cost for it is fixed: it generates ten XML parts and
deflates each through zipfile, where zlib sets up a ~256 KB state per part (~70 µs each, measured). Seven of
the parts (content types, relationships, workbook, styles, theme, app properties) depend only on how the
workbook is made, not on what its cells say, so workbooks of one kind share them. PackedWorkbook:

- generates a kind's shared parts once per process for each combination of the formats its cells use and
  its defined names (autofilter, print titles), and reuses them; the worksheets and the shared strings are
  generated for every workbook, as before, the core properties (the time of writing, to the second) once
  a second;
- zips the parts itself (zip_parts): a part deflated before is not deflated again, a new one with a smaller
  zlib state (the same deflated sizes here, a fifth of the time).

Every part is xlsxwriter's own; only the deflated streams differ from zipfile's, not what they inflate to
(tests/test_returns_workbooks.py compares the return workbooks part by part with xlsxwriter's). The worksheets
and shared strings are annex.xlsx_sheet's lean ones (the same XML, less work per cell; every string text).
"""
from __future__ import annotations

import io
import os
import re
import struct
import zlib
from datetime import datetime, timezone
from functools import lru_cache

import xlsxwriter

from annex.xlsx_sheet import LeanPackager, LeanWorksheet

# parts generated for every workbook of a kind; a kind has no others besides the shared ones below (anything
# else, a chart, a comment, a table, an image, would need parts the shared ones do not list)
OWN_PARTS = re.compile(r"xl/worksheets/sheet\d+\.xml|xl/sharedStrings\.xml|docProps/core\.xml")
SHARED_KEPT = 64   # combinations of formats and defined names remembered per process (a run has a few dozen)

# zlib as zipfile sets it up for a part (level 6, raw deflate with a 32 KB window) but memory level 5, not 8:
# hash tables of 8 instead of 64 KB and a pending buffer of 16 instead of 128 KB (measured: 15–40 µs a part
# instead of 70–115, the same deflated sizes for parts of up to 50 KB)
LEVEL, WINDOW_BITS, MEMORY_LEVEL = 6, -15, 5
# what zipfile writes for xlsxwriter's in-memory parts, kept so that only the deflated bytes differ: made by
# Unix (3) with zip 2.0, needs 2.0, deflated (8), dated 1980-01-01 00:00 (DOS date 0x21, time 0), mode 0600
MADE_BY, NEEDS, DEFLATED = (3 << 8) | 20, 20, 8
DOS_TIME, DOS_DATE = 0, (1 << 5) | 1
EXTERNAL_ATTR = 0o600 << 16
UTF8_NAME = 0x800
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
END_RECORD = struct.Struct("<4s4H2LH")
# deflated parts remembered per process: the shared ones are used by every workbook, so they stay among the
# most recent; a worksheet or string table is seldom seen twice and soon drops out
DEFLATED_KEPT = 128

_shared: dict[tuple, dict[str, bytes]] = {}   # kind, formats, names … -> shared parts (_shared_parts)
_core: dict[str, str] = {}                     # properties with the second of writing -> core.xml


class PackedWorkbook(xlsxwriter.Workbook):
    """An xlsxwriter Workbook (the same options; its parts are always kept in memory) whose close() writes
    the xlsx to the file `target`, zipped by zip_parts().

    kind: a name for workbooks made alike, which differ only in their cells, the formats those use and the
    defined names (autofilter ranges, print titles): the same sheets by name with the same settings, the
    same properties, nothing but cells (no charts, images, comments, tables). Their shared parts are then
    generated once per process for each combination of formats and defined names (see the module's
    docstring). Without a kind every part is generated."""

    worksheet_class = LeanWorksheet

    def __init__(self, target: str | os.PathLike, options: dict | None = None, kind: str | None = None):
        super().__init__(_Nowhere(), {**(options or {}), "in_memory": True})
        self.target = target
        self.kind = kind

    def _get_packager(self):
        # xlsxwriter's hook for another packager
        return _PartsPackager(self.target, self.kind)


class _Nowhere:
    """Where xlsxwriter still writes a zip of its own, left empty (_PartsPackager zips the parts): not a file,
    nothing to close, so that zipfile can end that zip even after a failed close(), when it is collected."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _PartsPackager(LeanPackager):
    """xlsxwriter's Packager (with LeanSharedStrings), which writes every part into memory; this one zips them
    into the target and leaves nothing for xlsxwriter's zip. For a kind, the writers of the shared parts only
    mark their place while the others run; the shared parts are filled in afterwards, once the formats the
    cells use (their style indices are assigned while the worksheets are written) are known."""

    def __init__(self, target: str | os.PathLike, kind: str | None):
        super().__init__()
        self.target = target
        self.kind = kind

    def _create_package(self):
        parts = [(name, data, binary) for data, name, binary in super()._create_package()]
        shared = self._shared_parts(parts) if self.kind is not None else {}
        packed = zip_parts([(name, shared[name] if data is None else
                             data.getvalue() if binary else data.getvalue().encode("utf-8"))
                            for name, data, binary in parts])
        with open(self.target, "wb") as f:
            f.write(packed)
        return []   # nothing left for xlsxwriter's own zip

    def _shared_parts(self, parts: list[tuple]) -> dict[str, bytes]:
        """The shared parts of this workbook's kind, formats and defined names: {name: content}."""
        for name, data, _ in parts:
            if data is not None and not OWN_PARTS.fullmatch(name):
                raise ValueError(f"a workbook of kind {self.kind!r} cannot have {name}: its shared parts "
                                 "would not list it")
        wb = self.workbook
        key = (self.kind, tuple(wb.xf_format_indices), tuple(wb.dxf_format_indices),
               tuple(map(tuple, wb.defined_names)), bool(wb.str_table.count),
               tuple((ws.name, ws.hidden, ws.selected) for ws in wb.worksheets()))
        shared = _shared.get(key)
        if shared is None:
            # the first workbook of its kind with these formats and names: the shared parts' writers run
            # now, in their order (xlsxwriter's workbook writer prepares the format tables styles reads)
            shared = {}
            for name, data, write in parts:
                if data is None:
                    write()
                    shared[name] = self.filenames.pop()[0].getvalue().encode("utf-8")
            if len(_shared) >= SHARED_KEPT:
                _shared.pop(next(iter(_shared), None), None)   # the oldest
            _shared[key] = shared
        return shared

    def _later(self, name: str, write) -> None:
        if self.kind is None:
            write()
        else:
            self.filenames.append((None, name, write))

    # the shared parts: for a kind, each writer only marks its part's place (filled in by _shared_parts)
    def _write_content_types_file(self) -> None:
        self._later("[Content_Types].xml", super()._write_content_types_file)

    def _write_root_rels_file(self) -> None:
        self._later("_rels/.rels", super()._write_root_rels_file)

    def _write_workbook_rels_file(self) -> None:
        self._later("xl/_rels/workbook.xml.rels", super()._write_workbook_rels_file)

    def _write_workbook_file(self) -> None:
        self._later("xl/workbook.xml", super()._write_workbook_file)

    def _write_styles_file(self) -> None:
        self._later("xl/styles.xml", super()._write_styles_file)

    def _write_theme_file(self) -> None:
        self._later("xl/theme/theme1.xml", super()._write_theme_file)

    def _write_app_file(self) -> None:
        self._later("docProps/app.xml", super()._write_app_file)

    def _write_core_file(self) -> None:
        # the core properties: the workbook's properties and the time of writing to the second, which is
        # xlsxwriter's now() where no "created" datetime is set: the same for the workbooks of one second
        if self.kind is None:
            return super()._write_core_file()
        properties = self.workbook.doc_properties
        if not isinstance(properties.get("created"), datetime):
            properties["created"] = datetime.now(timezone.utc).replace(microsecond=0)
        key = repr(sorted(properties.items()))
        text = _core.get(key)
        if text is None:
            super()._write_core_file()
            text = self.filenames.pop()[0].getvalue()
            _core.clear()   # an earlier second's
            _core[key] = text
        self.filenames.append((io.StringIO(text), "docProps/core.xml", False))


def zip_parts(parts: list[tuple[str, bytes]]) -> bytes:
    """A zip file of these (name, content) entries, in this order, deflated, with the headers zipfile gives
    them (no zip64: every size and offset must fit 32 bits)."""
    body, central = bytearray(), bytearray()
    for name, data in parts:
        crc, deflated = _deflated(data)
        raw_name = name.encode("utf-8")
        flags = 0 if raw_name.isascii() else UTF8_NAME
        offset = len(body)
        if max(len(data), offset + len(deflated)) >= 1 << 32:
            raise ValueError(f"{name}: too large for a zip without zip64")
        body += LOCAL_HEADER.pack(b"PK\x03\x04", NEEDS, flags, DEFLATED, DOS_TIME, DOS_DATE, crc, len(deflated),
                                  len(data), len(raw_name), 0)
        body += raw_name
        body += deflated
        central += CENTRAL_HEADER.pack(b"PK\x01\x02", MADE_BY, NEEDS, flags, DEFLATED, DOS_TIME, DOS_DATE, crc,
                                       len(deflated), len(data), len(raw_name), 0, 0, 0, 0, EXTERNAL_ATTR, offset)
        central += raw_name
    end = END_RECORD.pack(b"PK\x05\x06", 0, 0, len(parts), len(parts), len(central), len(body), 0)
    return bytes(body + central + end)


@lru_cache(maxsize=DEFLATED_KEPT)
def _deflated(data: bytes) -> tuple[int, bytes]:
    """(CRC-32, raw deflate) of a part."""
    z = zlib.compressobj(LEVEL, zlib.DEFLATED, WINDOW_BITS, MEMORY_LEVEL)
    return zlib.crc32(data), z.compress(data) + z.flush()
