"""annex.xlsx_sheet's LeanWorksheet: the annex workbooks, and workbooks with every kind of cell and row, part for
part what xlsxwriter's own Worksheet writes."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from decimal import Decimal
from fractions import Fraction

import duckdb
import openpyxl
import pytest
import xlsxwriter

from annex import annex_workbook
from annex.annex_workbook import NATIONAL_FILE_NAME, WORKBOOK_OPTIONS, write_annex, write_national_summary
from annex.xlsx_pack import PackedWorkbook
from annex.xlsx_sheet import LeanWorkbook

AS_OF = dt.date(2026, 10, 1)
TIMES = re.compile(rb"<dcterms:(created|modified)[^<]*</dcterms:\w+>")
# text the XML must escape, that would be a formula, a URL or a number if it were not written as a string,
# leading and trailing spaces, line breaks, 外字
ESCAPED = ['<b>&amp;"x"</b> & <', "=SUM(A1:A2)", "+81-3-0000-0000", "http://example.invalid/?a=1&b=2", "007",
           "  spaced  ", "改行\nあり\n", "\ue1d1外字\U000f0001", "\u3000全角空白"]
# text xlsxwriter writes as _xHHHH_: control characters (a carriage return too), a non-character, the literal
# form of such an escape
CONTROL = ["tab\there\x01\x1f", "_x0041_ literal", "non\ufffe", "crlf\r\n"]
NASTY = ESCAPED + CONTROL


def parts_of(path) -> list[tuple[str, bytes]]:
    """The parts of an xlsx, inflated, in order; the core properties without the time of writing."""
    with zipfile.ZipFile(path) as z:
        return [(n, TIMES.sub(b"", z.read(n)) if n == "docProps/core.xml" else z.read(n)) for n in z.namelist()]


def assert_same_parts(lean, own) -> None:
    lean_parts, own_parts = parts_of(lean), parts_of(own)
    assert [n for n, _ in lean_parts] == [n for n, _ in own_parts]
    for (name, data), (_, expected) in zip(lean_parts, own_parts):
        assert data == expected, f"{lean.name}: {name}"


def rich_database(sample_run, tmp_path) -> duckdb.DuckDBPyConnection:
    """The sample's database with text of every awkward kind in each sheet of 岩手 (03), a very long text, and
    高知 (39) with text to escape but no control characters (the shared strings LeanSharedStrings writes
    itself) and without hubs or changes (empty tables)."""
    db, _ = sample_run
    shutil.copy(db, tmp_path / "annex.duckdb")
    con = duckdb.connect(str(tmp_path / "annex.duckdb"))
    for k, text in enumerate(NASTY):
        con.execute("""INSERT INTO annex_institutions BY NAME
                       SELECT '03' AS pref_code, '盛岡' AS home_care_area, '032018' AS municipality_code,
                              '盛岡市' AS municipality_name, ? AS inst_code, ? AS name, ? AS address,
                              ? AS senders_text, true AS torikumi_2""", [f"03900000{k:02d}", text, text, text])
        con.execute("""INSERT INTO annex_hubs BY NAME
                       SELECT '03' AS pref_code, ? AS hub_id, ? AS name, ? AS operator, ? AS area_names""",
                    [f"nasty{k}", text, text, text])
        con.execute("""INSERT INTO findings VALUES ('03/reports/ishikai/x.csv', ?, ?, '医療機関名', ?,
                       'name_required', ?, ?)""", [text, k + 2, text, "error" if k % 2 else "warning", text])
        con.execute("""INSERT INTO changes BY NAME
                       SELECT '03' AS pref_code, 'institution' AS entity, 'added' AS change, ? AS "key",
                              ? AS name, ? AS "before", ? AS "after" """, [f"key{k}", text, text, text])
    for k, text in enumerate(ESCAPED):
        con.execute("""INSERT INTO annex_institutions BY NAME
                       SELECT '39' AS pref_code, '中央' AS home_care_area, ? AS inst_code, ? AS name,
                              ? AS address""", [f"39900000{k:02d}", text, text])
        con.execute("""INSERT INTO findings VALUES ('39/reports/ishikai/x.csv', NULL, ?, '医療機関名', ?,
                       'name_required', 'error', ?)""", [k + 2, text, text])
    con.execute("UPDATE candidates SET name = name || ? WHERE pref_code = '03' AND name IS NOT NULL", [NASTY[0]])
    con.execute("UPDATE annex_institutions SET address = ? WHERE inst_code = '0390000000'", ["長い住所" * 5000])
    con.execute("DELETE FROM annex_hubs WHERE pref_code = '39'")
    con.execute("DELETE FROM changes WHERE pref_code = '39'")
    return con


def test_annex_workbooks_are_xlsxwriters_own_part_for_part(sample_run, tmp_path, monkeypatch):
    """Every part of the annex workbooks (two prefectures, one with empty tables) and of the national summary,
    written with LeanWorksheets, is the one xlsxwriter's Worksheet writes."""
    con = rich_database(sample_run, tmp_path)
    prefs = [("03", "岩手県"), ("39", "高知県")]

    def write_all(folder):
        folder.mkdir()
        paths = [write_annex(con, folder / f"{code}.xlsx", code, name, AS_OF) for code, name in prefs]
        return [*paths, write_national_summary(con, folder / NATIONAL_FILE_NAME, prefs, AS_OF)]

    lean = write_all(tmp_path / "lean")
    monkeypatch.setattr(annex_workbook, "LeanWorkbook", xlsxwriter.Workbook)
    own = write_all(tmp_path / "own")
    con.close()
    for a, b in zip(lean, own):
        assert_same_parts(a, b)
    # the awkward text is there, as text, on every sheet it was put in
    wb = openpyxl.load_workbook(lean[0])
    for sheet in ["積極的役割を担う医療機関", "連携を担う拠点", "検証結果", "前回からの変更"]:
        cells = [c for row in wb[sheet].iter_rows() for c in row]
        assert all(c.data_type != "f" for c in cells)
        for text in NASTY[:4]:
            assert any(c.value == text and c.data_type == "s" for c in cells), (sheet, text)


def every_kind_of_cell(wb: xlsxwriter.Workbook, texts: list[str]) -> None:
    """Cells and rows of every kind xlsxwriter writes, most of them left to its own code by LeanWorksheet."""
    f = wb.add_format({"bold": True})
    g = wb.add_format({"italic": True, "num_format": "0.00"})
    row_format = wb.add_format({"bg_color": "#FFFF00"})
    ws = wb.add_worksheet("cells")
    ws.set_column(5, 5, 12, g)                       # a column format for the cells without one
    ws.set_row(2, 30, row_format)                    # a row format for the cells without one
    ws.set_row(3, 18, None, {"hidden": True})
    ws.set_row(4, None, None, {"level": 2, "collapsed": True})
    ws.set_row(6, 40)                                # a row with a height and no cells
    ws.set_row(7, 15)                                # the default height
    ws.set_row(8, 12.75)
    for r in range(40):                              # spans of several blocks of 16 rows
        ws.write_string(r, 1 + r % 3, texts[r % len(texts)], f if r % 2 else g)
        ws.write_number(r, 4, r * 1.1 - 7, g if r % 3 else f)
        ws.write_blank(r, 5, None, f if r % 4 else None)
        ws.write_string(r, 5 + r % 2, "no format")
        ws.write_number(r, 6 + r % 5, r)
    ws.write_number(41, 0, 1e20, f)
    ws.write_number(41, 1, -0.0, f)
    ws.write_number(41, 2, 0.1 + 0.2, f)
    ws.write_number(41, 3, Fraction(1, 3), f)
    ws.write_number(41, 4, 2 ** 60, f)
    ws.write(41, 5, Decimal("1.10"), f)
    ws.write_datetime(42, 0, dt.datetime(2026, 10, 1, 12, 30), wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}))
    ws.write_boolean(42, 1, True, f)
    ws.write_boolean(42, 2, False)
    ws.write_formula(42, 3, "=SUM(E1:E5)", f, 12)
    ws.write_formula(42, 4, '=""&"x"', None, "x")
    ws.write_array_formula(43, 0, 43, 1, "{=TREND(E1:E3)}", f)
    ws.write_dynamic_array_formula(44, 0, 44, 0, "=LEN(A1:A3)", f)
    ws.write_url(46, 0, "https://example.invalid/?q=1&r=2", f, "link & text")
    ws.write_string(47, 16383, "last column", f)
    ws.write_string(48, 0, "x" * 40000, f)           # truncated to 32767 characters
    ws.write_comment(50, 2, "a comment")             # a row with only a comment
    ws.write_comment(1, 1, "another")
    ws.merge_range(52, 0, 53, 3, "merged", f)
    ws.set_row(52, 50)
    empty = wb.add_worksheet("empty")
    empty.set_column(0, 0, 20)
    gap = wb.add_worksheet("gap")                    # cells far from A1
    gap.write_string(1000, 300, "far", f)
    gap.write_blank(1001, 299, None, g)
    gap.set_row(5, 20)


def test_lean_worksheet_writes_every_kind_of_cell_and_row_as_xlsxwriter(tmp_path):
    """Without control characters in the shared strings and with each kind of them, in-line strings in
    constant_memory mode (written to temporary files, not in memory), Excel 2003's style."""
    for options in [WORKBOOK_OPTIONS, {"in_memory": True}, {"constant_memory": True},
                    {"in_memory": True, "excel2003_style": True}]:
        for texts in (ESCAPED, *([*ESCAPED, text] for text in CONTROL)):
            paths = []
            for workbook in (LeanWorkbook, xlsxwriter.Workbook):
                path = tmp_path / f"{workbook.__name__}.xlsx"
                wb = workbook(str(path), options)
                every_kind_of_cell(wb, texts)
                wb.close()
                paths.append(path)
            assert_same_parts(*paths)


def test_lean_worksheet_in_an_excel_2010_workbook(tmp_path):
    """A 2010 data bar makes every row tag carry another attribute: such rows are xlsxwriter's own."""
    paths = []
    for workbook in (LeanWorkbook, xlsxwriter.Workbook):
        path = tmp_path / f"{workbook.__name__}.xlsx"
        wb = workbook(str(path), {"in_memory": True})
        every_kind_of_cell(wb, NASTY)
        wb.worksheets()[0].conditional_format("E1:E40", {"type": "data_bar", "data_bar_2010": True})
        wb.close()
        paths.append(path)
    assert_same_parts(*paths)


# text shaped like a rich string's XML, which xlsxwriter writes raw into the shared strings
RICH_LOOKING = ["<r>a & b</r>", "<r><t>太字？</t></r>", "<r></r>"]


def test_text_shaped_like_a_rich_string_is_written_as_text(sample_run, tmp_path):
    """xlsxwriter takes any string that starts with <r> and ends with </r> for a rich string's XML and writes it
    raw: a report's name written so made the annex workbook one Excel cannot open (<r>a & b</r>) or formatted
    it. The annex and the return workbooks (PackedWorkbook) write it as the text it is; rich strings
    themselves are refused."""
    db, _ = sample_run
    shutil.copy(db, tmp_path / "annex.duckdb")
    con = duckdb.connect(str(tmp_path / "annex.duckdb"))
    for k, text in enumerate(RICH_LOOKING):
        con.execute("""INSERT INTO annex_institutions BY NAME
                       SELECT '03' AS pref_code, '盛岡' AS home_care_area, ? AS inst_code, ? AS name""",
                    [f"03800000{k:02d}", text])
    annex = write_annex(con, tmp_path / "03.xlsx", "03", "岩手県", AS_OF)
    con.close()
    returned = tmp_path / "return.xlsx"
    wb = PackedWorkbook(returned, WORKBOOK_OPTIONS)
    ws = wb.add_worksheet("確認結果")
    for k, text in enumerate(RICH_LOOKING):
        ws.write_string(k, 0, text)
    with pytest.raises(NotImplementedError):
        ws.write_rich_string(5, 0, "a", wb.add_format({"bold": True}), "b")
    wb.close()
    for path, sheet in [(annex, "積極的役割を担う医療機関"), (returned, "確認結果")]:
        cells = {c.value: c.data_type for row in openpyxl.load_workbook(path)[sheet].iter_rows() for c in row}
        assert all(cells.get(text) == "s" for text in RICH_LOOKING), (path.name, cells)
