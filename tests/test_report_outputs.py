"""Reports through the whole refresh: shipped sample findings, return workbooks, personal data kept out of
the analysts' file, formula-like text kept as text, and our own template coming back clean."""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl

from annex.overview import finding_rows
from annex.pipeline import run
from annex.report_layout import REPORT_KINDS
from annex.reports import read_report

from conftest import RAW, ROOT

# personal data written in the shipped sample reports (raw/render_reports.py): every contact value read from
# them (test_personal_list_is_every_contact_of_the_sample), and the parts of the one that holds two
PERSONAL = ["盛岡 花子", "jimu@example.invalid", "+81-19-000-0000", "事務局",
            "西北 太郎 TEL 019-000-0000", "西北 太郎", "019-000-0000",
            "0197-00-0000", "奥州 五郎", "0197-00-0001", "oshu@example.invalid", "0197-00-0002",
            "紫波 次郎", "019-000-0001", "長寿健康課", "矢巾 三郎", "岩手 一郎", "a@example.invalid", "長寿社会課",
            "八幡 四郎", "土佐 花子", "088-000-0000", "高知 太郎", "高齢者支援課"]


def all_text(db: Path) -> str:
    """Every text value in every table and view of the analysts' file."""
    con = duckdb.connect(str(db), read_only=True)
    out = []
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
        out.append(str(con.execute(f'SELECT * FROM "{table}"').fetchall()))
    con.close()
    return "\n".join(out)


def workbook_text(path: Path) -> str:
    """Every cell of every sheet (hidden ones too)."""
    wb = openpyxl.load_workbook(path)
    return "\n".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if c.value is not None)


def test_sample_report_findings(sample_run):
    db, summary = sample_run
    con = duckdb.connect(str(db), read_only=True)
    found = con.execute("""
        SELECT regexp_extract(source_file, '[^/]+$'), "row", rule, severity FROM findings
        WHERE source_file LIKE '%/reports/%'""").fetchall()
    rows = set(found)
    files = con.execute("""SELECT source_file, rows_in, accepted, rejected, skipped_blank, status FROM report_files""").fetchall()
    hub = con.execute("""SELECT area_names, report_count, operator_kind FROM reported_hubs
                         WHERE name = '紫波郡地域包括支援センター'""").fetchall()
    con.close()
    expected = {
        ("盛岡市医師会_調査票_記入済.xlsx", 11, "yes_or_blank", "error"),            # △
        ("盛岡市医師会_調査票_記入済.xlsx", 52, "institution_not_found", "error"),   # not in 名簿
        ("盛岡市医師会_調査票_記入済.xlsx", 53, "duplicate_report", "warning"),
        ("紫波郡医師会.csv", 6, "outside_sender_area", "warning"),
        ("奥州医師会_積極的役割.xlsx", 4, "inst_code_check_digit", "error"),
        ("奥州医師会_積極的役割.xlsx", 6, "torikumi_in_range", "error"),
        ("宮古医師会_送付状.xlsx", None, "layout_not_recognised", "error"),
        ("八幡平市_調査票.xlsx", 9, "area_municipality_unknown", "error"),        # 盛岡町
        ("八幡平市_調査票.xlsx", 10, "operator_kind_allowed", "error"),           # NPO法人
        ("八幡平市_調査票.xlsx", 11, "start_date_readable", "error"),             # 令和0年
        ("紫波町_調査票.xlsx", 9, "duplicate_report", "warning"),                 # also reported by 矢巾町
        ("四万十市.csv", 4, "area_other_prefecture", "error"),                    # 宇和島市
        ("盛岡市医師会_調査票_記入済.xlsx", 12, "status_differs", "warning"),     # 支援診1, 名簿 says otherwise
        ("紫波町_調査票.xlsx", 9, "duplicate_report", "warning"),
        ("矢巾町.csv", 5, "hub_kind_missing", "warning"),
        ("四万十市.csv", 3, "hub_kind_missing", "warning"),
    }
    # exactly these: the contact lines under the 奥州医師会 table (記入者：…, 担当者 | …, 電話 | …) are none of them
    assert rows == expected and len(found) == len(rows)
    # the README states the count
    stated = re.search(r"(\d+) errors and (\d+) warnings from reports", (ROOT / "README.md").read_text())
    counted = [sum(1 for r in found if r[3] == sev) for sev in ("error", "warning")]
    assert [int(stated.group(1)), int(stated.group(2))] == counted
    for f, rows_in, accepted, rejected, skipped, status in files:
        assert rows_in == accepted + rejected + skipped, f
        assert status == ("failed" if f.endswith("宮古医師会_送付状.xlsx") else "read"), f
    assert hub == [("紫波町・矢巾町", 2, "地域医師会等関係団体")]
    assert summary["institution_reports"] > 40 and summary["hub_reports"] >= 6


def test_personal_list_is_every_contact_of_the_sample():
    read = {c["value"] for p in sorted(RAW.glob("*/reports/*/*"))
            for c in read_report(p, REPORT_KINDS[p.parent.name], p.parts[-4]).contacts}
    assert read <= set(PERSONAL) and "奥州 五郎" in read


def test_personal_data_stays_out_of_the_analysts_file(sample_run):
    """Not in any table or view of annex.duckdb, any cell of the annex workbooks, nor the findings the Prefect
    artifact shows."""
    db, _ = sample_run
    books = sorted(db.parent.glob("*.xlsx"))
    assert len(books) >= 3
    texts = {"annex.duckdb": all_text(db), "finding_rows": str(finding_rows(db, limit=100_000)),
             **{p.name: workbook_text(p) for p in books}}
    leaked = {(where, p) for where, t in texts.items() for p in PERSONAL if p in t}
    assert leaked == set()
    # ... and is where it belongs: in the letter going back to the sender
    ws = openpyxl.load_workbook(db.parent / "returns" / "03_盛岡市医師会.xlsx").active
    assert "盛岡 花子 様" in str(ws["A3"].value)
    ws = openpyxl.load_workbook(db.parent / "returns" / "03_奥州医師会.xlsx").active   # from a line under the table
    assert "奥州 五郎 様" in str(ws["A3"].value)


def test_return_workbook_lists_findings_in_sender_rows(sample_run):
    db, _ = sample_run
    returns = db.parent / "returns"
    names = sorted(p.name for p in returns.glob("*.xlsx"))
    assert "03_盛岡市医師会.xlsx" in names and "39_四万十市.xlsx" in names and "03_宮古医師会.xlsx" in names
    ws = openpyxl.load_workbook(returns / "03_盛岡市医師会.xlsx").active
    header = [c.value for c in ws[9]]
    assert header[:4] == ["No.", "ファイル", "シート", "行"]
    listed = {(r[3], r[6]) for r in ws.iter_rows(min_row=10, values_only=True)}
    assert {(11, "要修正"), (52, "要修正"), (53, "要確認")} <= listed
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
    clean = openpyxl.load_workbook(returns / "39_高知市.xlsx").active
    assert clean["A10"].value.startswith("指摘事項はありません")


def test_formula_like_text_is_text_everywhere(raw_copy, tmp_path):
    shutil.rmtree(raw_copy / "39")  # one prefecture is enough
    report = raw_copy / "03" / "reports" / "ishikai" / "盛岡市医師会_追加.csv"
    formula, phone = '=HYPERLINK("http://x","y")', "+81-3-1234-5678"
    with open(report, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([["医療機関名", "取組①", "備考"],
                                 [formula, "○", ""],                 # not an institution: finding value
                                 ["遠山病院", "○", phone],            # accepted: note
                                 ["@SUM(A1)", "=1+1", "-2+3"]])      # formula-like everywhere
    out = tmp_path / "out"
    run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    values = {r[0] for r in con.execute(
        "SELECT value FROM findings WHERE source_file LIKE '%追加.csv'").fetchall()}
    notes = {r[0] for r in con.execute(
        "SELECT note FROM institution_reports WHERE source_file LIKE '%追加.csv'").fetchall()}
    con.close()
    assert formula in values and "=1+1" in values and phone in notes
    for path in (out / "returns").glob("*.xlsx"):
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, cell.coordinate, cell.value)
    ws = openpyxl.load_workbook(out / "returns" / "03_盛岡市医師会.xlsx").active
    cells = [c for row in ws.iter_rows() for c in row if c.value == formula]
    assert cells and all(c.data_type == "s" for c in cells)


def test_filled_template_comes_back_without_findings(raw_copy, tmp_path):
    """`annex templates` output, ticked as a sender would in Excel, is read without a single finding."""
    from annex.templates import build_templates
    shutil.rmtree(raw_copy / "39")
    shutil.rmtree(raw_copy / "03" / "reports")
    build_templates(raw_copy, tmp_path / "t", ["03"])
    tdir = tmp_path / "t" / "templates" / "03_岩手県"
    (raw_copy / "03" / "reports" / "ishikai").mkdir(parents=True)
    (raw_copy / "03" / "reports" / "shichoson").mkdir(parents=True)

    wb = openpyxl.load_workbook(tdir / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx")
    ws = wb["入力"]
    header = {ws.cell(8, c).value: c for c in range(1, ws.max_column + 1)}
    ticked = 0
    for r in range(9, 9 + 5):
        if ws.cell(r, header["医療機関名"]).value:
            ws.cell(r, header["報告（○）"]).value = "○"
            ws.cell(r, header["取組①"]).value = "○"
            ticked += 1
    ws["B4"] = "記入 者"
    wb.save(raw_copy / "03" / "reports" / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx")

    wb = openpyxl.load_workbook(tdir / "shichoson" / "雫石町_調査票.xlsx")
    ws = wb["入力"]
    header = {ws.cell(8, c).value: c for c in range(1, ws.max_column + 1)}
    for label, v in {"拠点の名称": "雫石町地域包括支援センター", "拠点の種別": "地域包括支援センター",
                     "事業区域（市町村）": "雫石町", "運営主体": "雫石町", "運営主体の種別": "市町村",
                     "開始時期": "令和6年4月", "取組①": "○", "取組⑤": "○"}.items():
        ws.cell(9, header[label]).value = v
    wb.save(raw_copy / "03" / "reports" / "shichoson" / "雫石町_調査票.xlsx")

    out = tmp_path / "out"
    run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    findings = con.execute("SELECT * FROM findings WHERE source_file LIKE '%/reports/%'").fetchall()
    files = con.execute("SELECT layout, sender, accepted, rejected FROM report_files ORDER BY kind").fetchall()
    con.close()
    assert findings == []
    assert ticked == 5
    assert files == [("template", "盛岡市医師会", 5, 0), ("template", "033014", 1, 0)]
