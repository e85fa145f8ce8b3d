"""The annex workbook per prefecture and the national summary, written from the sample's annex.duckdb and read
back with openpyxl: sheets, headers, print setup, no formulas, rows and totals as in DuckDB, hostile text kept as
text, the changes sheet with and without a changes table."""
from __future__ import annotations

import csv
import datetime as dt
import html
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest

from annex import text
from annex.annex_workbook import (NATIONAL_FILE_NAME, NO_CHANGES, REPEAT_COLOR, SHEETS, WORKBOOK_OPTIONS, Col, Row,
                                  _header_width, _text, _widths, annex_file_name, fit_width, write_annex,
                                  write_national_summary)
from annex.report_layout import FONT
from annex.xlsx import display_width, wrapped_lines

PREFS = [("03", "岩手県"), ("39", "高知県")]
AS_OF = dt.date(2026, 10, 1)
HEADERS = {
    "積極的役割を担う医療機関": ["圏域", "市町村", "医療機関名", "所在地", "種別", "在後病", "入院機能", "取組①", "取組②",
                          "取組③", "取組④", "取組⑤", "取組⑥", "報告した医師会"],
    "連携を担う拠点": ["名称", "拠点の種別", "事業区域", "在宅医療圏", "運営主体", "運営主体の種別", "開始年度",
                "推進事業の実施主体と同一", "積極的役割を担う医療機関と同一", "取組①", "取組②", "取組③", "取組④", "取組⑤",
                "報告した市町村"],
    "圏域別の配置状況": ["在宅医療圏", "市町村", "積極的役割を担う医療機関の数", "連携を担う拠点の数", "指針の要件", "不足"],
    "在宅療養支援病院・診療所等の状況": ["圏域", "市町村", "支援病1", "支援病2", "支援病3", "支援診1", "支援診2", "支援診3",
                           "在医総管", "在後病"],
    "選定候補": ["圏域", "市町村", "段階", "理由", "医療機関名", "所在市町村", "受理記号", "報告の有無"],
    "前回からの変更": ["対象", "変更", "キー", "名称", "変更前", "変更後"],
    "検証結果": ["ファイル", "シート", "行", "列", "値", "区分", "内容"],
}
HOSTILE = ['=HYPERLINK("http://x","y")', "+81-3-0000-0000", "@SUM(1,2)", "-1+1", "http://example.invalid/"]
# the 在宅医療圏 in the plans' order (岩手: its 二次医療圏 order; 高知: east to west), as raw/<pref>/areas.csv lists them
PLAN_AREAS = {"03": ["盛岡", "岩手中部", "胆江", "両磐", "気仙", "釜石", "宮古", "久慈", "二戸"],
              "39": ["安芸", "中央", "高幡", "幡多"]}


@pytest.fixture(scope="module")
def books(sample_run, tmp_path_factory):
    db, _ = sample_run
    out = tmp_path_factory.mktemp("annex")
    con = duckdb.connect(str(db), read_only=True)
    paths = {code: write_annex(con, out / annex_file_name(code, name), code, name, AS_OF) for code, name in PREFS}
    paths["national"] = write_national_summary(con, out / NATIONAL_FILE_NAME, PREFS, AS_OF)
    yield paths, con
    con.close()


def _label(cell) -> str:
    return (cell.value or "").replace("\n", "") if isinstance(cell.value, str) or cell.value is None else cell.value


def header_row(ws, first: str) -> int:
    """1-based row of the table header (the first row whose column A holds the first label)."""
    return next(r for r in range(1, 20) if _label(ws.cell(r, 1)) == first)


def data_rows(ws, first: str) -> list[tuple]:
    hr = header_row(ws, first)
    return [tuple(c.value for c in row) for row in ws.iter_rows(min_row=hr + 1)]


def test_file_names():
    assert annex_file_name("03", "岩手県") == "03_岩手県_在宅医療_別表.xlsx"
    assert NATIONAL_FILE_NAME == "全国_在宅医療_集計.xlsx"


@pytest.mark.parametrize("code", ["03", "39"])
def test_sheets_headers_and_print_setup(books, code):
    paths, _ = books
    wb = openpyxl.load_workbook(paths[code])
    assert wb.sheetnames == [name for name, _ in SHEETS]
    for ws in wb.worksheets:
        assert ws.page_setup.paperSize == 9, ws.title
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.page_setup.fitToWidth in (None, 1), ws.title      # absent = 1, the OOXML default
        assert ws.page_setup.fitToHeight in ((None, 1) if ws.title == "表紙" else (0,)), ws.title  # 表紙: one page
        assert "&A" in ws.oddFooter.left.text and "&P / &N" in ws.oddFooter.center.text   # sheet name, n / N
        assert dict(PREFS)[code] in ws.oddHeader.right.text and "&A" not in (ws.oddHeader.left.text or "")
        assert not ws.sheet_view.showGridLines
        if ws.title == "表紙":
            continue
        labels = HEADERS[ws.title]
        hr = header_row(ws, labels[0])
        assert [_label(ws.cell(hr, c + 1)) for c in range(len(labels))] == labels, ws.title
        assert ws.cell(hr, len(labels) + 1).value is None
        assert ws.print_title_rows == f"${hr}:${hr}", ws.title
        assert ws.freeze_panes and int(ws.freeze_panes.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) == hr + 1
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith(f"A{hr}:")
        assert ws.cell(1, 1).value.startswith(dict(PREFS)[code])                 # title row on top
        for c in range(1, len(labels) + 1):                                      # widths from the content
            letter = openpyxl.utils.get_column_letter(c)
            assert 4 <= ws.column_dimensions[letter].width <= 62, (ws.title, letter)


def test_no_formulas_anywhere(books):
    paths, _ = books
    for path in paths.values():
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, ws.title, cell.coordinate)
                    assert not isinstance(cell.value, bool), (path.name, ws.title, cell.coordinate)


def test_cover(books):
    paths, con = books
    wb = openpyxl.load_workbook(paths["39"])
    text = "\n".join(str(c.value) for row in wb["表紙"].iter_rows() for c in row if c.value is not None)
    assert "高知県 在宅医療の体制（第8次医療計画 別表）" in text
    assert "令和8年10月1日現在" in text
    assert "出典：「医療情報ネットのオープンデータ」（厚生労働省）" in text
    assert "地方厚生（支）局「届出受理医療機関名簿」" in text
    for name, _ in SHEETS[1:]:
        assert name in text
    assert "shisetsu-shikoku-ika-r0809.xlsx" in text and "令和8年9月1日" in text   # the 名簿 of 高知県 only
    assert "shisetsu-touhoku" not in text
    assert "municipalities.csv" in text and "時点不明" in text
    numbers = [c.value for row in wb["表紙"].iter_rows() for c in row if isinstance(c.value, (int, float))]
    n_inst = con.execute("SELECT count(*) FROM annex_institutions WHERE pref_code = '39'").fetchone()[0]
    assert n_inst in numbers


@pytest.mark.parametrize("code", ["03", "39"])
def test_institutions_as_in_duckdb(books, code):
    paths, con = books
    ws = openpyxl.load_workbook(paths[code])["積極的役割を担う医療機関"]
    rows = data_rows(ws, "圏域")
    expected = con.execute("""SELECT name, kouhou_byoin, inpatient, torikumi_1 FROM annex_institutions
                              WHERE pref_code = ?""", [code]).fetchall()
    assert len(rows) == len(expected) > 0
    # 外字 print as 〓 (the 名簿's 「\ue1d1坂医院」); the table keeps the original
    assert sorted(r[2] for r in rows) == sorted("".join("〓" if text.is_private_use(c) else c for c in e[0])
                                                for e in expected)
    assert not any(text.has_gaiji(str(v)) for r in rows for v in r)
    assert ("\ue1d1坂医院" in [e[0] for e in expected], "〓坂医院" in [r[2] for r in rows]) == ((code == "03",) * 2)
    assert {r[6] for r in rows} <= {"○", None, "不明"}
    assert {r[5] for r in rows} | {r[7] for r in rows} <= {"○", None}
    # every row names its 圏域 and 市町村 (a filter keeps them; a page break cannot lose them), the group's first
    # row in black, the rest light grey, so that each group still reads as one block
    assert all(r[0] and r[1] for r in rows)
    hr = header_row(ws, "圏域")
    firsts = [k == 0 or rows[k][0] != rows[k - 1][0] for k in range(len(rows))]
    colours = [ws.cell(hr + 1 + k, 1).font.color for k in range(len(rows))]
    grey = [c is not None and c.rgb is not None and str(c.rgb).upper().endswith(REPEAT_COLOR[1:]) for c in colours]
    assert grey == [not f for f in firsts] and sum(grey) > 0


def _writable_copy(sample_run, tmp_path) -> duckdb.DuckDBPyConnection:
    """A connection to a copy of the sample's database, to change for one test."""
    db, _ = sample_run
    copy = tmp_path / "annex.duckdb"
    shutil.copy(db, copy)
    return duckdb.connect(str(copy))


def _cells(ws) -> list:
    return [c.value for row in ws.iter_rows() for c in row if c.value is not None]


def test_gaiji_print_as_geta_with_a_note_and_the_meibo_warning(books):
    paths, con = books
    wb = openpyxl.load_workbook(paths["03"])
    for ws in wb.worksheets:
        assert not any(text.has_gaiji(str(v)) for v in _cells(ws)), ws.title
    notes = [v for v in _cells(wb["積極的役割を担う医療機関"]) if str(v).startswith("〓：")]
    assert len(notes) == 1 and "印刷できない" in notes[0] and "1字" in notes[0]
    # the 名簿's 外字 warning on the prefecture's own institution is in 検証結果 (it was left out: 名簿 not raw/03/)
    findings = data_rows(wb["検証結果"], "ファイル")
    gaiji = [r for r in findings if r[4] == "〓坂医院"]
    assert len(gaiji) == 1 and gaiji[0][0] == "shisetsu-touhoku-ika-r0808.xlsx" and gaiji[0][5] == "要確認"
    assert any(str(v).startswith("〓：") for v in _cells(wb["検証結果"]))
    # 高知: no 外字, no note, no other prefecture's 名簿 warning
    wb39 = openpyxl.load_workbook(paths["39"])
    assert not any(str(v).startswith("〓：") for ws in wb39.worksheets for v in _cells(ws))
    assert not [r for r in data_rows(wb39["検証結果"], "ファイル") if "shisetsu" in str(r[0])]
    assert con.execute("SELECT count(*) FROM annex_institutions WHERE name = '\ue1d1坂医院'").fetchone()[0] == 1


def test_gaiji_on_every_sheet_with_names(sample_run, tmp_path):
    """Names and addresses in the hubs, candidates and changes too; a supplementary-plane 外字 as well."""
    con = _writable_copy(sample_run, tmp_path)
    con.execute("UPDATE annex_hubs SET operator = operator || '\ue000' WHERE pref_code = '03'")
    con.execute("UPDATE candidates SET name = '\U000f0001' || name WHERE pref_code = '03' AND name IS NOT NULL")
    con.execute("""INSERT INTO changes BY NAME SELECT '03' AS pref_code, 'institution' AS entity, 'added' AS change,
                   '0310000000' AS "key", '\uf8ff病院' AS name""")
    path = write_annex(con, tmp_path / "x.xlsx", "03", "岩手県", AS_OF)
    n_hubs, n_cands = con.execute("""SELECT (SELECT count(*) FROM annex_hubs WHERE pref_code = '03'),
        (SELECT count(*) FROM candidates WHERE pref_code = '03' AND name IS NOT NULL)""").fetchone()
    con.close()
    wb = openpyxl.load_workbook(path)
    for sheet, n in [("連携を担う拠点", n_hubs), ("選定候補", n_cands), ("前回からの変更", 1)]:
        cells = _cells(wb[sheet])
        assert not any(text.has_gaiji(str(v)) for v in cells), sheet
        assert sum(str(v).count("〓") for v in cells if not str(v).startswith("〓：")) == n, sheet
        assert [v for v in cells if str(v).startswith("〓：")] == [
            f"〓：外字（私用領域の文字）のため印刷できない文字です（このシートで{n}字。データには元の文字を残しています）。"]


def test_shipped_areas_csv_lists_the_areas_in_the_plans_order():
    root = Path(__file__).resolve().parent.parent / "raw"
    for code, plan in PLAN_AREAS.items():
        with (root / code / "areas.csv").open(encoding="utf-8-sig", newline="") as f:
            assert list(dict.fromkeys(r["在宅医療圏"] for r in csv.DictReader(f))) == plan, code


def _order(values) -> list:
    return list(dict.fromkeys(v for v in values if v))


@pytest.mark.parametrize("code", ["03", "39"])
def test_areas_in_the_order_of_areas_csv(books, code):
    """Every sheet by 圏域 follows raw/<pref>/areas.csv (the plan's order), not the first municipality code."""
    paths, con = books
    wb = openpyxl.load_workbook(paths[code])
    plan = PLAN_AREAS[code]
    assert _order(r[0] for r in data_rows(wb["圏域別の配置状況"], "在宅医療圏")) == plan
    assert _order(r[0] for r in data_rows(wb["選定候補"], "圏域")) == plan
    resources = [r[0] for r in data_rows(wb["在宅療養支援病院・診療所等の状況"], "圏域") if r[0]]
    assert _order(r for r in resources if not r.endswith("計")) == plan
    assert [r for r in resources if r.endswith(" 計")] == [f"{a} 計" for a in plan]
    inst = _order(r[0] for r in data_rows(wb["積極的役割を担う医療機関"], "圏域"))
    assert inst == [a for a in plan if a in inst] and len(inst) >= 2
    for table in ("coverage", "candidates", "annex_institutions"):   # the tables in build order too
        got = _order(r[0] for r in con.execute(f"SELECT home_care_area FROM {table} WHERE pref_code = ?",
                                               [code]).fetchall())
        assert got == [a for a in plan if a in got], table


def test_hubs_start_year_and_flags(books):
    paths, _ = books
    ws = openpyxl.load_workbook(paths["03"])["連携を担う拠点"]
    rows = {r[0]: r for r in data_rows(ws, "名称")}
    hub = rows["紫波郡地域包括支援センター"]
    assert hub[2] == "紫波町・矢巾町" and hub[3] == "盛岡"
    assert hub[6].replace("\n", "") == "平成28年度（2016）"
    assert hub[7] == "○" and hub[8] is None


def test_coverage_marks_failing_areas(books):
    paths, con = books
    ws = openpyxl.load_workbook(paths["03"])["圏域別の配置状況"]
    rows = data_rows(ws, "在宅医療圏")
    failing = con.execute("SELECT count(*) FROM coverage WHERE pref_code = '03' AND NOT meets_rule").fetchone()[0]
    assert sum(r[4] == "満たさない" for r in rows) == failing > 0
    assert all(isinstance(r[2], int) and isinstance(r[3], int) for r in rows)
    hr = header_row(ws, "在宅医療圏")
    for i, r in enumerate(rows):
        cell = ws.cell(hr + 1 + i, 5)
        assert cell.font.b == (r[4] == "満たさない")


@pytest.mark.parametrize("code", ["03", "39"])
def test_resource_counts_are_numbers_and_totals_add_up(books, code):
    paths, con = books
    ws = openpyxl.load_workbook(paths[code])["在宅療養支援病院・診療所等の状況"]
    rows = data_rows(ws, "圏域")
    assert rows[-1][0] == "計"
    munis, area_rows = [], []
    current: list[tuple] = []
    for r in rows:
        assert all(isinstance(v, int) for v in r[2:10]), r
        if r[0] and r[0].endswith(" 計"):
            assert [sum(m[k] for m in current) for k in range(2, 10)] == list(r[2:10]), r[0]
            area_rows.append(r)
            current = []
        elif r[0] != "計":
            current.append(r)
            munis.append(r)
    assert [sum(m[k] for m in munis) for k in range(2, 10)] == list(rows[-1][2:10])
    n_munis, n_areas = con.execute("""SELECT count(*) FILTER (WHERE level = 'municipality'),
                                             count(*) FILTER (WHERE level = 'area')
                                      FROM resource_counts WHERE pref_code = ?""", [code]).fetchone()
    assert (len(munis), len(area_rows)) == (n_munis, n_areas)
    assert "2ア・2イを含む" in "".join(str(c.value) for row in ws.iter_rows(max_row=5) for c in row if c.value)


def test_candidates_and_findings(books):
    paths, con = books
    wb = openpyxl.load_workbook(paths["03"])
    cands = data_rows(wb["選定候補"], "圏域")
    assert len(cands) == con.execute("SELECT count(*) FROM candidates WHERE pref_code = '03'").fetchone()[0]
    assert {r[7] for r in cands} <= {"報告あり", "未報告", None}
    findings = data_rows(wb["検証結果"], "ファイル")
    kinds = [r[5] for r in findings]
    assert kinds == sorted(kinds, key=lambda k: k != "要修正")     # errors first
    assert kinds.count("要修正") == con.execute("""SELECT count(*) FROM findings WHERE source_file LIKE '03/%'
                                                  AND severity = 'error'""").fetchone()[0]
    assert all(r[2] == "全体" or isinstance(r[2], int) for r in findings)
    assert not any("39/" in str(r) or "四万十市.csv" in str(r) for r in findings)


def test_changes_sheet_on_a_first_run(books):
    paths, _ = books
    ws = openpyxl.load_workbook(paths["03"])["前回からの変更"]
    hr = header_row(ws, "対象")
    assert ws.cell(hr + 1, 1).value == NO_CHANGES


def test_changes_sheet_without_changes_table(sample_run, tmp_path):
    con = _writable_copy(sample_run, tmp_path)
    con.execute("DROP TABLE changes")
    path = write_annex(con, tmp_path / "x.xlsx", "39", "高知県", AS_OF)
    con.close()
    ws = openpyxl.load_workbook(path)["前回からの変更"]
    assert [_label(c) for c in ws[header_row(ws, "対象")]] == HEADERS["前回からの変更"]
    assert ws.cell(header_row(ws, "対象") + 1, 1).value == NO_CHANGES


def test_national_summary(books):
    paths, con = books
    wb = openpyxl.load_workbook(paths["national"])
    ws = wb.worksheets[0]
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth in (None, 1)
    assert ws.page_setup.fitToHeight == 0 and ws.print_title_rows
    rows = data_rows(ws, "コード")
    assert [r[:2] for r in rows[:-1]] == [("03", "岩手県"), ("39", "高知県")]
    assert rows[-1][0] == "合計"
    for k in range(2, 11):
        assert all(isinstance(r[k], int) for r in rows)
        assert rows[-1][k] == rows[0][k] + rows[1][k]
    for r in rows[:-1]:
        areas, met, failed, inst, hubs = con.execute("""
            SELECT (SELECT count(*) FROM coverage WHERE pref_code = $p),
                   (SELECT count(*) FROM coverage WHERE pref_code = $p AND meets_rule),
                   (SELECT count(*) FROM coverage WHERE pref_code = $p AND NOT meets_rule),
                   (SELECT count(*) FROM annex_institutions WHERE pref_code = $p),
                   (SELECT count(*) FROM annex_hubs WHERE pref_code = $p)""", {"p": r[0]}).fetchone()
        assert r[2:7] == (areas, met, failed, inst, hubs)
    # the summary's 支援病/支援診 equal the prefecture 計 row of each annex
    for (code, _), r in zip(PREFS, rows):
        total = data_rows(openpyxl.load_workbook(paths[code])["在宅療養支援病院・診療所等の状況"], "圏域")[-1]
        assert (r[7], r[8]) == (sum(total[2:5]), sum(total[5:8]))


def test_hostile_text_and_changes_table(sample_run, tmp_path):
    con = _writable_copy(sample_run, tmp_path)
    name, address = HOSTILE[0], HOSTILE[1]
    con.execute("""INSERT INTO annex_institutions BY NAME
                   SELECT '03' AS pref_code, '盛岡' AS home_care_area, '032018' AS municipality_code,
                          '盛岡市' AS municipality_name, '0310000000' AS inst_code, ? AS name, ? AS address,
                          ? AS senders_text, true AS torikumi_1""", [name, address, HOSTILE[2]])
    con.execute("""INSERT INTO annex_hubs BY NAME
                   SELECT '03' AS pref_code, 'x' AS hub_id, ? AS name, ? AS operator, ? AS area_names""",
                [HOSTILE[3], HOSTILE[4], HOSTILE[0]])
    con.execute("""INSERT INTO findings VALUES ('03/reports/ishikai/x.csv', NULL, 3, '医療機関名', ?, 'name_required',
                   'error', ?)""", [HOSTILE[0], HOSTILE[2]])
    # a previous run, and one change of 03 against it
    con.execute("""INSERT INTO runs BY NAME SELECT 'prev1234abcd' AS run_id, 'success' AS outcome,
                   TIMESTAMPTZ '2026-04-01 01:30:00+00' AS started_at""")
    con.execute("""INSERT INTO changes BY NAME
                   SELECT '03' AS pref_code, 'institution' AS entity, 'status_changed' AS change,
                          '0310000000' AS "key", ? AS name, '届出なし' AS "before", ? AS "after",
                          'prev1234abcd' AS previous_run_id, 'now' AS run_id""", [name, HOSTILE[1]])
    path = write_annex(con, tmp_path / annex_file_name("03", "岩手県"), "03", "岩手県", AS_OF)
    path39 = write_annex(con, tmp_path / annex_file_name("39", "高知県"), "39", "高知県", AS_OF)
    con.close()
    wb = openpyxl.load_workbook(path)
    seen = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                if cell.value in HOSTILE:
                    assert cell.data_type == "s", (ws.title, cell.coordinate)
                    seen.setdefault(cell.value, set()).add(ws.title)
    assert seen[name] >= {"積極的役割を担う医療機関", "連携を担う拠点", "検証結果", "前回からの変更"}
    assert set(seen) == set(HOSTILE)
    inst = data_rows(wb["積極的役割を担う医療機関"], "圏域")
    assert sum(r[2] == name for r in inst) == 1
    changes = data_rows(wb["前回からの変更"], "対象")
    assert changes == [("医療機関", "支援病・支援診の届出", "0310000000", name, "届出なし", HOSTILE[1])]
    note = " ".join(str(c.value) for row in wb["前回からの変更"].iter_rows(max_row=4) for c in row if c.value)
    assert "令和8年4月1日 10:30" in note and "prev1234" in note       # the previous run, in JST
    ws39 = openpyxl.load_workbook(path39)["前回からの変更"]
    assert ws39.cell(header_row(ws39, "対象") + 1, 1).value == "前回からの変更はありません。"


# --- row heights against what LibreOffice renders -------------------------------------------------------------
def _rendered_lines(pairs: list[tuple[str, float]], tmp_path) -> list[int]:
    """Lines LibreOffice sets each (text, column width) in: one row each, with a marker in column A, rendered to
    PDF; the lines counted from pdftotext's word positions."""
    import xlsxwriter
    book = tmp_path / "lines.xlsx"
    wb = xlsxwriter.Workbook(str(book), WORKBOOK_OPTIONS)
    f = wb.add_format({"font_name": FONT, "font_size": 10, "text_wrap": True, "valign": "top"})
    by_width: dict[float, list[int]] = {}
    for i, (_, w) in enumerate(pairs):
        by_width.setdefault(w, []).append(i)
    for k, (w, idx) in enumerate(sorted(by_width.items())):
        ws = wb.add_worksheet(f"w{k}")
        ws.set_column(0, 0, 8)
        ws.set_column(1, 1, w)
        for r, i in enumerate(idx):
            ws.write_string(r, 0, f"R{i}", f)
            ws.write_string(r, 1, pairs[i][0], f)
            ws.set_row(r, 70)
    wb.close()
    subprocess.run(["libreoffice", f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
                   check=True, capture_output=True, timeout=180)
    subprocess.run(["pdftotext", "-bbox", str(tmp_path / "lines.pdf"), str(tmp_path / "lines.html")], check=True)
    words = [(page, float(m[1]), float(m[2]), html.unescape(m[3]))
             for page, part in enumerate((tmp_path / "lines.html").read_text().split("<page ")[1:])
             for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>(.*?)</word>', part)]
    marker = {t: (page, x, y) for page, x, y, t in words if re.fullmatch(r"R\d+", t)}
    lines = []
    for i in range(len(pairs)):
        page, x, y = marker[f"R{i}"]
        lines.append(len({round(y2) for p2, x2, y2, _ in words if p2 == page and x2 > x + 40 and y - 3 <= y2 < y + 60}))
    return lines


def test_wrapped_lines_one_line_when_it_fits():
    assert wrapped_lines("盛岡市津志田26地割30番地1", 26) == 1      # 25 wide in the 所在地 column: was 2
    assert wrapped_lines("盛岡市津志田26地割30番地1", 24) == 2
    assert wrapped_lines("ああ\nいい", 10) == 2
    # 禁則 and unbreakable runs: 「）」 never starts a line, digits stay together
    assert wrapped_lines("あいうえおかきく（従来型）", 16) == 2
    assert wrapped_lines("12345678901234567890", 10) == 3           # a run wider than the column is broken


def test_widths_from_each_columns_distinct_values_as_from_every_cell():
    """_widths reads each column's distinct values; values equal in Python but shown differently (1 and True,
    1 and Decimal("1.000000")) each count with their own text, a merged 計 label not in its first column."""
    cols = [Col("名称"), Col("b"), Col("c", "number"), Col("d", width=7), Col("e", min=2)]
    rows = [Row(["x", 1, 1, "q", None]), Row(["長い名前の病院\n二行目", True, Decimal("1.000000"), None, ""]),
            Row(["計の長い長い長い長いラベル", None, 2.0, "", "z"], merge_label=2), Row(["a", "", 12, "zz", "\n"])]

    def every_cell(rows: list[Row]) -> list[float]:
        """The widths as _widths gave them from every cell's text."""
        widths = []
        for i, c in enumerate(cols):
            data = max((display_width(part) for r in rows if i >= r.merge_label or r.merge_label == 1
                        for part in _text(r.values[i]).split("\n")), default=0)
            widths.append(c.width or max(c.min, min(c.cap, max(fit_width(data), _header_width(c.label)))))
        return widths

    assert _widths(cols, rows) == every_cell(rows)
    assert _widths(cols, []) == every_cell([])


@pytest.mark.skipif(shutil.which("libreoffice") is None or shutil.which("pdftotext") is None,
                    reason="libreoffice / pdftotext not on PATH")
def test_row_heights_agree_with_libreoffice(sample_run, tmp_path):
    """The names and addresses of the sample at the widths of the annex: LibreOffice never needs more lines than
    the row is given (nothing cut off), and what fits in a line is given one line (no spare blank line)."""
    db, _ = sample_run
    con = duckdb.connect(str(db), read_only=True)
    texts = [r[0] for r in con.execute("""SELECT name FROM annex_institutions UNION SELECT address FROM annex_institutions
                                          UNION SELECT name FROM candidates WHERE name IS NOT NULL
                                          UNION SELECT rule FROM candidates""").fetchall()]
    con.close()
    texts += ["12345678901234567890123", "ABCDEFGHIJ abcdefghij 0123", "しいのきクリニックさくらしいのき"]
    pairs = [(t, w) for t in sorted(texts) for w in (8.5, 12, 26, 30, 43)]
    rendered = _rendered_lines(pairs, tmp_path)
    for (t, w), lo in zip(pairs, rendered):
        assert 1 <= lo <= wrapped_lines(t, w), (t, w, lo)
        if display_width(t) <= w - 0.5:
            assert lo == wrapped_lines(t, w) == 1, (t, w)
