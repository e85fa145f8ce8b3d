"""The return workbooks as annex.xlsx_pack packs them: part for part what xlsxwriter itself writes."""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from types import SimpleNamespace

import openpyxl
import pytest
import xlsxwriter

from annex import returns, xlsx_pack
from annex.xlsx_pack import PackedWorkbook, zip_parts

TODAY = dt.date(2025, 6, 1)
TIMES = re.compile(rb"<dcterms:(created|modified)[^<]*</dcterms:\w+>")


def finding(severity: str, row: int | None, message: str, value: str | None = "x", column: str | None = "医療機関名",
            source: str = "/raw/03/reports/ishikai/盛岡市医師会.xlsx") -> dict:
    return {"source_file": source, "sheet": "入力", "row": row, "column": column, "value": value,
            "severity": severity, "message": message}


def report(findings: list[dict], person: str | None = None, email: str | None = None,
           path: str = "/raw/03/reports/ishikai/盛岡市医師会.xlsx") -> SimpleNamespace:
    contacts = ([{"field": "contact_person", "value": person}] if person else []) + \
               ([{"field": "contact_email", "value": email}] if email else [])
    return SimpleNamespace(path=path, result=SimpleNamespace(findings=findings), contacts=contacts)


LONG = "医療機関名が名簿にありません。" * 12 + "正式名称で書き直してください。"
# senders alike in what shapes the workbook-level parts (formats used and in which order, the autofilter's
# range) and senders that differ in them, each several times with different text
SENDERS = {
    "none_a": [report([])],
    "none_b": [report([], person="盛岡 花子", email="hanako@example.jp")],
    "error_a": [report([finding("error", 11, "名簿にありません。")], person="奥州 五郎")],
    "error_b": [report([finding("error", 52, LONG, value='=HYPERLINK("http://x","y")')])],
    "warning_a": [report([finding("warning", 53, "確認してください。")])],
    "warning_b": [report([finding("warning", None, "全体の確認です。", value=None, column=None)])],
    "warning_then_error": [report([finding("warning", 5, "確認。"), finding("error", 9, "修正。")])],
    "error_then_warning": [report([finding("error", 5, "修正。"), finding("warning", 9, "確認。")])],
    "three": [report([finding("error", r, f"{r}行目を直してください。", value=f"+81-{r}") for r in (3, 4, 5)])],
    "three_other": [report([finding("warning", r, "確認。", value="@SUM(A1)") for r in (7, 8, 9)])],
    "two_reports": [report([finding("error", 2, "修正。")], email="a@example.jp"),
                    report([finding("warning", 3, "確認。", source="/raw/03/reports/ishikai/追加.csv")],
                           path="/raw/03/reports/ishikai/追加.csv")],
}


def xlsxwriters_own(path, options, kind=None):
    """The workbook as before annex.xlsx_pack: xlsxwriter writes and zips every part itself."""
    return xlsxwriter.Workbook(str(path), {**options, "in_memory": True})


def parts_of(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return [(n, TIMES.sub(b"", z.read(n)) if n == "docProps/core.xml" else z.read(n)) for n in z.namelist()]


def write_all(folder, rounds: int = 2) -> list:
    folder.mkdir()
    paths = []
    for r in range(rounds):   # a second round: every workbook's shared parts come from an earlier one
        for label, reps in SENDERS.items():
            path = folder / f"{label}_{r}.xlsx"
            returns._write_one(path, label, reps, "岩手県", TODAY)
            paths.append(path)
    return paths


def test_packed_return_workbooks_are_xlsxwriters_own_part_for_part(tmp_path, monkeypatch):
    """Every part (the core properties without their times) as xlsxwriter writes it, in the same order, for
    senders whose workbooks share their workbook-level parts and senders whose do not."""
    monkeypatch.setattr(xlsx_pack, "_shared", {})
    packed = write_all(tmp_path / "packed")
    # the parts were shared: one set per combination of formats and autofilter, not one per workbook
    assert 3 <= len(xlsx_pack._shared) < len(SENDERS)
    monkeypatch.setattr(returns, "PackedWorkbook", xlsxwriters_own)
    own = write_all(tmp_path / "own")
    for p, o in zip(packed, own):
        assert parts_of(p) == parts_of(o), p.name


def test_return_workbook_read_back(tmp_path):
    """What a reader sees: values and types (text from reports stays text), formats, widths, heights, the
    autofilter, print setup."""
    path = tmp_path / "r.xlsx"
    returns._write_one(path, "盛岡市医師会", SENDERS["error_b"] + SENDERS["three"], "岩手県", TODAY)
    ws = openpyxl.load_workbook(path).active
    assert ws.title == "確認結果" and ws["A1"].value.startswith("在宅医療に関する調査票の確認結果")
    assert ws["A3"].value == "盛岡市医師会　ご担当者 様" and ws["A5"].value == "岩手県　令和7年6月1日"
    assert [c.value for c in ws[9]] == [name for name, _ in returns.COLUMNS]
    formula = [c for row in ws.iter_rows() for c in row if c.value == '=HYPERLINK("http://x","y")']
    assert formula and all(c.data_type == "s" for c in formula)
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert ws["A10"].value == 1 and ws["D10"].value == 3 and ws["G10"].value == "要修正"   # sorted by row
    assert ws["H13"].value == LONG
    assert ws["G10"].font.b and ws["G10"].font.color.rgb == "FFC00000" and ws["G10"].border.left.style == "thin"
    assert ws["A9"].fill.fgColor.rgb == "FFDDEBF7" and ws["H10"].alignment.wrap_text
    assert ws.column_dimensions["H"].width == pytest.approx(72.7109375)
    assert ws.row_dimensions[13].height > ws.row_dimensions[10].height   # the long message wraps
    assert ws.auto_filter.ref == "A9:H13" and ws.freeze_panes == "A10"
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
    assert ws.print_title_rows == "$9:$9" and ws.oddFooter.center.text == "&P / &N"


def test_core_properties_hold_each_workbooks_second(tmp_path, monkeypatch):
    """The core properties, generated once a second, still carry the second each workbook was written in."""
    utc = dt.timezone.utc
    seconds = iter([dt.datetime(2025, 6, 1, 9, 0, 0, 1, utc), dt.datetime(2025, 6, 1, 9, 0, 0, 9, utc),
                    dt.datetime(2025, 6, 1, 9, 0, 1, 5, utc)])

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return next(seconds)

    monkeypatch.setattr(xlsx_pack, "datetime", Clock)
    times = []
    for i in range(3):
        path = tmp_path / f"{i}.xlsx"
        returns._write_one(path, "x", SENDERS["none_a"], "岩手県", TODAY)
        with zipfile.ZipFile(path) as z:
            times.append(re.findall(rb"<dcterms:created[^>]*>([^<]*)<", z.read("docProps/core.xml"))[0])
    assert times == [b"2025-06-01T09:00:00Z", b"2025-06-01T09:00:00Z", b"2025-06-01T09:00:01Z"]


def test_zip_parts_as_zipfile_writes_them():
    """The entries and headers zipfile gives xlsxwriter's parts; a name outside ASCII is marked UTF-8."""
    parts = [("[Content_Types].xml", b"<a/>" * 300), ("xl/worksheets/sheet1.xml", "<b>盛岡</b>".encode()),
             ("docs/名簿.xml", b""), ("xl/theme/theme1.xml", b"<a/>" * 300)]
    ours = zipfile.ZipFile(io.BytesIO(zip_parts(parts)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in parts:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    theirs = zipfile.ZipFile(buf)
    assert ours.testzip() is None
    fields = ("filename", "date_time", "compress_type", "CRC", "file_size", "create_system", "create_version",
              "extract_version", "flag_bits", "external_attr", "internal_attr", "extra", "comment")
    assert [[getattr(i, f) for f in fields] for i in ours.infolist()] == \
           [[getattr(i, f) for f in fields] for i in theirs.infolist()]
    assert [ours.read(n) for n, _ in parts] == [data for _, data in parts]


def test_a_kind_has_nothing_but_cells(tmp_path):
    """A workbook of a kind with a part its shared ones would not list (a comment) is refused, not written
    with a content-types part that leaves it out; without a kind it is written whole."""
    wb = PackedWorkbook(tmp_path / "kind.xlsx", kind="test")
    wb.add_worksheet().write_comment(0, 0, "注記")
    with pytest.raises(ValueError, match="cannot have xl/"):
        wb.close()
    wb = PackedWorkbook(tmp_path / "plain.xlsx")
    wb.add_worksheet().write_comment(0, 0, "注記")
    wb.close()
    assert openpyxl.load_workbook(tmp_path / "plain.xlsx").active["A1"].comment.text == "注記"
