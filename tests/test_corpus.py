"""Hostile inputs (tests/corpus/, made by tests/corpus/make_corpus.py from the real sample rows): one file per
defect. Each case asserts the exact findings (rule, sheet, row as the user sees it, severity), that every
other row of the file is accepted exactly as from the clean file it was made from, that the row accounting
adds up, and that a clean file read in the same run is untouched. One whole-pipeline run takes several bad
files at once and must complete with the same links as a clean run and formula-like text kept as text."""
from __future__ import annotations

import itertools
import shutil
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from annex import pipeline, returns, workbooks
from annex.areas import read_areas
from annex.code_list import read_code_list
from annex.facility_files import read_facility_file
from annex.meibo import read_meibo
from annex.report_checks import REPORT_DIRS, read_prefecture_reports
from annex.reports import MAX_CSV_BYTES, read_report
from annex.status import institutions_with_status
from annex.xlsx import MAX_NAME_BYTES, safe_file_name
from tests.conftest import RAW
from tests.corpus.make_corpus import lying_zip_bomb, rezip

CORPUS = Path(__file__).resolve().parent / "corpus"
SHIWA_CSV = RAW / "03/reports/ishikai/紫波郡医師会.csv"
TEMPLATE = RAW / "03/reports/ishikai/盛岡市医師会_調査票_記入済.xlsx"
YAHABA_CSV = RAW / "03/reports/shichoson/矢巾町.csv"
OLD_XLS = RAW / "03/reports/ishikai/岩手西北医師会_報告.xls"        # clean companion of institution cases
MORIOKA_HUBS = RAW / "03/reports/shichoson/盛岡市_調査票.xlsx"        # clean companion of hub cases
HOSPITALS = RAW / "reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip"
INJECTIONS = ['=HYPERLINK("http://example.invalid","y")', "+1+1", "-1+1", "@SUM(A1)", "=1"]  # \t=1, \r=1 -> =1

INST_COLS = ["inst_code", "reported_name", "reported_code", "reported_municipality", "reported_type",
             *[f"torikumi_{n}" for n in range(1, 7)], "note"]
HUB_COLS = ["name", "hub_kind", "area_codes", "operator", "operator_kind", "start_date", "start_text",
            "same_as_program", "same_as_institution", *[f"torikumi_{n}" for n in range(1, 6)], "note"]

# what the clean sample files give on their own
SHIWA_FINDINGS = {("outside_sender_area", None, 6, "warning")}
TEMPLATE_FINDINGS = {("yes_or_blank", "入力", 11, "error"), ("status_differs", "入力", 12, "warning"),
                     ("institution_not_found", "入力", 52, "error"), ("duplicate_report", "入力", 53, "warning")}
YAHABA_FINDINGS = {("hub_kind_missing", None, 5, "warning")}
UNREADABLE = "Excelファイルとして開けません"
LIE = "xl/worksheets/sheet2.xml は書かれているサイズ（1,000 バイト）より大きく展開されます（zip爆弾の疑い）"


# Files made by the test in tmp (too large for git, or with a name some file systems refuse): name -> writer
def _lying_header(dest: Path, crc: int = 0) -> None:
    """The filled-in 調査票 whose 入力 sheet declares 1,000 bytes but decompresses to 1.5 GB (1.5 MB on disk)."""
    dest.write_bytes(lying_zip_bomb(TEMPLATE.read_bytes(), "xl/worksheets/sheet2.xml", 1_500_000_000, 1000, crc))


def _csv_too_large(dest: Path) -> None:
    """紫波郡医師会.csv followed by NUL bytes up to one byte past MAX_CSV_BYTES (sparse: no disk used)."""
    shutil.copy(SHIWA_CSV, dest)
    with open(dest, "r+b") as f:
        f.truncate(MAX_CSV_BYTES + 1)


GENERATED = {"report_zip_bomb_lying_header.xlsx": _lying_header, "report_csv_too_large.csv": _csv_too_large}


def corpus_file(name: str, tmp: Path) -> Path:
    if name not in GENERATED:
        return CORPUS / name
    tmp.mkdir(parents=True, exist_ok=True)
    GENERATED[name](tmp / name)
    return tmp / name


@dataclass
class ReportCase:
    file: str                       # in tests/corpus/
    dest: str                       # where it is dropped: <kind>/<name> (the sender comes from the name)
    base: Path | None               # the clean file it was made from
    findings: set[tuple]            # exact: (rule, sheet, row, severity)
    same: dict[int, int] | str = "all"   # defect row -> base row accepted identically ("all": every base row)
    changed: dict[int, dict] = field(default_factory=dict)   # defect row -> expected values
    status: str = "read"
    message: str | None = None      # a phrase the (single) file-level finding must contain
    companion: Path | None = None   # a clean file read in the same run

    @property
    def kind(self) -> str:
        return self.dest.split("/")[0]


def failed(file: str, dest: str, rule: str, message: str) -> ReportCase:
    return ReportCase(file, dest, None, {(rule, None, None, "error")}, same={}, status="failed", message=message)


REPORT_CASES = [
    # --- encodings ----------------------------------------------------------------------------
    # a file garbled by the wrong encoding says so (the hint), an empty one does not
    failed("report_cp932_read_as_utf8.csv", "ishikai/紫波郡医師会_a.csv", "layout_not_recognised",
           "などの列名を書いてください。文字化けしています"),
    failed("report_utf8_read_as_cp932.csv", "ishikai/紫波郡医師会_b.csv", "layout_not_recognised", "文字化けしています"),
    ReportCase("report_mixed_utf8_cp932.csv", "ishikai/紫波郡医師会_c.csv", SHIWA_CSV,
               SHIWA_FINDINGS | {("encoding_mixed", None, 5, "warning")}),
    ReportCase("report_cp932_with_utf8_bom.csv", "ishikai/紫波郡医師会_d.csv", SHIWA_CSV, SHIWA_FINDINGS),
    ReportCase("report_stray_boms.csv", "ishikai/紫波郡医師会_e.csv", SHIWA_CSV, SHIWA_FINDINGS),
    # --- empty and header only ----------------------------------------------------------------
    failed("report_empty.csv", "ishikai/紫波郡医師会_f.csv", "layout_not_recognised", "見出しが見つかりません"),
    ReportCase("report_header_only.csv", "ishikai/紫波郡医師会_g.csv", None, {("no_rows", None, None, "warning")},
               same={}),
    # --- broken workbooks ---------------------------------------------------------------------
    failed("report_truncated.xlsx", "ishikai/report_truncated.xlsx", "report_unreadable", UNREADABLE),
    failed("report_corrupted.xlsx", "ishikai/report_corrupted.xlsx", "report_unreadable", UNREADABLE),
    failed("report_empty.xlsx", "ishikai/report_empty.xlsx", "report_unreadable", UNREADABLE),
    failed("report_truncated.xls", "ishikai/report_truncated.xls", "report_unreadable", "途中が欠けているか壊れています"),
    failed("report_zip_bomb.xlsx", "ishikai/report_zip_bomb.xlsx", "report_unreadable", "展開後のサイズが大きすぎます"),
    failed("report_zip_bomb_lying_header.xlsx", "ishikai/report_zip_bomb_lying_header.xlsx", "report_unreadable", LIE),
    failed("report_csv_too_large.csv", "ishikai/紫波郡医師会_l.csv", "report_unreadable",
           f"ファイルが大きすぎるため読みませんでした（{MAX_CSV_BYTES + 1:,} バイト。CSVの報告は 20 MB まで）"),
    failed("report_password_encrypted.xlsx", "ishikai/report_password_encrypted.xlsx", "report_unreadable",
           "パスワードが設定されているため開けません"),
    # --- workbook features --------------------------------------------------------------------
    ReportCase("report_1048576_rows.xlsx", "ishikai/report_1048576_rows.xlsx", TEMPLATE,
               TEMPLATE_FINDINGS | {("too_many_rows", "入力", 20009, "warning")}),
    ReportCase("report_merged_across_data.xlsx", "ishikai/report_merged_across_data.xlsx", TEMPLATE,
               TEMPLATE_FINDINGS | {("name_differs", "入力", 16, "warning")},
               changed={9: {f"torikumi_{n}": True for n in range(1, 7)},
                        16: {"inst_code": "0310110309", "reported_name": "盛岡つなぎ温泉病院"}}),
    ReportCase("report_hidden_rows.xlsx", "ishikai/report_hidden_rows.xlsx", TEMPLATE,
               TEMPLATE_FINDINGS | {("hidden_row", "入力", 10, "warning")}),
    ReportCase("report_hidden_sheet.xlsx", "ishikai/report_hidden_sheet.xlsx", TEMPLATE,
               TEMPLATE_FINDINGS | {("hidden_sheet_skipped", "前回提出分", None, "warning")}),
    ReportCase("report_sheet_protected.xlsx", "ishikai/report_sheet_protected.xlsx", TEMPLATE, TEMPLATE_FINDINGS),
    ReportCase("report_formulas_external_link.xlsx", "ishikai/report_formulas_external_link.xlsx", TEMPLATE,
               TEMPLATE_FINDINGS | {("external_link", None, None, "warning")}),
    # --- values -------------------------------------------------------------------------------
    ReportCase("report_control_chars.csv", "ishikai/紫波郡医師会_h.csv", SHIWA_CSV,
               SHIWA_FINDINGS | {("invisible_characters", None, 4, "warning"),
                                 ("invisible_characters", None, 5, "warning")}),
    ReportCase("report_formula_injection.csv", "ishikai/紫波郡医師会_i.csv", None,
               {("institution_not_found", None, r, "error") for r in range(4, 10)}, same={}),
    ReportCase("report_duplicate_rows.csv", "ishikai/紫波郡医師会_j.csv", SHIWA_CSV,
               {("duplicate_report", None, 5, "warning"), ("outside_sender_area", None, 7, "warning")},
               same={4: 4, 5: 4, 6: 5, 7: 6}),
    ReportCase("hub_control_chars.csv", "shichoson/矢巾町_f.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {(rule, None, r, "warning") for r in (6, 7)
                                  for rule in ("invisible_characters", "hub_kind_missing")},
               changed={6: {"name": "矢巾町在宅医療介護連携窓口"}, 7: {"name": "矢巾町地域包括支援センター"}}),
    ReportCase("hub_name_200_chars.csv", "shichoson/矢巾町_a.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {("hub_kind_missing", None, 6, "warning"), ("name_length", None, 7, "error")},
               changed={6: {"name": "矢巾町在宅医療" + "連" * 193}}),
    ReportCase("hub_muni_code_check_digit.csv", "shichoson/矢巾町_b.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {("area_code_check_digit", None, 6, "error")}),
    ReportCase("hub_wareki_impossible.csv", "shichoson/矢巾町_c.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {("start_date_readable", None, r, "error") for r in (6, 7, 8)}),
    ReportCase("hub_date_out_of_range.csv", "shichoson/矢巾町_d.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {("start_date_in_range", None, r, "error") for r in (6, 7, 8)}),
    ReportCase("hub_formula_injection.csv", "shichoson/矢巾町_e.csv", YAHABA_CSV,
               YAHABA_FINDINGS | {("hub_kind_missing", None, r, "warning") for r in range(6, 12)}
               | {("duplicate_report", None, 11, "warning")},
               changed={6 + i: {"name": s, "operator": "=1+1"} for i, s in enumerate(INJECTIONS + ["=1"])}),
    ReportCase("hub_other_prefecture.csv", "shichoson/hub_other_prefecture.csv", None,
               {("sender_unknown", None, None, "warning"), ("area_other_prefecture", None, 3, "error"),
                ("area_other_prefecture", None, 4, "error")}, same={}),
]


@pytest.fixture(scope="module")
def iwate():
    prefs = pipeline.select_prefectures(RAW, ["03"])
    ref = pipeline.load_reference(RAW, prefs)
    links = pipeline.link_prefecture(ref, prefs[0])
    return ref, institutions_with_status(links.institutions, pipeline.pref_notifications(ref, "03"))


def read_reports(tmp: Path, iwate, files: list[tuple[Path, str]]):
    ref, status = iwate
    pref_dir = tmp / "03"
    for kind in ("ishikai", "shichoson"):
        (pref_dir / "reports" / kind).mkdir(parents=True)
    shutil.copy(RAW / "03/areas.csv", pref_dir / "areas.csv")
    for src, dest in files:
        shutil.copy(src, pref_dir / "reports" / dest)
    areas_res, areas = read_areas(pref_dir / "areas.csv", "03", ref.index)
    pr = read_prefecture_reports(pref_dir, "03", ref.index, areas_res, areas, status)
    for f in pr.files:
        assert f.result.balanced(), f.result.accounting()
    return pr


def accepted(pr, kind: str, name: str) -> dict[int, dict]:
    """Accepted rows of one file: source row -> the compared values."""
    df, cols = (pr.institution_reports, INST_COLS) if kind == "ishikai" else (pr.hub_reports, HUB_COLS)
    df = df.filter(pl.col("source_file").str.ends_with("/" + name))
    return {r["source_row"]: {c: r[c] for c in cols} for r in df.iter_rows(named=True)}


def findings_of(pr, name: str) -> set[tuple]:
    rep = next(f for f in pr.files if Path(f.path).name == name)
    return {(f["rule"], f["sheet"], f["row"], f["severity"]) for f in rep.result.findings}


@pytest.mark.parametrize("case", REPORT_CASES, ids=[c.file for c in REPORT_CASES])
def test_report_corpus(tmp_path, iwate, case: ReportCase):
    companion = OLD_XLS if case.kind == "ishikai" else MORIOKA_HUBS
    comp_dest = f"{case.kind}/{companion.name}"
    name = case.dest.split("/")[1]
    pr = read_reports(tmp_path / "bad", iwate, [(corpus_file(case.file, tmp_path / "made"), case.dest),
                                                (companion, comp_dest)])
    rep = next(f for f in pr.files if Path(f.path).name == name)
    assert findings_of(pr, name) == case.findings
    assert rep.result.status == case.status
    if case.message:
        assert len(rep.result.findings) == 1 and case.message in rep.result.findings[0]["message"]
    got = accepted(pr, case.kind, name)
    # every other row of the file exactly as the clean file gives it
    if case.base is not None:
        clean = read_reports(tmp_path / "clean", iwate, [(case.base, case.dest), (companion, comp_dest)])
        base = accepted(clean, case.kind, name)
        same = {r: r for r in base if r not in case.changed} if case.same == "all" else case.same
        for row, base_row in same.items():
            assert got.get(row) == base[base_row], (row, got.get(row), base[base_row])
    else:
        same = case.same
    for row, values in case.changed.items():
        assert {k: got[row][k] for k in values} == values, (row, got.get(row))
    assert set(got) == set(same) | set(case.changed)
    # the clean file read in the same run: untouched
    alone = read_reports(tmp_path / "alone", iwate, [(companion, comp_dest)])
    assert accepted(pr, case.kind, companion.name) == accepted(alone, case.kind, companion.name)
    assert findings_of(pr, companion.name) == findings_of(alone, companion.name)


def test_conflicting_duplicates_from_two_senders(tmp_path, iwate):
    """盛岡市医師会 reports なおしま医院 (紫波町) with 取組 3 only; 紫波郡医師会 with 1,2,4,5: one entry, 取組 merged."""
    pr = read_reports(tmp_path, iwate, [(SHIWA_CSV, "ishikai/紫波郡医師会.csv"),
                                        (CORPUS / "report_conflict_second_sender.csv", "ishikai/盛岡市医師会_k.csv")])
    assert findings_of(pr, "盛岡市医師会_k.csv") == {("outside_sender_area", None, 4, "warning")}
    assert findings_of(pr, "紫波郡医師会.csv") == SHIWA_FINDINGS | {("duplicate_report", None, 4, "warning")}
    dup = next(f for f in pr.files[1].result.findings if f["rule"] == "duplicate_report")
    assert "盛岡市医師会" in dup["message"] and "取組の○が異なる" in dup["message"]
    rows = pr.institution_reports.filter(pl.col("reported_name") == "なおしま医院")
    assert rows.height == 2 and rows["is_first"].to_list() == [True, False]
    merged = rows.select([pl.col(f"torikumi_{n}").any() for n in range(1, 7)]).row(0)
    assert merged == (True, True, True, True, True, False)
    # every row of each file as that file gives it read alone
    for src, dest in ((SHIWA_CSV, "ishikai/紫波郡医師会.csv"),
                      (CORPUS / "report_conflict_second_sender.csv", "ishikai/盛岡市医師会_k.csv")):
        name = dest.split("/")[1]
        alone = read_reports(tmp_path / name, iwate, [(src, dest)])
        assert accepted(pr, "ishikai", name) == accepted(alone, "ishikai", name)
        assert len(accepted(alone, "ishikai", name)) == (3 if name.startswith("紫波郡") else 1)


# --- 名簿 ------------------------------------------------------------------------------------------
MEIBO_CASES = [
    ("meibo_truncated.xlsx", "workbook_unreadable", UNREADABLE),
    ("meibo_truncated.xls", "workbook_unreadable", "途中が欠けているか壊れています"),
    ("meibo_password_encrypted.xlsx", "workbook_unreadable", "パスワードが設定されているため開けません"),
    ("meibo_zip_traversal_member.xlsx", "workbook_unreadable", "zipの中のファイル名が不正です"),
    ("meibo_empty.xlsx", "header_not_found", "名簿の見出し行（医療機関番号・受理記号）がどのシートにも見つかりません"),
]


@pytest.fixture(scope="module")
def meibo_base(iwate):
    ref, _ = iwate
    res = read_meibo(CORPUS / "meibo_base.xlsx", {"03"}, ref.index.pref_code_by_name)
    assert res.findings == [] and res.accepted.height == 60 and res.balanced()
    return res.accepted.drop("source_file")


@pytest.mark.parametrize("name,rule,message", MEIBO_CASES, ids=[c[0] for c in MEIBO_CASES])
def test_meibo_refused(iwate, name, rule, message):
    ref, _ = iwate
    res = read_meibo(CORPUS / name, {"03"}, ref.index.pref_code_by_name)
    assert res.status == "failed" and res.accepted.height == 0 and res.balanced()
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [(rule, None, "error")]
    assert message in res.findings[0]["message"]


def test_meibo_header_only(iwate):
    """Title rows and header, no facility: read, nothing accepted, nothing rejected, and a no_rows warning on the
    file, as the 医療情報ネット and report readers give."""
    ref, _ = iwate
    res = read_meibo(CORPUS / "meibo_header_only.xlsx", {"03"}, ref.index.pref_code_by_name)
    assert res.status == "read" and res.balanced() and res.rows_in == 0 and res.accepted.height == 0
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("no_rows", None, "warning")]


def test_meibo_impossible_wareki(iwate, meibo_base):
    ref, _ = iwate
    res = read_meibo(CORPUS / "meibo_wareki_impossible.xlsx", {"03"}, ref.index.pref_code_by_name)
    assert res.balanced()
    assert {(f["rule"], f["sheet"], f["row"], f["severity"]) for f in res.findings} == {
        ("date_format", "岩手県", 10, "warning"), ("date_format", "岩手県", 20, "warning")}
    got = res.accepted.drop("source_file")
    bad = pl.col("source_row").is_in([10, 20])
    assert got.filter(bad)["start_date"].null_count() == 2
    assert got.filter(~bad).equals(meibo_base.filter(~bad))          # every other row as in the clean 名簿
    assert got.filter(bad).drop("start_date").equals(meibo_base.filter(bad).drop("start_date"))


def test_meibo_dates_out_of_range(iwate, meibo_base):
    """Readable dates no 算定開始 can have (9999/12/31, 1900/4/1): a warning each, the row kept, no start date."""
    ref, _ = iwate
    res = read_meibo(CORPUS / "meibo_date_out_of_range.xlsx", {"03"}, ref.index.pref_code_by_name)
    assert res.balanced()
    assert [(f["rule"], f["sheet"], f["row"], f["severity"], f["value"]) for f in res.findings] == [
        ("date_out_of_range", "岩手県", 10, "warning", "9999/12/31"),
        ("date_out_of_range", "岩手県", 20, "warning", "1900/4/1")]
    got = res.accepted.drop("source_file")
    bad = pl.col("source_row").is_in([10, 20])
    assert got.filter(bad)["start_date"].null_count() == 2
    assert got.filter(~bad).equals(meibo_base.filter(~bad))
    assert got.filter(bad).drop("start_date").equals(meibo_base.filter(bad).drop("start_date"))


def test_meibo_duplicate_row(iwate, meibo_base):
    """A facility's first row pasted again under the table (row 65): rejected as a copy of row 5; the rest as in
    the clean 名簿."""
    ref, _ = iwate
    res = read_meibo(CORPUS / "meibo_duplicate_rows.xlsx", {"03"}, ref.index.pref_code_by_name)
    assert res.balanced() and res.rows_in == 61 and res.rejected == 1
    assert [(f["rule"], f["sheet"], f["row"], f["severity"]) for f in res.findings] == [
        ("duplicate_row", "岩手県", 65, "error")]
    assert "5行目と同じ行" in res.findings[0]["message"]
    assert res.accepted.drop("source_file").equals(meibo_base)


# --- 医療情報ネット, code list --------------------------------------------------------------------------
FACILITY_CASES = [
    ("facility_zip_slip.csv.zip", "zip_corrupt", "zipの中のファイル名が不正です"),
    ("facility_zip_10gb.csv.zip", "zip_corrupt", "展開後のサイズが大きすぎます（10,737,418,240 バイト）"),
    ("facility_truncated.csv.zip", "zip_corrupt", "zipファイルが壊れているか不正です"),
    ("facility_corrupt_member.csv.zip", "zip_corrupt", "zipファイルが壊れているか不正です"),
    ("facility_empty.csv", "empty_file", "ファイルが空です"),
]
FACILITY_NAME = "01-1_hospital_facility_info_20250601.csv"


def facility_read(tmp_path: Path, corpus_name: str):
    dest = tmp_path / (FACILITY_NAME + (".zip" if corpus_name.endswith(".zip") else ""))
    shutil.copy(CORPUS / corpus_name, dest)
    res = read_facility_file(dest, {"03", "39"})
    assert res.balanced(), res.accounting()
    return res


@pytest.fixture(scope="module")
def hospitals():
    return read_facility_file(HOSPITALS, {"03", "39"}).accepted.drop("source_file")


@pytest.mark.parametrize("name,rule,message", FACILITY_CASES, ids=[c[0] for c in FACILITY_CASES])
def test_facility_refused(tmp_path, name, rule, message):
    res = facility_read(tmp_path, name)
    assert res.status == "failed" and res.accepted.height == 0
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [(rule, None, "error")]
    assert message in res.findings[0]["message"]


def test_facility_zip_10gb_refused_before_decompressing(tmp_path, monkeypatch):
    import annex.facility_files as ff
    monkeypatch.setattr(ff, "iter_zip_member", lambda *a, **k: pytest.fail("decompressed a 10 GB member"))
    assert facility_read(tmp_path, "facility_zip_10gb.csv.zip").status == "failed"


def test_facility_zip_bzip2_member_refused_unopened(tmp_path, monkeypatch):
    """A facility zip whose CSV member is bzip2-compressed (no publisher ships one): zipfile would decompress it
    a whole compressed MiB at a time (337 bytes of bzip2 took 870 MB), so it is refused before it is opened."""
    import zipfile

    import annex.facility_files as ff
    dest = tmp_path / (FACILITY_NAME + ".zip")
    with zipfile.ZipFile(HOSPITALS) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr(FACILITY_NAME, src.read(src.namelist()[0]))
    monkeypatch.setattr(ff, "iter_zip_member", lambda *a, **k: pytest.fail("opened a bzip2 member"))
    res = read_facility_file(dest, {"03", "39"})
    assert res.status == "failed" and res.accepted.height == 0 and res.balanced()
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("zip_corrupt", None, "error")]
    assert "圧縮方式" in res.findings[0]["message"]


def test_facility_header_only(tmp_path):
    res = facility_read(tmp_path, "facility_header_only.csv")
    assert res.status == "read" and res.rows_in == 0
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("no_rows", None, "warning")]


def test_facility_mixed_encoding(tmp_path, hospitals):
    res = facility_read(tmp_path, "facility_mixed_encoding.csv")
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("encoding_mixed", 10, "warning")]
    assert res.accepted.drop("source_file").equals(hospitals)        # the CP932 line read right, too


def test_facility_duplicate_rows(tmp_path, hospitals):
    res = facility_read(tmp_path, "facility_duplicate_rows.csv")
    assert {(f["rule"], f["row"], f["severity"]) for f in res.findings} == {
        ("duplicate_id", 5, "error"), ("duplicate_id", 6, "error")}
    # line 5 repeats line 4; line 6 is the base's line 5 under line 3's ID: both refused, first rows kept
    got = res.accepted.drop("source_file", "source_row")
    want = hospitals.filter(pl.col("source_row") != 5).drop("source_row")
    assert got.equals(want)


def test_code_list_empty():
    res = read_code_list(CORPUS / "codelist_empty.csv", {"03"})
    assert res.balanced() and res.accepted.height == 0
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("empty_file", None, "warning")]


# --- the whole pipeline with bad files dropped in -----------------------------------------------------
# two unknown senders' reports named with 80 kanji (244 bytes), alike in their first 79: their return workbooks
# (03_提出元不明_<name>.xlsx, 264 bytes) made the whole refresh fail with Errno 36 (File name too long)
LONG_NAMES = ["在宅医療" * 20, "在宅医療" * 19 + "在宅医院"]
PIPELINE_DROPS = {  # corpus file -> where in raw/; expected (rule, severity) findings of that file
    "hub_formula_injection.csv": ("03/reports/shichoson/矢巾町_hub_formula_injection.csv", None),
    "report_long_file_name.csv": (f"03/reports/ishikai/{LONG_NAMES[0]}.csv",
                                  {("sender_unknown", "warning"), ("no_rows", "warning")}),
    "report_formula_injection.csv": ("03/reports/ishikai/紫波郡医師会_report_formula_injection.csv",
                                     {("institution_not_found", "error")}),
    "report_truncated.xls": ("03/reports/ishikai/report_truncated.xls", {("report_unreadable", "error")}),
    "report_corrupted.xlsx": ("03/reports/ishikai/report_corrupted.xlsx", {("report_unreadable", "error")}),
    "report_password_encrypted.xlsx": ("39/reports/ishikai/report_password_encrypted.xlsx",
                                       {("report_unreadable", "error")}),
    "meibo_truncated.xls": ("reference/kouseikyoku/meibo_truncated.xls", {("workbook_unreadable", "error")}),
    "facility_corrupt_member.csv.zip": ("reference/iryo_joho_net/03-1_dental_facility_info_20250601.csv.zip",
                                        {("zip_corrupt", "error")}),
    "codelist_empty.csv": ("reference/kouseikyoku_codes/codelist_empty.csv", {("empty_file", "warning")}),
}


def test_pipeline_with_hostile_files(raw_copy, tmp_path, sample_run):
    clean_db, clean = sample_run
    for name, (dest, _) in PIPELINE_DROPS.items():
        shutil.copy(CORPUS / name, raw_copy / dest)
    twin = f"03/reports/ishikai/{LONG_NAMES[1]}.csv"
    shutil.copy(CORPUS / "report_long_file_name.csv", raw_copy / twin)
    out = tmp_path / "out"
    summary = pipeline.run(raw_copy, out)                            # completes
    for key in ("facilities", "institutions", "notifications", "facility_links", "link_review",
                "institution_reports"):
        assert summary[key] == clean[key], key
    assert summary["hub_reports"] == clean["hub_reports"] + 7         # the base hub and six injection hubs
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    try:
        found = set(con.execute("SELECT source_file, rule, severity FROM findings").fetchall())
        expected = dict(PIPELINE_DROPS.values()) | {twin: PIPELINE_DROPS["report_long_file_name.csv"][1]}
        for dest, rules in expected.items():
            mine = {(r, s) for f, r, s in found if f == dest}
            assert rules is None or mine == rules, (dest, mine)
        files = dict(con.execute("SELECT source_file, status FROM source_files").fetchall())
        assert all(files[d] == "failed" for n, (d, r) in PIPELINE_DROPS.items() if r and ("error" in {s for _, s in r})
                   and n != "report_formula_injection.csv")
        hubs = {r[0] for r in con.execute("SELECT name FROM annex_hubs").fetchall()}
        assert set(INJECTIONS) <= hubs
        operators = {r[0] for r in con.execute("SELECT operator FROM annex_hubs").fetchall()}
        assert "=1+1" in operators
        clean_con = duckdb.connect(str(clean_db), read_only=True)
        try:   # the links are the same links, not only as many
            q = "SELECT inst_code, facility_id FROM facility_links ORDER BY ALL"
            assert con.execute(q).fetchall() == clean_con.execute(q).fetchall()
        finally:
            clean_con.close()
    finally:
        con.close()
    # formula-like text arrives as text in the annex workbook and in the return workbook
    annex_cells = _cells(out / "03_岩手県_在宅医療_別表.xlsx")
    for s in INJECTIONS + ["=1+1"]:
        assert annex_cells.get(s) == {"s"}, (s, annex_cells.get(s))
    return_cells = _cells(out / "returns" / "03_紫波郡医師会.xlsx")
    for s in INJECTIONS:
        assert return_cells.get(s) == {"s"}, (s, return_cells.get(s))
    assert not any("f" in kinds for kinds in {**annex_cells, **return_cells}.values())
    # a return workbook for each long-named report: a name of at most 200 bytes, each naming its own file
    unknown = sorted((out / "returns").glob("03_提出元不明_在宅医*.xlsx"))
    assert all(len(p.name.encode()) <= 200 for p in unknown), unknown
    label = "ご提出いただいたファイル: "
    named = sorted([s.removeprefix(label) for s in _cells(p) if s.startswith(label)] for p in unknown)
    assert named == sorted([f"{n}.csv"] for n in LONG_NAMES)       # one each, neither overwritten


def _cells(path: Path) -> dict[str, set[str]]:
    """Every cell value as text -> the data types it was stored with ('s' text, 'f' formula, …)."""
    wb = openpyxl.load_workbook(path)
    out: dict[str, set[str]] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    out.setdefault(str(c.value), set()).add(c.data_type)
    return out


@pytest.mark.parametrize("crc", ["wrong", "of_the_declared_bytes"])
def test_lying_zip_header_is_not_decompressed(tmp_path, crc):
    """report_zip_bomb_lying_header.xlsx: the 入力 sheet's headers declare 1,000 bytes (which pass every size
    check) but it decompresses to 1.5 GB. Refused from what decompressing it READ_CHUNK at a time shows, and
    nothing near its size is ever held: z.read() took ~2.1 GB here before its CRC error. With the CRC of the
    first 1,000 bytes, zipfile (which stops at the declared size) sees nothing wrong at all."""
    path = tmp_path / "report_zip_bomb_lying_header.xlsx"
    _lying_header(path, 0 if crc == "wrong" else zlib.crc32(_sheet_prefix(1000)))
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    try:
        rep = read_report(path, REPORT_DIRS["ishikai"], "03")
        # the inspection of hidden rows and external links alone (it reads the sheet itself): bounded too
        with zipfile.ZipFile(path) as z, open(path, "rb") as f, pytest.raises(workbooks.WorkbookError, match=LIE):
            workbooks._inspect(workbooks._Parts(f, z.infolist()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(f["rule"], f["sheet"], f["row"], f["severity"]) for f in rep.result.findings] == [
        ("report_unreadable", None, None, "error")]
    assert rep.result.status == "failed" and LIE in rep.result.findings[0]["message"]
    assert peak < 16 * 1024**2, peak


def test_bytes_after_a_members_deflate_stream_do_not_hang_the_check(tmp_path):
    """A member whose compressed bytes go on after its deflate stream has ended (junk a broken tool appended,
    counted in its compressed size): when the stream ended in a call whose output was cut at READ_CHUNK, zlib
    handed the junk back as unused input on every later call, so the check decompressed nothing, forever (the
    sheet is padded to 3 MB of spaces after its root tag for that). The check stops where the stream ends; the
    report reads as before."""
    member = "xl/worksheets/sheet2.xml"
    original = zipfile.ZipFile(TEMPLATE).read(member)
    at = original.index(b">", original.index(b"<worksheet")) + 1
    xml = original[:at] + b" " * 3_000_000 + original[at:]
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = comp.compress(xml) + comp.flush() + b"junk after the stream" * 4
    path = tmp_path / "report_junk_after_deflate.xlsx"
    path.write_bytes(rezip(TEMPLATE.read_bytes(), raw={member: (data, len(xml), zlib.crc32(xml))}))
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        parts = workbooks._Parts(f, z.infolist())
        blocks = list(itertools.islice(parts.chunks(member), 1000))   # the old loop: b"" blocks without end
    assert b"".join(blocks) == xml and len(blocks) < 1000
    rep = read_report(path, REPORT_DIRS["ishikai"], "03")
    assert rep.result.status != "failed" and rep.result.rows_in > 0


def _sheet_prefix(n: int) -> bytes:
    """The first n bytes of the lying sheet (the root tag, then spaces), for a CRC that matches them."""
    xml = zipfile.ZipFile(TEMPLATE).read("xl/worksheets/sheet2.xml")
    at = xml.index(b"<worksheet")
    at = xml.index(b">", at) + 1
    return (xml[:at] + b" " * n)[:n]


def test_meibo_lying_zip_header_refused_before_fastexcel(iwate, tmp_path, monkeypatch):
    """The same lie in a 名簿: fastexcel believes the header and decompressed the whole 1.5 GB (1.5 GB of memory),
    then read the 名簿 as if nothing were wrong. Now refused before fastexcel or calamine open it."""
    ref, _ = iwate
    path = tmp_path / "meibo_zip_bomb_lying_header.xlsx"
    path.write_bytes(lying_zip_bomb((CORPUS / "meibo_base.xlsx").read_bytes(), "xl/worksheets/sheet1.xml",
                                    1_500_000_000))
    import fastexcel
    monkeypatch.setattr(fastexcel, "read_excel", lambda *a, **k: pytest.fail("fastexcel opened the bomb"))
    res = read_meibo(path, {"03"}, ref.index.pref_code_by_name)
    assert res.status == "failed" and res.accepted.height == 0 and res.balanced()
    assert [(f["rule"], f["row"], f["severity"]) for f in res.findings] == [("workbook_unreadable", None, "error")]
    assert "xl/worksheets/sheet1.xml は書かれているサイズ（1,000 バイト）より大きく展開されます" in res.findings[0]["message"]


# --- file names made from what senders write -----------------------------------------------------------------
def test_safe_file_name_limits_bytes_and_keeps_the_extension():
    long = "03_提出元不明_" + "在宅医療" * 20 + ".xlsx"            # 264 bytes: Errno 36 on ext4 before
    name = safe_file_name(long)
    assert len(long.encode()) == 264 and MAX_NAME_BYTES - 3 < len(name.encode()) <= MAX_NAME_BYTES
    assert name.endswith(".xlsx")
    assert name.startswith("03_提出元不明_在宅医療") and "~" in name
    assert len(safe_file_name("03_" + "医" * 300).encode()) <= MAX_NAME_BYTES
    assert len(safe_file_name("a" * 500 + ".csv").encode()) <= MAX_NAME_BYTES
    # a name that needs nothing is left as it is; a cut never splits a character
    assert safe_file_name("03_紫波郡医師会.xlsx") == "03_紫波郡医師会.xlsx"
    assert safe_file_name("紫波郡医師会") == "紫波郡医師会"
    for n in range(190, 260):
        out = safe_file_name("x" * (n % 3) + "医" * n + ".xlsx")
        assert len(out.encode()) <= MAX_NAME_BYTES and out.endswith(".xlsx")


def test_safe_file_name_keeps_different_names_apart():
    names = ["03_a:b.xlsx", "03_a?b.xlsx", "03_a_b.xlsx", "03_a/b.xlsx", "03_a\tb.xlsx",
             "03_" + "在宅医療" * 20 + ".xlsx", "03_" + "在宅医療" * 19 + "在宅医院.xlsx",
             "03_" + "在宅医療" * 30 + ".xlsx", ".xlsx", "..xlsx", " .xlsx", "03_x.xlsx", "03_x.xlsx\n"]
    out = [safe_file_name(n) for n in names]
    assert len(set(out)) == len(names), out
    for n, o in zip(names, out):
        assert not set('/\\:*?"<>|\t\n') & set(o) and not o.startswith((".", " ")), (n, o)
    assert out[2] == "03_a_b.xlsx" and out[0].startswith("03_a_b~") and out[0].endswith(".xlsx")
    assert safe_file_name("03_a:b.xlsx") == out[0]                   # the same name every run


def test_return_workbooks_apart_for_names_differing_in_case(tmp_path, iwate):
    """Two unknown senders whose file names differ only in case: two return workbooks whose names differ in more
    than case (a file system that ignores case, e.g. a Windows share, would make them one)."""
    ref, _ = iwate
    header_only = CORPUS / "report_header_only.csv"
    pr = read_reports(tmp_path / "raw", iwate, [(header_only, "ishikai/Report.csv"),
                                                (header_only, "ishikai/report.csv")])
    tmp = returns.new_folder(tmp_path / "out")
    written = returns.write_into(tmp, [pr], ref.index, {"03": "岩手県"})
    names = sorted(p.name for p in written)
    assert names == ["03_提出元不明_Report.xlsx", "03_提出元不明_report_2.xlsx"]
    assert sorted(p.name for p in tmp.iterdir()) == names


def test_garbled_hint_only_for_garbled_files():
    """The 文字化け hint is given for text that went through the wrong encoding, not for any unrecognised file."""
    from annex.report_checks import REPORT_DIRS
    from annex.reports import read_report
    kind = REPORT_DIRS["ishikai"]
    for path in (CORPUS / "report_empty.csv", RAW / "03/reports/ishikai/宮古医師会_送付状.xlsx"):
        rep = read_report(path, kind, "03")
        assert rep.result.findings[0]["rule"] == "layout_not_recognised"
        assert "文字化け" not in rep.result.findings[0]["message"], path.name
    for name in ("report_cp932_read_as_utf8.csv", "report_utf8_read_as_cp932.csv"):
        assert "文字化けしています" in read_report(CORPUS / name, kind, "03").result.findings[0]["message"]
