"""Returned 医師会 / 市町村 reports: a corpus of messy files, each defect named where it is made, with the
exact finding (rule, row, severity) every defect must produce and the row accounting of every file."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
import xlwt

from annex import pipeline
from annex.areas import read_areas
from annex.municipalities import find_municipality
from annex.report_checks import read_prefecture_reports
from annex.report_layout import ISHIKAI, SHICHOSON, institution_type, torikumi_numbers, yes_no
from annex.reports import Grid, match_header, normalise_inst_code
from annex.status import institutions_with_status

from conftest import RAW

# Real institutions of the shipped 岩手 名簿 (盛岡市) used by the corpus
TOYAMA = ("0310110309", "遠山病院")          # 支援病2
KAWAKUBO = ("0310113998", "川久保病院")      # 支援病1
ISURUGI = ("0310112560", "いするぎ医院")     # 支援診3
TSUNAGI = "盛岡つなぎ温泉病院"                 # 支援病3


@pytest.fixture(scope="module")
def iwate():
    prefs = pipeline.select_prefectures(RAW, ["03"])
    ref = pipeline.load_reference(RAW, prefs)
    links = pipeline.link_prefecture(ref, prefs[0])
    status = institutions_with_status(links.institutions, pipeline.pref_notifications(ref, "03"))
    return ref, status


def run_reports(tmp_path: Path, iwate, files: dict[str, callable]):
    """Write the given report files into a fresh 03 folder and read them as the pipeline does."""
    ref, status = iwate
    pref_dir = tmp_path / "03"
    for kind in ("ishikai", "shichoson"):
        (pref_dir / "reports" / kind).mkdir(parents=True)
    shutil.copy(RAW / "03" / "areas.csv", pref_dir / "areas.csv")
    for rel, write in files.items():
        write(pref_dir / "reports" / rel)
    areas_res, areas = read_areas(pref_dir / "areas.csv", "03", ref.index)
    pr = read_prefecture_reports(pref_dir, "03", ref.index, areas_res, areas, status)
    for f in pr.files:  # rows in = accepted + rejected + skipped, for every file of every test
        assert f.result.balanced(), f.result.accounting()
    return pr


def got(rep) -> set[tuple]:
    return {(f["rule"], f["row"], f["severity"]) for f in rep.result.findings}


def write_xlsx(path: Path, sheets: dict[str, list[list]], merges: dict[str, list[tuple]] | None = None,
               hidden: set[str] = frozenset()) -> None:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for (r0, c0, r1, c1, v) in (merges or {}).get(name, []):
            ws.merge_range(r0, c0, r1, c1, v)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is None or any(m[0] <= r <= m[2] and m[1] <= c <= m[3] for m in (merges or {}).get(name, [])):
                    continue
                if isinstance(v, (int, float)):
                    ws.write_number(r, c, v)
                else:
                    ws.write_string(r, c, v)
        if name in hidden:
            ws.hide()
    wb.close()


def write_csv(path: Path, rows: list[list], encoding: str) -> None:
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)


# --- 1. our kind of foreign layout: title rows, sender block, merged two-row header --------------------
MORIOKA_ROWS = [
    ["在宅医療において積極的役割を担う医療機関（報告）"],                                           # row 1 title
    ["医師会名", "盛岡市医師会"],                                                                # row 2 sender
    ["記入者：岩手 太郎"],                                                                       # row 3 personal
    [],                                                                                          # row 4
    ["No", "医療機関名称", "市町村", "種別", "取組事項", None, None, None, None, None, "備考", "電話"],  # row 5
    [None, None, None, None, "①", "②", "③", "④", "⑤", "⑥", None, None],                           # row 6
    [1, TOYAMA[1], "盛岡市", "支援病２", "○", "○", "", "", "○", "○",
     '=HYPERLINK("http://x","y")', "+81-3-0000-0000"],                       # row 7 clean; formula-like note
    [2, KAWAKUBO[1], "岩手県盛岡市", "支援病1", "〇", "◯", "✓", "1", "はい", "有"],  # row 8 clean: every yes
    [],                                                                      # row 9 blank -> skipped
    [3, ISURUGI[1], "盛岡市", "支援診1", "○"],                                 # row 10 名簿 says 支援診3 -> warning
    [4, "存在しない在宅クリニック", "盛岡市", "", "○"],                         # row 11 not in 名簿 -> error
    [5, TOYAMA[1], "盛岡市", "", "", "", "○"],                                 # row 12 reported twice -> warning
    [6, "", "盛岡市", "", "○"],                                                # row 13 no name -> error
    [7, TSUNAGI, "盛岡市", "支援病3", "○", "△"],                               # row 14 △ -> error
    [8, TSUNAGI, "盛岡市", "支援病3"],                                         # row 15 no 取組 at all -> warning
    ["※ 取組事項は記入要領を参照"],                                              # row 16 note -> skipped
]
MORIOKA_EXPECTED = {
    ("status_differs", 10, "warning"),
    ("institution_not_found", 11, "error"),
    ("duplicate_report", 12, "warning"),
    ("name_required", 13, "error"),
    ("yes_or_blank", 14, "error"),
    ("no_torikumi", 15, "warning"),
}


def test_merged_header_xlsx_every_defect_with_its_row(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {"ishikai/報告.xlsx": lambda p: write_xlsx(
        p, {"表紙": [["盛岡市医師会"], ["在宅医療の調査"]], "回答": MORIOKA_ROWS},
        merges={"回答": [(4, 4, 4, 9, "取組事項")]})})
    rep = pr.files[0]
    assert rep.sender == "盛岡市医師会" and rep.sender_source == "block"
    assert got(rep) == MORIOKA_EXPECTED
    a = rep.result.accounting()
    assert (a["rows_in"], a["accepted"], a["rejected"], a["skipped_blank"]) == (10, 5, 3, 2)
    assert rep.result.balanced()
    rows = pr.institution_reports.sort("source_row")
    assert rows["source_row"].to_list() == [7, 8, 10, 12, 15]
    assert rows.filter(pl.col("source_row") == 8).select(pl.col("^torikumi_.*$")).row(0) == (True,) * 6
    assert rows.filter(pl.col("source_row") == 7)["note"][0] == '=HYPERLINK("http://x","y")'
    # personal data is read (for the return letter) but kept apart from the rows
    assert {c["value"] for c in rep.contacts} == {"岩手 太郎", "+81-3-0000-0000"}
    assert "+81-3-0000-0000" not in str(pr.institution_reports.to_dicts())


# --- 2. an old .xls: municipality merged down, 取組 as numbers, codes in every form -------------------
def write_seihoku_xls(path: Path) -> None:
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Sheet1")
    ws.write(0, 0, "積極的役割を担う医療機関一覧")                      # row 1 title
    ws.write(2, 0, "市町村名")                                           # row 3 header
    for c, h in enumerate(["医療機関コード", "医療機関名", "取組事項"], start=1):
        ws.write(2, c, h)
    ws.write_merge(3, 5, 0, 0, "盛岡市")                                 # rows 4-6 municipality merged down
    ws.write(3, 1, "01,1030,9")      # row 4: 7-digit 医療機関番号 form of 遠山病院 -> 0310110309, clean
    ws.write(3, 2, TOYAMA[1])
    ws.write(3, 3, "①②④")
    ws.write(4, 1, "0310113999")     # row 5: wrong check digit -> error
    ws.write(4, 2, KAWAKUBO[1])
    ws.write(4, 3, "1,2")
    ws.write(5, 1, "０３１０１１２５６０")  # row 6: full-width digits, clean
    ws.write(5, 2, ISURUGI[1])
    ws.write(5, 3, "1～3, 7")        # row 6 also: 取組 7 does not exist -> error
    wb.save(str(path))


def test_xls_merged_municipality_and_codes(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {"ishikai/盛岡市医師会.xls": write_seihoku_xls})
    rep = pr.files[0]
    assert rep.sender == "盛岡市医師会" and rep.sender_source == "file_name"
    assert got(rep) == {("inst_code_check_digit", 5, "error"), ("torikumi_in_range", 6, "error")}
    assert rep.result.balanced() and rep.result.accounting()["accepted"] == 1
    row = pr.institution_reports.row(0, named=True)
    assert (row["inst_code"], row["source_row"], row["reported_municipality"]) == (TOYAMA[0], 4, "盛岡市")
    assert [row[f"torikumi_{n}"] for n in range(1, 7)] == [True, True, False, True, False, False]


# --- 3. a CP932 CSV of hubs: aliases, 郡, codes, and every kind of bad value --------------------------
HUB_ROWS = [
    ["在宅医療に必要な連携を担う拠点（紫波町）"],                                                     # line 1
    ["拠点名", "種別", "区域", "運営主体名", "運営主体の種別", "開始年度", "取組事項"],                   # line 2
    ["紫波郡地域包括支援センター", "地域包括支援センター", "紫波郡紫波町・岩手県矢巾町", "（一社）紫波郡医師会",
     "医師会", "H28年度～", "1,2,3,4,5"],                                        # line 3 clean (郡/県 prefixes)
    ["紫波町在宅医療連携窓口", "市町村", "033219", "紫波町", "市町村直営", "令和6年4月1日", "①"],  # line 4 code, clean
    ["架空拠点A", "市町村", "紫波町・盛岡町", "紫波町", "市町村", "R6.4", "1"],     # line 5 盛岡町 unknown -> error
    ["架空拠点B", "市町村", "紫波町・宇和島市", "紫波町", "市町村", "R6.4", "1"],   # line 6 other prefecture -> error
    ["架空拠点C", "市町村", "紫波町", "紫波町", "市町村", "令和0年4月", "1"],        # line 7 令和0年 -> error
    ["架空拠点D", "市町村", "紫波町", "紫波町", "市町村", "平成32年4月", "1"],      # line 8 平成32年 -> error
    ["架空拠点E", "市町村", "紫波町", "紫波町", "市町村", "1980/4", "1"],           # line 9 before 平成 -> error
    ["架空拠点F", "訪問看護事業所", "紫波町", "NPO法人F", "NPO法人", "R5.4", "1"],  # line 10 kind not in 指針 -> error
    ["架空拠点G", "", "紫波町", "紫波町", "", "R5.4", "1,6"],                      # line 11 取組 6 of 5 -> error
    ["架空拠点H", "", "紫波町", "紫波町", "", "R5.4", ""],                          # line 12 no kinds, no 取組 -> 3 warnings
    ["", "", "", "", "", "", ""],                                                 # line 13 blank
    ["架空拠点I", "保健所", "矢巾町", "岩手県", "保健所", "R5.4", "4"],              # line 14 area without 紫波町 -> warning
]


def test_cp932_csv_hubs(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {"shichoson/紫波町.csv": lambda p: write_csv(p, HUB_ROWS, "cp932")})
    rep = pr.files[0]
    assert rep.sender == "033219"
    assert got(rep) == {
        ("area_municipality_unknown", 5, "error"), ("area_other_prefecture", 6, "error"),
        ("start_date_readable", 7, "error"), ("start_date_readable", 8, "error"),
        ("start_date_in_range", 9, "error"), ("operator_kind_allowed", 10, "error"),
        ("torikumi_in_range", 11, "error"),
        ("hub_kind_missing", 12, "warning"), ("operator_kind_missing", 12, "warning"), ("no_torikumi", 12, "warning"),
        ("area_excludes_sender", 14, "warning"),
    }
    a = rep.result.accounting()
    assert (a["rows_in"], a["accepted"], a["rejected"], a["skipped_blank"]) == (12, 4, 7, 1)
    hubs = pr.hub_reports.sort("source_row")
    first = hubs.row(0, named=True)
    assert first["area_codes"] == ["033219", "033227"] and first["operator_kind"] == "地域医師会等関係団体"
    assert str(first["start_date"]) == "2016-04-01" and first["hub_kind"] == "地域包括支援センター"
    assert hubs.row(1, named=True)["area_codes"] == ["033219"]


# --- 4. UTF-8 with BOM, a hidden sheet, and a file that is no report at all ---------------------------
def test_bom_csv_hidden_sheet_and_unrecognised_file(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {
        "ishikai/紫波郡医師会.csv": lambda p: write_csv(p, [
            ["医療機関名", "市町村", "取組①", "取組②"],
            [ISURUGI[1], "盛岡市", "○", ""],   # line 2: outside 紫波郡医師会's area -> warning
        ], "utf-8-sig"),
        "ishikai/盛岡市医師会_追加.xlsx": lambda p: write_xlsx(p, {
            "今回": [["医療機関名", "取組①", "取組②"], [KAWAKUBO[1], "○", "○"]],
            "前回（非表示）": [["医療機関名", "取組①", "取組②"], [TOYAMA[1], "○", "○"]],   # hidden: skipped
        }, hidden={"前回（非表示）"}),
        "ishikai/宮古医師会.xlsx": lambda p: write_xlsx(p, {"送付状": [["県知事 様"], ["別添のとおり回答します。"]]}),
        "ishikai/壊れた.xlsx": lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"),
    })
    by_name = {Path(f.path).name: f for f in pr.files}
    assert got(by_name["紫波郡医師会.csv"]) == {("outside_sender_area", 2, "warning")}
    oshu = by_name["盛岡市医師会_追加.xlsx"]
    assert {(f["rule"], f["sheet"]) for f in oshu.result.findings} == {("hidden_sheet_skipped", "前回（非表示）")}
    assert oshu.result.accounting()["accepted"] == 1
    for name, rule in (("宮古医師会.xlsx", "layout_not_recognised"), ("壊れた.xlsx", "report_unreadable")):
        f = by_name[name].result
        assert [(x["rule"], x["row"], x["severity"]) for x in f.findings] == [(rule, None, "error")]
        assert f.status == "failed"
    assert "宮古医師会.xlsx" in by_name["宮古医師会.xlsx"].result.findings[0]["message"]
    # the run went on: the other files were read
    assert pr.institution_reports.height == 2


# --- 5. contact lines under and between the rows: personal data for the letter, never data rows -------
CONTACT_ROWS = [
    ["医師会名", "盛岡市医師会"],                                     # row 1 sender
    ["報告者：岩手 太郎"],                                            # row 2 a person, not the sending body
    ["No", "医療機関名", "市町村", "取組①", "取組②"],                  # row 3 header
    [1, TOYAMA[1], "盛岡市", "✔\ufe0f", "☑\ufe0f"],                  # row 4 clean: ✔️ ☑️ as a Mac/phone types them
    ["", "記入者：岩手 太郎"],                                        # row 5 between the rows: label：value
    [2, KAWAKUBO[1], "盛岡市", "✓\ufe0e", "⭕"],                      # row 6 clean: ✓︎ ⭕
    [3, ISURUGI[1], "盛岡市", "✅"],                                  # row 7 clean: ✅
    [],                                                               # row 8 blank
    ["担当者", "盛岡 花子"],                                          # row 9 label | value (No column, name column)
    ["", "電話", "019-000-1234"],                                     # row 10
    ["メールアドレス", "hanako@example.invalid"],                     # row 11
    ["", "TEL 019-000-5678"],                                         # row 12 label and value with a space
    [4, "FAX019-000-9999"],                                           # row 13 No. written, label and value joined
]
CONTACT_VALUES = {"岩手 太郎", "盛岡 花子", "019-000-1234", "hanako@example.invalid", "019-000-5678", "019-000-9999"}


def test_contact_lines_are_kept_apart_not_read_as_rows(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {"ishikai/報告.xlsx": lambda p: write_xlsx(p, {"回答": CONTACT_ROWS})})
    rep = pr.files[0]
    assert got(rep) == set()
    a = rep.result.accounting()
    assert (a["rows_in"], a["accepted"], a["rejected"], a["skipped_blank"]) == (10, 3, 0, 7)
    assert sorted(pr.institution_reports["source_row"].to_list()) == [4, 6, 7]
    assert pr.institution_reports.filter(pl.col("source_row") == 6)["torikumi_2"].to_list() == [True]
    assert {c["value"] for c in rep.contacts} == CONTACT_VALUES
    assert [c["value"] for c in rep.contacts if c["field"] == "contact_person"][0] == "岩手 太郎"
    assert rep.sender == "盛岡市医師会" and rep.sender_text == "盛岡市医師会"


def test_contact_lines_of_hub_reports(tmp_path, iwate):
    """市町村 and 医師会 alone in a cell are values a hub row holds (運営主体の種別): such a row is read."""
    pr = run_reports(tmp_path, iwate, {"shichoson/紫波町.csv": lambda p: write_csv(p, [
        ["種別", "拠点名", "区域", "運営主体", "取組事項"],                      # line 1
        ["市町村", "紫波町在宅医療連携窓口", "紫波町", "紫波町", "1"],           # line 2 read: 市町村 is its kind
        ["担当者：紫波 次郎", "", "", "", ""],                                  # line 3 contact
        ["連絡先", "019-000-0001", "", "", ""],                                 # line 4 contact
    ], "utf-8")})
    rep = pr.files[0]
    assert got(rep) == {("operator_kind_missing", 2, "warning")}
    assert rep.result.accounting()["skipped_blank"] == 2 and pr.hub_reports["name"].to_list() == ["紫波町在宅医療連携窓口"]
    assert {c["value"] for c in rep.contacts} == {"紫波 次郎", "019-000-0001"}


def test_sender_text_is_only_a_configured_name(tmp_path, iwate):
    """The sender cell is quoted nowhere unless it is a configured sender's name: it may hold a person's name."""
    def table(name):
        return [["医療機関名", "取組①"], [name, "○"]]
    pr = run_reports(tmp_path, iwate, {
        "ishikai/盛岡市医師会_a.csv": lambda p: write_csv(p, [["提出元", "岩手 太郎"], *table(TOYAMA[1])], "utf-8"),
        "ishikai/盛岡市医師会_b.csv": lambda p: write_csv(p, [["医師会名", "盛岡市医師会（岩手 花子）"],
                                                             *table(KAWAKUBO[1])], "utf-8"),
        "ishikai/報告.csv": lambda p: write_csv(p, [["報告者：岩手 一郎"], *table(ISURUGI[1])], "utf-8"),
    })
    by_name = {Path(f.path).name: f for f in pr.files}
    a, b, c = by_name["盛岡市医師会_a.csv"], by_name["盛岡市医師会_b.csv"], by_name["報告.csv"]
    assert [(f["rule"], f["row"], f["column"], f["value"]) for f in a.result.findings] == [
        ("sender_unknown_name", 1, "医師会名", None)]
    assert (a.sender, a.sender_source, a.sender_text) == ("盛岡市医師会", "file_name", None)
    assert (b.sender, b.sender_source, b.sender_text) == ("盛岡市医師会", "block", None)
    assert [(f["rule"], f["value"]) for f in c.result.findings] == [("sender_unknown", None)]
    assert c.sender_text is None and c.contacts[0]["value"] == "岩手 一郎"
    text = str([f for rep in pr.files for f in rep.result.findings]) + str([r.sender_text for r in pr.files])
    assert not any(name in text for name in ("岩手 太郎", "岩手 花子", "岩手 一郎"))


def test_district_as_area_is_its_towns(tmp_path, iwate):
    pr = run_reports(tmp_path, iwate, {"shichoson/紫波町.csv": lambda p: write_csv(p, [
        ["拠点名", "種別", "区域", "運営主体名", "運営主体の種別", "開始年度", "取組事項"],
        ["紫波郡地域包括支援センター", "地域包括支援センター", "紫波郡", "（一社）紫波郡医師会",     # line 2
         "医師会", "平成28年度～（2016年度～）", "①～③"],
        ["紫波町在宅医療連携窓口", "市町村", "岩手県紫波郡", "紫波町", "市町村", "令和6年4月～現在", "1．2．4"],  # line 3
        ["架空拠点", "市町村", "架空郡", "紫波町", "市町村", "R6.4", "1～3"],    # line 4 no such 郡 -> error
    ], "utf-8")})
    rep = pr.files[0]
    assert got(rep) == {("area_district_expanded", 2, "warning"), ("area_district_expanded", 3, "warning"),
                        ("area_municipality_unknown", 4, "error")}
    assert "紫波町・矢巾町" in rep.result.findings[0]["message"]
    hubs = pr.hub_reports.sort("source_row")
    assert hubs["area_codes"].to_list() == [["033219", "033227"]] * 2
    assert [str(d) for d in hubs["start_date"]] == ["2016-04-01", "2024-04-01"]
    assert [[r[f"torikumi_{n}"] for n in range(1, 6)] for r in hubs.iter_rows(named=True)] == [
        [True, True, True, False, False], [True, True, False, True, False]]


def test_district_towns_fill_a_town_without_institutions():
    """北川村 (安芸郡) has no institution in the shipped 高知 data: its code between two 安芸郡 towns places it."""
    from annex.report_checks import district_towns
    prefs = pipeline.select_prefectures(RAW, ["39"])
    ref = pipeline.load_reference(RAW, prefs)
    inst = pipeline.pref_institutions(ref, prefs[0])[0]
    assert not inst.filter(pl.col("municipality_code") == "393053").height
    aki = district_towns(inst, ref.index, "39")["安芸郡"]
    assert [ref.index.name_of(c) for c in aki] == ["東洋町", "奈半利町", "田野町", "安田町", "北川村", "馬路村", "芸西村"]


# --- small pieces -------------------------------------------------------------------------------
def test_value_vocabularies():
    assert all(yes_no(v) for v in ["○", "〇", "◯", "✓", "1", "１", "はい", "有", " ○ ", "✔\ufe0f", "☑\ufe0f",
                                   "✓\ufe0e", "⭕", "✅"])
    assert not any(yes_no(v) for v in ["", "×", "0", "なし"])
    assert yes_no("△") is None
    assert institution_type("支援診２ア") == "支援診2" and institution_type("在支病(従来型)") == "支援病3"
    assert institution_type("届出なし（診療所）") == "なし" and institution_type("在宅") is None
    assert torikumi_numbers("①③", 6) == [1, 3] and torikumi_numbers("2〜4", 6) == [2, 3, 4]
    assert [torikumi_numbers(v, 6) for v in ("①～③", "① ～ ③", "1～3", "1．2．4", "②〜④,⑥")] == [
        [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 4], [2, 3, 4, 6]]
    assert torikumi_numbers("たくさん", 6) is None and torikumi_numbers("①～", 6) is None
    assert normalise_inst_code("03-1-01-1030-9", "03") == "0310110309"
    assert normalise_inst_code("01,1030,9", "03") == "0310110309"


def test_start_dates_written_as_ranges():
    """What follows a ～ is ignored when what precedes it is a date; an impossible start is still named."""
    import datetime as dt
    from annex.codes import DateParseError, parse_date
    assert [parse_date(v) for v in ("平成28年度～（2016年度～）", "令和6年4月～現在", "H28年度〜R2年度", "2016/4 ～ 2020/3")] == [
        dt.date(2016, 4, 1), dt.date(2024, 4, 1), dt.date(2016, 4, 1), dt.date(2016, 4, 1)]
    with pytest.raises(DateParseError, match="令和0年"):
        parse_date("令和0年4月～現在")
    with pytest.raises(DateParseError, match="読めません"):
        parse_date("未定～（調整中）")


def test_find_municipality_forms(iwate):
    ref, _ = iwate
    idx = ref.index
    assert find_municipality(idx, "紫波郡紫波町", "03") == ("033219", [])
    assert find_municipality(idx, "岩手県紫波町", "03") == ("033219", [])
    assert find_municipality(idx, "０３３２１９", "03") == ("033219", [])
    assert find_municipality(idx, "03321", "03") == ("033219", [])
    assert find_municipality(idx, "033218", "03") == (None, [])          # wrong check digit
    assert find_municipality(idx, "宇和島市", "03") == (None, ["38"])
    assert find_municipality(idx, "盛岡市中央通1-1", "03")[0] is None    # an address is not a municipality


def test_header_aliases_and_fullwidth():
    g = Grid("s", [["タイトル"], ["ＮＯ", "医療機関の名称", "所在市区町村", "取組事項（１）", "取組事項（２）"]], [1, 2])
    m = match_header(g, ISHIKAI)
    assert m.start == 1 and set(m.columns.values()) == {"no", "name", "municipality", "torikumi_1", "torikumi_2"}
    assert match_header(Grid("s", [["氏名", "住所"], ["a", "b"]], [1, 2]), SHICHOSON) is None


def test_readme_lists_every_report_rule():
    """Every rule the report readers and checks emit is in the README's table (section "Reports from …")."""
    import ast
    root = RAW.parent
    rules = set()
    rule_arg = {"finding": 5, "_warn": 4, "_reject": 4, "failed_file": 2}
    for module in ("annex/reports.py", "annex/report_checks.py", "schemas/reported_institutions.py",
                   "schemas/reported_hubs.py"):
        for node in ast.walk(ast.parse((root / module).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                args = node.args
                if name in rule_arg and len(args) > rule_arg[name] and isinstance(args[rule_arg[name]], ast.Constant):
                    rules.add(args[rule_arg[name]].value)
                rules |= {k.value.value for k in node.keywords if name == "check" and k.arg == "name"}
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant) \
                    and isinstance(node.elts[1], ast.Name) and node.elts[1].id.isupper():   # Grid.notes
                rules.add(node.elts[0].value)
    assert {"hidden_row", "encoding_mixed", "area_required", "sender_unknown_name", "layout_not_recognised",
            "no_rows", "area_district_expanded"} <= rules
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Reports from 医師会 and 市町村", 1)[1].split("\n## ", 1)[0]
    assert sorted(r for r in rules if f"`{r}`" not in section) == []


def test_status_in_python_equals_sql(sample_run):
    """The cross-checks use annex.status; the tables use sql/home_care_status.sql: one rule, two places."""
    import duckdb
    db, _ = sample_run
    con = duckdb.connect(str(db), read_only=True)
    sql = pl.from_arrow(con.execute(
        "SELECT inst_code, shien_symbol FROM home_care_status WHERE shien_symbol IS NOT NULL ORDER BY 1").arrow())
    notes = pl.from_arrow(con.execute("SELECT inst_code, symbol FROM notifications").arrow())
    con.close()
    from annex.status import shien_status
    py = shien_status(notes).filter(pl.col("shien_symbol").is_not_null()).select("inst_code", "shien_symbol")
    assert py.sort("inst_code").equals(sql)


def test_validate_each_is_validating_each_frame_alone():
    """Many files' rows in one pandera call give each file what validating it alone gives."""
    from annex.findings import validate, validate_each
    from schemas.reported_institutions import ReportedInstitution
    schema = {"source_row": pl.Int64, "name": pl.String, "inst_code": pl.String, "reported_type": pl.String,
              "torikumi_1": pl.String, "source_sheet": pl.String}
    rest = ["municipality", *(f"torikumi_{n}" for n in range(2, 7)), "torikumi_list", "report"]

    def frame(*rows):
        return pl.DataFrame([dict(zip(schema, r)) for r in rows], schema=schema).with_columns(
            pl.lit(None, pl.String).alias(c) for c in rest)
    clean = frame((5, "遠山病院", TOYAMA[0], "支援病2", "○", "報告"), (6, "いするぎ医院", None, "支援診3", None, "報告"))
    dirty = frame((5, "川久保病院", "0310113997", "支援病1", "○", "報告"),   # check digit wrong (…998 is right)
                  (6, "", None, "支援診3", "○", "報告"),                     # name missing
                  (7, "盛岡つなぎ温泉病院", None, "支援病9", "たぶん", "報告"),  # unknown type, not ○/blank
                  (8, TSUNAGI, None, "支援病3", None, "報告"))               # fine
    all_bad = frame((9, None, None, "?", None, "報告"))                      # name missing, unknown type
    no_column = frame((3, "遠山病院", None, "支援病2", None, "報告")).drop("report")   # a column missing: all rows
    frames, files = [clean, dirty, all_bad, no_column], ["a.xlsx", "b.xlsx", "c.csv", "d.xlsx"]
    together = validate_each(frames, ReportedInstitution, files)
    for (ok, found), df, file in zip(together, frames, files):
        alone_ok, alone_found = validate(df, ReportedInstitution, file)
        assert ok.equals(alone_ok) and ok.columns == df.columns
        assert sorted(map(repr, found)) == sorted(map(repr, alone_found))
    assert [ok.height for ok, _ in together] == [2, 1, 0, 0]
    assert {(f["row"], f["rule"]) for f in together[1][1]} == {
        (5, "inst_code_check_digit"), (6, "name_required"), (7, "reported_type_vocabulary"), (7, "yes_or_blank")}
    assert {f["source_file"] for _, found in together for f in found} == {"b.xlsx", "c.csv", "d.xlsx"}



def test_validate_stacked_is_validating_each_frame_alone():
    """Rows made one frame first (validate_reports: the rows of a batch's files) give each file what validating it
    alone gives; a file without rows gets no finding and no pandera call is made when no file has rows."""
    from annex.findings import validate, validate_stacked
    from annex.reports import raw_schema
    from schemas.reported_institutions import ReportedInstitution
    schema = raw_schema("ishikai")

    def rows(*named):
        return [{**dict.fromkeys(schema), "source_file": "x", "source_sheet": "入力", **r} for r in named]
    parts = [rows({"source_row": 5, "name": "遠山病院", "inst_code": TOYAMA[0], "torikumi_1": "○"}),
             [],
             rows({"source_row": 5, "name": "川久保病院", "inst_code": "0310113997"},   # check digit wrong
                  {"source_row": 6, "name": "", "torikumi_2": "たぶん"},               # name missing, not ○/blank
                  {"source_row": 7, "name": TSUNAGI, "reported_type": "支援病3"}),
             rows({"source_row": 9, "name": None, "reported_type": "?"})]
    files = ["a.xlsx", "empty.xlsx", "b.csv", "c.xlsx"]
    whole = pl.DataFrame([r for part in parts for r in part], schema=schema)
    stacked = validate_stacked(whole, [len(p) for p in parts], ReportedInstitution, files)
    for (ok, found), part, file in zip(stacked, parts, files):
        alone = pl.DataFrame(part, schema=schema)
        alone_ok, alone_found = validate(alone, ReportedInstitution, file) if part else (alone, [])
        assert ok.equals(alone_ok) and ok.schema == alone.schema
        assert sorted(map(repr, found)) == sorted(map(repr, alone_found))
    assert [ok.height for ok, _ in stacked] == [1, 0, 1, 0]
    assert {(f["row"], f["rule"]) for f in stacked[2][1]} == {
        (5, "inst_code_check_digit"), (6, "name_required"), (6, "yes_or_blank")}
    with pytest.MonkeyPatch.context() as mp:   # no rows at all: no pandera call
        mp.setattr(ReportedInstitution, "validate", lambda *a, **k: pytest.fail("validated no rows"))
        none = validate_stacked(pl.DataFrame(schema=schema), [0, 0], ReportedInstitution, ["a", "b"])
    assert [(ok.height, ok.schema == whole.schema, found) for ok, found in none] == [(0, True, [])] * 2


def test_each_distinct_asks_each_value_once():
    """A per-value check sees each distinct value once, in one call or over many (a national run validates ~20
    batches of prefectures): null passes, every other row gets its value's verdict."""
    from types import SimpleNamespace
    from schemas._checks import each_distinct
    asked = []

    def ok(v: str) -> bool:
        asked.append(v)
        return v.startswith("○")

    def check(values):
        data = SimpleNamespace(lazyframe=pl.LazyFrame({"x": values}, schema={"x": pl.String}), key="x")
        return each_distinct(data, ok).collect().to_series().to_list()
    assert check(["○", None, "×", "○", "○a", "×"]) == [True, True, False, True, True, False]
    assert check(["×", "ok", None, "○"]) == [False, False, True, True]
    assert sorted(asked) == sorted(["○", "×", "○a", "ok"])

def test_grid_cells_cleaned_once_as_clean_does():
    """Grid.cleaned() gives clean() of every cell, whatever the cells' types (the values met are kept in one dict
    for every sheet: equal values of different types must clean alike), and only the rows asked for."""
    import datetime as dt
    from annex.report_layout import clean
    rows = [[True, 1, 1.0, "1", "１"], [False, 0, 0.0, -0.0, None, ""], [1.5, "1.5", dt.date(2024, 4, 1),
            dt.datetime(2024, 4, 1, 9, 30), dt.time(9, 30), dt.timedelta(days=2)],
            ["　岩手\u200b 太郎\n", "①", "ｶﾞ", "㈱", float("nan"), 10**20, 1e20]]
    for order in (rows, rows[::-1], [r[::-1] for r in rows]):
        g = Grid("s", [list(r) for r in order], list(range(1, len(order) + 1)))
        assert g.cleaned(2)[:2] == [[clean(v) for v in r] for r in order[:2]]
        assert len(g.cleaned(2)) == 2                                   # not further than asked
        assert g.cleaned() == [[clean(v) for v in r] for r in order]


def test_header_search_passes_over_rows_that_cannot_name_a_required_field():
    """match_header looks only at rows (and pairs of rows) whose characters could spell a required field's
    label: the result is what looking at every row gives, on rows of labels cut and joined in every way."""
    import random
    from annex import reports
    pieces = ["医療機関", "名", "名称", "医療機関名", "(正式名称)", "（必須）", "拠点", "の名称", "コード", "医療機関コード",
              "所在市町村", "取組", "取組事項", "①", "②", "(1)", "（２）", "1", "○", "種別", "No.", "※注", "報告",
              "事業区域", "運営主体", "開始時期", "盛岡市", "遠山病院", "", "", "", "記入者：岩手 太郎", "施設", "機関"]
    rng = random.Random(7)
    for _ in range(400):
        grid_rows = [[rng.choice(pieces) + (rng.choice(pieces) if rng.random() < 0.3 else "")
                      for _ in range(rng.randint(0, 7))] for _ in range(rng.randint(1, 8))]
        for kind in (ISHIKAI, SHICHOSON):
            fast = match_header(Grid("s", [list(r) for r in grid_rows], list(range(1, len(grid_rows) + 1))), kind)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(reports._HeaderWords, "could_name_required", lambda self, text: True)
                every = match_header(Grid("s", [list(r) for r in grid_rows], list(range(1, len(grid_rows) + 1))), kind)
            assert fast == every, (kind.kind, grid_rows)


def test_contact_labels_found_by_their_first_character():
    """_labelled passes over a cell whose first character begins no sender/contact label: it finds what it
    finds when it looks at every cell."""
    from annex import reports
    from annex.report_layout import SENDER_LABELS, clean

    class Everything:
        def __contains__(self, _):
            return True
    labels = [lab for labs in SENDER_LABELS.values() for lab in labs]
    cells = [f"{lab}{sep}{value}" for lab in labels for sep in ("", "：", ":", " ", "　", "（必須）:") for value in ("", "岩手 太郎", "019-123")]
    cells += ["岩手 太郎", "019-123-4567", "遠山病院", "※記入者：", "(必須)", "医療法人 遠山病院", "TEL", "メール aa@b.jp"]
    for cell in cells:
        row = [clean(cell), "", clean("盛岡 花子")]
        for in_table in (False, True):
            found = reports._labelled(row, 0, in_table)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(reports, "_LABEL_FIRST", Everything())
                assert found == reports._labelled(row, 0, in_table), cell
    assert reports._labelled([clean("記入者：岩手 太郎")], 0) == ("contact_person", "岩手 太郎")

def test_reports_of_many_prefectures_is_each_read_alone():
    """The national path validates several prefectures' reports together: each gets what it gets alone."""
    prefs = pipeline.select_prefectures(RAW, None)
    assert len(prefs) >= 2
    ref = pipeline.load_reference(RAW, prefs)
    insts = [pipeline.pref_institutions(ref, p)[0] for p in prefs]
    together = pipeline.reports_of_many([ref] * len(prefs), prefs, insts)
    for pref, inst, many in zip(prefs, insts, together):
        alone = pipeline.reports_of(ref, pref, inst)
        assert many.pref_code == alone.pref_code == pref.code
        assert many.institution_reports.equals(alone.institution_reports)
        assert many.hub_reports.equals(alone.hub_reports)
        assert [r.accounting() for r in many.results] == [r.accounting() for r in alone.results]
        assert [r.result.findings for r in many.files] == [r.result.findings for r in alone.files]
        assert [r.result.accepted.height for r in many.files] == [r.result.accepted.height for r in alone.files]
    assert sum(len(r.result.findings) for pr in together for r in pr.files) > 5   # the sample's messy reports


def test_area_files_validated_together_are_each_validated_alone(tmp_path, iwate):
    """A batch of prefectures validates its areas.csv files in one pandera call (read_many_areas): a municipality
    twice in one file is still caught there, and the same municipality in another file is not a duplicate."""
    from annex.areas import read_areas, read_many_areas
    ref, _ = iwate
    lines = (RAW / "03" / "areas.csv").read_text(encoding="utf-8-sig").splitlines()
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")       # row 2 again at the end
    copy = tmp_path / "copy.csv"
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")                       # every row of twice.csv
    files = [(twice, "03"), (copy, "03"), (tmp_path / "missing.csv", "03")]
    together = read_many_areas(files, ref.index)
    for (path, code), (res, areas) in zip(files, together):
        alone, alone_areas = read_areas(path, code, ref.index)
        assert res.accounting() == alone.accounting() and res.findings == alone.findings
        assert areas.frame.equals(alone_areas.frame)
    dup = [(f["rule"], f["row"]) for f in together[0][0].findings if f["rule"] == "unique_municipality"]
    assert dup == [("unique_municipality", 2), ("unique_municipality", len(lines) + 1)]
    assert not [f for f in together[1][0].findings if f["severity"] == "error"]
    assert together[2][0].status == "failed" and together[2][1].frame.height == 0


def test_city_in_areas_places_its_wards(iwate, tmp_path):
    """A plan may list a 政令市 alone (札幌市), while institutions lie in its wards (札幌市中央区 in the 名簿): the
    wards no row places take the city's 圏域 and 医師会 (and its line); a ward with a row of its own keeps it.
    The file's own rows are what is accepted (rows in = accepted + rejected + skipped)."""
    ref, _ = iwate
    path = tmp_path / "areas.csv"
    path.write_text("団体コード,市町村名,二次医療圏,在宅医療圏,郡市医師会\n"
                    "011002,札幌市,札幌,札幌,札幌市医師会\n"
                    "011029,札幌市北区,札幌,札幌北,北区医師会\n", encoding="utf-8-sig")
    res, areas = read_areas(path, "01", ref.index)
    assert res.balanced() and res.accepted.height == 2
    by_code = {r["municipality_code"]: r for r in areas.frame.iter_rows(named=True)}
    wards = sorted(c for c, r in ref.index.by_code.items() if r.get("parent_code") == "011002")
    assert len(wards) == 10 and set(wards) | {"011002"} <= set(by_code)
    assert by_code["011011"]["municipality_name"] == "札幌市中央区"
    assert (by_code["011011"]["home_care_area"], by_code["011011"]["ishikai"], by_code["011011"]["source_row"]) == \
        ("札幌", "札幌市医師会", 2)
    assert by_code["011029"]["home_care_area"] == "札幌北"
    assert areas.ishikai_of("011011") == "札幌市医師会" and "011029" not in areas.munis_of_ishikai("札幌市医師会")
    assert "011011" in areas.munis_of_ishikai("札幌市医師会")
    # no ward is reported as not placed; 函館市 and the rest of 北海道 are
    not_placed = {f["value"] for f in res.findings if f["rule"] == "municipality_not_placed"}
    assert not not_placed & set(wards) and "012025" in not_placed


def test_a_city_named_for_an_institution_in_its_ward(iwate):
    """A report's 所在市町村 札幌市 agrees with the 名簿's 札幌市中央区 (no municipality_differs), and narrows
    same-named institutions to that city's wards."""
    from annex.report_checks import in_municipality
    ref, _ = iwate
    assert in_municipality("011011", "011002", ref.index) and in_municipality("011002", "011002", ref.index)
    assert not in_municipality("012025", "011002", ref.index)       # 函館市 is not in 札幌市
    assert not in_municipality("011011", "011029", ref.index)       # nor 中央区 in 北区
    assert not in_municipality(None, "011002", ref.index)


def test_validate_reports_takes_read_report_frames_as_read_report_rows():
    """validate_reports has one path: a file read by read_report (its rows already a frame) is validated as the
    same file read by read_report_rows — the sample's reports, whose rows fail checks too."""
    from annex.report_checks import REPORT_DIRS, report_paths
    from annex.reports import read_report, read_report_rows, validate_reports
    for kind, paths in report_paths(RAW / "03").items():
        framed = [read_report(p, REPORT_DIRS[kind], "03") for p in paths]
        listed = [read_report_rows(p, REPORT_DIRS[kind], "03") for p in paths]
        read_only = sum(len(r.result.findings) for r in framed)
        validate_reports(framed, REPORT_DIRS[kind])
        validate_reports(listed, REPORT_DIRS[kind])
        for a, b in zip(framed, listed):
            assert a.rows is None and b.rows is None
            assert a.result.accepted.equals(b.result.accepted) and a.result.findings == b.result.findings
        assert sum(len(r.result.findings) for r in framed) > read_only   # the frames were validated
