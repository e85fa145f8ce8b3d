"""A worksheet that writes the XML of its rows with less work per cell (the annex tables: ~300,000 cells).

xlsxwriter's Worksheet writes each cell through four calls (the cell, its attributes escaped one by one, its
A1 reference, the element) where the annex's cells need one string: an A1 reference, a style index and a
shared string index or a number, none of which can hold a character XML would escape. LeanWorksheet writes
the cells of the kinds the annex writes (shared strings, numbers, blanks, each with a format) and the tags
of plain rows (a height at most) itself, as xlsxwriter 3.3.1 writes them, and leaves everything else
(formulas, rich strings, booleans, cells without a format, rows with a format, hidden or outlined rows,
in-line strings in constant_memory mode) to xlsxwriter's own code. What the cells hold is stored by
xlsxwriter as before: only the writing of the XML part differs, not what it says
(tests/test_annex_sheet_xml.py compares the annex workbooks part by part with xlsxwriter's).
"""
from __future__ import annotations

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import CellBlankTuple, CellDatetimeTuple, CellNumberTuple, CellStringTuple, Worksheet

# the cells written here: a shared string, a number or a date (both a plain <v> number), a blank
LEAN_CELLS = frozenset({CellStringTuple, CellNumberTuple, CellDatetimeTuple, CellBlankTuple})


class LeanWorksheet(Worksheet):
    """An xlsxwriter Worksheet whose <sheetData> rows are written by _write_rows below (see the module's
    docstring); everything else is xlsxwriter's."""

    def _write_rows(self) -> None:
        # Worksheet._write_rows, row for row and cell for cell: a row with cells, else an empty row for a row
        # with properties or comments; cells in column order
        if self.constant_memory:   # strings are in-line there, not shared
            super()._write_rows()
            return
        self._calculate_spans()
        write = self.fh.write
        first_col, last_col = self.dim_colmin, self.dim_colmax
        names = {col: xl_col_to_name(col) for col in range(first_col, last_col + 1)}
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
                # the attributes need no escaping: a reference is letters and digits, the index a number
                ref = names[col] + number
                if kind is CellStringTuple:
                    out.append(f'<c r="{ref}" s="{f._get_xf_index()}" t="s"><v>{cell.string}</v></c>')
                elif kind is CellBlankTuple:
                    out.append(f'<c r="{ref}" s="{f._get_xf_index()}"/>')
                else:
                    out.append(f'<c r="{ref}" s="{f._get_xf_index()}"><v>{cell.number:.16G}</v></c>')
            out.append("</row>")
            write("".join(out))

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


class LeanWorkbook(xlsxwriter.Workbook):
    """An xlsxwriter Workbook whose worksheets are LeanWorksheets."""

    worksheet_class = LeanWorksheet
