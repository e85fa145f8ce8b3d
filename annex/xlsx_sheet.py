"""Worksheets and shared strings written with less work per cell (the annex tables: ~300,000 cells nationally).

xlsxwriter's Worksheet writes each cell through four calls (the cell, its attributes escaped one by one, its
A1 reference, the element) where the annex's cells need one string: an A1 reference, a style index and a
shared string index or a number, none of which holds a character XML would escape. LeanWorksheet writes the
cells of the kinds the annex writes (shared strings, numbers, blanks, each with a format) and the tags of
plain rows (a height at most) itself, as xlsxwriter 3.3.1 writes them, and leaves everything else (formulas,
booleans, cells without a format, rows with a format, hidden or outlined rows, Excel 2010's rows) to
xlsxwriter's own code; it writes no rich strings. LeanSharedStrings writes the shared strings as xlsxwriter
does, but looks for control characters once in all of them instead of in each, and writes every string as
text (xlsxwriter writes one shaped <r>…</r> raw, as a rich string's XML). What the cells hold is stored by
xlsxwriter as before: only the writing of the XML parts differs, and for such text alone what they say
(tests/test_annex_sheet_xml.py compares the annex workbooks, and workbooks with every kind of cell and row,
part for part with xlsxwriter's).
"""
from __future__ import annotations

import re

import xlsxwriter
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings
from xlsxwriter.utility import _preserve_whitespace, xl_col_to_name
from xlsxwriter.worksheet import CellBlankTuple, CellDatetimeTuple, CellNumberTuple, CellStringTuple, Worksheet

# the cells written here: a shared string, a number or a date (both a plain <v> number), a blank
LEAN_CELLS = frozenset({CellStringTuple, CellNumberTuple, CellDatetimeTuple, CellBlankTuple})


class LeanWorksheet(Worksheet):
    """An xlsxwriter Worksheet whose <sheetData> rows are written by _write_rows below (see the module's
    docstring); everything else is xlsxwriter's, but for rich strings, which it does not write (its workbook's
    shared strings are all text: LeanSharedStrings)."""

    def write_rich_string(self, *args, **kwargs):
        raise NotImplementedError("LeanWorksheet writes no rich strings: its shared strings are written as text")

    def _write_rows(self) -> None:
        # Worksheet._write_rows, row for row and cell for cell: a row with cells, else an empty row for a row
        # with properties or comments; cells in column order. (In constant_memory mode, where strings are
        # in-line, xlsxwriter writes each row as the next one starts and never calls this.)
        self._calculate_spans()
        write = self.fh.write
        first_col, last_col = self.dim_colmin, self.dim_colmax
        names = {col: xl_col_to_name(col) for col in range(first_col, last_col + 1)}
        # the style index of each format, asked of the format the first time it is used, as xlsxwriter does
        # (a format gets its index when a cell first uses it)
        styles: dict = {}
        for row in range(self.dim_rowmin, self.dim_rowmax + 1):
            cells = self.table.get(row)
            info = self.row_info.get(row)
            spans = self.row_spans.get(row // 16)
            if not cells:
                if info is not None or row in self.comments:
                    self._write_empty_row(row, spans, info)
                continue
            start = self._row_start(row, spans, info)
            if start is None:
                self._write_row(row, spans, info)
                out = []
            else:
                out = [start]
            number = str(row + 1)
            for col in range(first_col, last_col + 1):
                cell = cells.get(col)
                if cell is None:
                    continue
                kind = cell.__class__
                f = cell.format if kind in LEAN_CELLS else None
                if f is None:
                    # another kind of cell, or one shown in its row's or column's format: xlsxwriter's own
                    write("".join(out))
                    out = []
                    self._write_cell(row, col, cell)
                    continue
                style = styles.get(f)
                if style is None:
                    style = styles[f] = f._get_xf_index()
                # the attributes need no escaping: a reference is letters and digits, the style a number
                ref = names[col] + number
                if kind is CellStringTuple:
                    out.append(f'<c r="{ref}" s="{style}" t="s"><v>{cell.string}</v></c>')
                elif kind is CellBlankTuple:
                    out.append(f'<c r="{ref}" s="{style}"/>')
                else:
                    out.append(f'<c r="{ref}" s="{style}"><v>{cell.number:.16G}</v></c>')
            out.append("</row>")
            write("".join(out))

    def _calculate_spans(self) -> None:
        # Worksheet._calculate_spans: per block of 16 rows, the first and last column with a cell ("1:14"),
        # from each row's lowest and highest column instead of a look-up of every column of every row
        if self.comments:   # they widen the spans too
            super()._calculate_spans()
            return
        bounds: dict[int, tuple[int, int]] = {}
        for row, cells in self.table.items():
            if cells:
                lo, hi = min(cells), max(cells)
                block = bounds.get(row // 16)
                bounds[row // 16] = (lo, hi) if block is None else (min(block[0], lo), max(block[1], hi))
        self.row_spans = {block: f"{lo + 1}:{hi + 1}" for block, (lo, hi) in bounds.items()}

    def _row_start(self, row: int, spans: str | None, info) -> str | None:
        """The <row> start tag as Worksheet._write_row writes it for a row with at most a height, or None
        for any other row (a format, hidden, outlined, Excel 2010's attribute)."""
        if self.excel_version == 2010:
            return None
        height = self.default_row_height
        if info is not None:
            if info.row_format or info.hidden or info.level or info.collapsed:
                return None
            if info.height is not None:
                height = info.height
        tag = f'<row r="{row + 1}"'
        if spans:
            tag += f' spans="{spans}"'
        if height != self.original_row_height or height != self.default_row_height:
            tag += f' ht="{height * 0.75:.16g}" customHeight="1"'
        return tag + ">"


# what xlsxwriter writes as _xHHHH_ in a shared string (XMLwriter._escape_control_characters): a control
# character, a non-character, and the literal text of such an escape (which gets its underscore escaped)
CONTROL_ESCAPED = re.compile(r"_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b-\x1f\ufffe\uffff]")


class LeanSharedStrings(SharedStrings):
    """xlsxwriter's shared string table, written as SharedStrings._write_si writes each string, without its
    search for control characters in every string when none of them has one — and with every string as text.
    xlsxwriter writes any string that starts with <r> and ends with </r> raw, taking it for a rich string's
    XML: a name in a report written so (<r>a & b</r>) made a workbook Excel cannot open, or formatted it. The
    workbooks written with this table hold no rich strings (LeanWorksheet.write_rich_string refuses them), so
    such text is escaped like any other."""

    def _write_sst_strings(self) -> None:
        strings = self.string_table.string_array
        # one search through all the strings together: a match across two of them is only a false alarm
        if CONTROL_ESCAPED.search("".join(strings)):
            super()._write_sst_strings()
            return
        out = []
        for string in strings:
            space = ' xml:space="preserve"' if _preserve_whitespace(string) else ""
            text = string.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out.append(f"<si><t{space}>{text}</t></si>")
        self.fh.write("".join(out))

    def _write_si(self, string) -> None:
        # SharedStrings._write_si without its branch for rich strings
        string = self._escape_control_characters(string)
        self._xml_si_element(string, [("xml:space", "preserve")] if _preserve_whitespace(string) else [])


class LeanPackager(Packager):
    """xlsxwriter's Packager, with LeanSharedStrings."""

    def _write_shared_strings_file(self) -> None:
        # Packager._write_shared_strings_file
        if not self.workbook.str_table.count:
            return
        sst = LeanSharedStrings()
        sst.string_table = self.workbook.str_table
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


class LeanWorkbook(xlsxwriter.Workbook):
    """An xlsxwriter Workbook whose worksheets are LeanWorksheets and whose shared strings LeanSharedStrings
    writes."""

    worksheet_class = LeanWorksheet

    def _get_packager(self):
        # xlsxwriter's hook for another packager
        return LeanPackager()
