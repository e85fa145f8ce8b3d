"""Render the shipped sample reports under raw/<pref>/reports/ (synthetic: real reports are not public).

They name real institutions (from the shipped 厚生局 名簿) and real municipalities, in the layouts officials
really send back: our own 調査票 filled in (made with `annex templates`, then ticked here with openpyxl as a
sender would in Excel), and foreign layouts — an old .xls with title rows and a merged two-row header, a CP932
CSV with aliases and 取組 as numbers, a UTF-8 CSV with BOM. Some are deliberately messy so the demo shows
findings; every defect is named in a comment next to the line that makes it.

Run from the project root after changing the reference data or the templates (needs the test extras:
openpyxl, xlwt):  python raw/render_reports.py
"""
from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

import openpyxl
import polars as pl
import xlsxwriter
import xlwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annex import pipeline  # noqa: E402
from annex.areas import read_areas  # noqa: E402
from annex.text import strip_corporate  # noqa: E402
from annex.reference import institutions  # noqa: E402
from annex.status import institutions_with_status  # noqa: E402
from annex.templates import build_templates  # noqa: E402

RAW = ROOT / "raw"
CIRCLED = "①②③④⑤⑥"


def shien_institutions(ref, pref_code: str) -> pl.DataFrame:
    notes = ref.notifications().filter(pl.col("pref_code") == pref_code)
    inst, _ = institutions(notes, ref.index, ref.code_list().filter(pl.col("pref_code") == pref_code))
    return (institutions_with_status(inst, notes).filter(pl.col("shien_kind").is_not_null())
            .sort("municipality_code", "shien_kind", "inst_code"))


def in_munis(df: pl.DataFrame, codes: list[str]) -> list[dict]:
    return df.filter(pl.col("municipality_code").is_in(codes)).to_dicts()


def fill_template(src: Path, dst: Path, sender_fields: dict[str, str], ticks: dict[int, dict]) -> None:
    """Tick a pre-filled or blank 調査票 as a sender would: ticks maps Excel row -> {header label: value}."""
    wb = openpyxl.load_workbook(src)
    ws = wb["入力"]
    header = {ws.cell(8, c).value: c for c in range(1, ws.max_column + 1)}
    for r in range(2, 7):
        label = ws.cell(r, 1).value
        if label in sender_fields:
            ws.cell(r, 2).value = sender_fields[label]
    for row, values in ticks.items():
        for label, v in values.items():
            ws.cell(row, header[label]).value = v
    dst.parent.mkdir(parents=True, exist_ok=True)
    wb.save(dst)


def prefilled_rows(path: Path) -> dict[str, int]:
    """inst_code -> Excel row in a pre-filled template."""
    ws = openpyxl.load_workbook(path)["入力"]
    header = {ws.cell(8, c).value: c for c in range(1, ws.max_column + 1)}
    out = {}
    for r in range(9, ws.max_row + 1):
        code = ws.cell(r, header["医療機関コード"]).value
        if code:
            out[str(code)] = r
    return out


def write_csv(path: Path, rows: list[list], encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)


# --- 岩手県 (03) -----------------------------------------------------------------------------------
def render_03(ref, templates: Path) -> None:
    base = RAW / "03" / "reports"
    shien = shien_institutions(ref, "03")
    tdir = templates / "03_岩手県"

    # 盛岡市医師会: our pre-filled 調査票, ticked. Clean except where noted.
    src = tdir / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx"
    rows = prefilled_rows(src)
    morioka = in_munis(shien, ["032018"])
    ticks = {}
    for k, inst in enumerate(morioka[:14]):
        r = rows[inst["inst_code"]]
        t = {"報告（○）": "○"}
        for n in range(1, 7):
            if (k + n) % 3 != 0 and not (n == 6 and inst["shien_kind"] == "支援診"):
                t[f"取組{CIRCLED[n - 1]}"] = "○"
        ticks[r] = t
    ticks[rows[morioka[3]["inst_code"]]]["取組②"] = "△"  # defect: △ is neither ○ nor blank -> error
    ticks[rows[morioka[5]["inst_code"]]]["種別"] = "支援診1（機能強化型・単独型）"  # defect: differs from 名簿 -> warning
    r_extra = max(rows.values()) + 1
    ticks[r_extra] = {"報告（○）": "○", "医療機関名": "盛岡みらい在宅クリニック", "所在市町村": "盛岡市",  # defect: not in 名簿
                      "取組①": "○"}
    ticks[r_extra + 1] = {"報告（○）": "○", "医療機関名": morioka[0]["name"], "取組③": "○",  # defect: listed twice
                          "備考": '=HYPERLINK("http://example.invalid","詳細")'}          # defect: formula-like text
    fill_template(src, base / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx",
                  {"医師会名": "一般社団法人盛岡市医師会", "所属": "事務局", "記入者": "盛岡 花子",
                   "電話": "+81-19-000-0000", "メール": "jimu@example.invalid"}, ticks)

    # 岩手西北医師会: an old .xls of its own making. Title rows, a two-row header with 取組事項 merged over
    # ①..⑥, the municipality merged down over its institutions, a note row under the table. Clean.
    areas = read_areas(RAW / "03" / "areas.csv", "03", ref.index)[1]
    seihoku = in_munis(shien, areas.munis_of_ishikai("岩手西北医師会"))
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("報告")
    ws.write(0, 0, "令和8年度 在宅医療において積極的役割を担う医療機関について（報告）")
    ws.write(1, 0, "医師会名：岩手西北医師会")
    ws.write(2, 0, "担当：西北 太郎　TEL 019-000-0000")
    ws.write_merge(4, 5, 0, 0, "市町村")
    ws.write_merge(4, 5, 1, 1, "医療機関名称")
    ws.write_merge(4, 5, 2, 2, "届出区分")
    ws.write_merge(4, 4, 3, 8, "取組事項")
    for n in range(6):
        ws.write(5, 3 + n, CIRCLED[n])
    r = 6
    by_muni: dict[str, list[dict]] = {}
    for inst in seihoku:
        by_muni.setdefault(inst["municipality_code"], []).append(inst)
    for code, insts in by_muni.items():
        name = ref.index.name_of(code)
        if len(insts) > 1:
            ws.write_merge(r, r + len(insts) - 1, 0, 0, name)
        else:
            ws.write(r, 0, name)
        for inst in insts:
            ws.write(r, 1, inst["name"])
            ws.write(r, 2, inst["shien_symbol"].translate(str.maketrans("123", "１２３")))  # full-width as in 名簿
            for n in range(6):
                if n in (0, 1, 3, 4):
                    ws.write(r, 3 + n, "〇")
            r += 1
    ws.write(r + 1, 0, "※ 取組事項の番号は県の調査票記入要領による。")
    (base / "ishikai").mkdir(parents=True, exist_ok=True)
    wb.save(str(base / "ishikai" / "岩手西北医師会_報告.xls"))

    # 紫波郡医師会: a CP932 CSV with a title line, aliases, and 取組 written as numbers in one column.
    rows_csv = [["紫波郡医師会 積極的役割を担う医療機関 報告"], [],
                ["番号", "医療機関の名称", "市町村名", "種別", "取組事項（番号）", "備考"]]
    for k, inst in enumerate(in_munis(shien, areas.munis_of_ishikai("紫波郡医師会"))):
        rows_csv.append([str(k + 1), inst["name"], ref.index.name_of(inst["municipality_code"]),
                         inst["shien_symbol"], "1,2,4,5", ""])
    other = in_munis(shien, ["032018"])[20]
    rows_csv.append([str(len(rows_csv) - 2), other["name"], "盛岡市", other["shien_symbol"],  # defect: outside 紫波郡
                     "1・2", "紫波町の患者を多く受け持つため"])
    rows_csv.append(["", "", "", "", "", ""])
    rows_csv.append(["", "（以下余白）", "", "", "", ""])
    write_csv(base / "ishikai" / "紫波郡医師会.csv", rows_csv, "cp932")

    # 奥州医師会: a messy foreign .xlsx: code with a wrong check digit, 取組 number out of range, a row for a
    # clinic reported with the 7-digit 医療機関番号 only.
    oshu = in_munis(shien, areas.munis_of_ishikai("奥州医師会"))
    path = base / "ishikai" / "奥州医師会_積極的役割.xlsx"
    wb2 = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    ws2 = wb2.add_worksheet("様式1")
    ws2.write_string(0, 0, "積極的役割を担う医療機関一覧（奥州医師会）")
    header = ["No", "医療機関コード", "医療機関名", "所在地", "取組事項", "連絡先"]
    for c, h in enumerate(header):
        ws2.write_string(2, c, h)
    line = 3
    for k, inst in enumerate(oshu):
        code = inst["inst_code"]
        if k == 0:
            code = code[:9] + str((int(code[9]) + 1) % 10)  # defect: wrong check digit -> error
        elif k == 1:
            code = f"{code[3:5]},{code[5:9]},{code[9]}"      # the 名簿's own 7-digit form: accepted
        ws2.write_number(line, 0, k + 1)
        ws2.write_string(line, 1, code)
        ws2.write_string(line, 2, inst["name"])
        ws2.write_string(line, 3, inst["address"] or "")
        ws2.write_string(line, 4, "1,2,7" if k == 2 else "①②⑤")  # defect (k == 2): 取組 7 does not exist
        ws2.write_string(line, 5, "0197-00-0000")
        line += 1
    # contact lines under the table, as officials add them (personal data: for the return letter only, never
    # data rows — before they were read as institutions, their names and numbers landing in the findings)
    for k, cells in enumerate([["", "", "記入者：奥州 五郎"],              # label：value in one cell
                               ["担当者", "奥州 五郎"],                    # label, value in the next cell
                               ["電話", "0197-00-0001"],
                               ["メールアドレス", "oshu@example.invalid"],
                               ["", "", "TEL 0197-00-0002"]]):            # label and value with a space
        for c, v in enumerate(cells):
            if v:
                ws2.write_string(line + 1 + k, c, v)
    wb2.close()

    # 宮古医師会: sent a cover letter instead of the table -> one file-level finding, the run goes on.
    path = base / "ishikai" / "宮古医師会_送付状.xlsx"
    wb3 = xlsxwriter.Workbook(str(path))
    ws3 = wb3.add_worksheet("送付状")
    for i, t in enumerate(["岩手県保健福祉部長 様", "宮古医師会長", "在宅医療に係る調査について（回答）",
                           "標記について、別添のとおり回答します。", "（別添は追って送付します）"]):
        ws3.write_string(i * 2, 0, t)
    wb3.close()

    # 市町村: 紫波町 and 矢巾町 both report 紫波郡地域包括支援センター (Iwate's 参考１): one hub, two reports.
    shiwa_t = tdir / "shichoson" / "紫波町_調査票.xlsx"
    fill_template(shiwa_t, base / "shichoson" / "紫波町_調査票.xlsx",
                  {"市町村名": "紫波町", "所属": "長寿健康課", "記入者": "紫波 次郎", "電話": "019-000-0001"},
                  {9: {"拠点の名称": "紫波郡地域包括支援センター", "拠点の種別": "地域包括支援センター",
                       "事業区域（市町村）": "紫波町・矢巾町", "運営主体": "（一社）紫波郡医師会",
                       "運営主体の種別": "地域医師会等関係団体", "開始時期": "H28年度～",
                       "推進事業の実施主体と同一（○）": "○", **{f"取組{CIRCLED[n]}": "○" for n in range(5)}}})
    write_csv(base / "shichoson" / "矢巾町.csv", [
        ["市町村名", "矢巾町"],
        ["担当者", "矢巾 三郎"],
        [],
        ["拠点名", "区域", "運営主体名", "運営主体の種別", "開始年度", "取組①", "取組②", "取組③", "取組④", "取組⑤"],
        ["紫波郡地域包括支援センター", "紫波郡紫波町、紫波郡矢巾町", "一般社団法人紫波郡医師会", "医師会", "平成28年4月",
         "1", "1", "1", "1", ""],
    ], "utf-8-sig")
    # 盛岡市: our blank 調査票 with two hubs. Clean.
    fill_template(tdir / "shichoson" / "盛岡市_調査票.xlsx", base / "shichoson" / "盛岡市_調査票.xlsx",
                  {"市町村名": "盛岡市", "所属": "長寿社会課", "記入者": "岩手 一郎", "メール": "a@example.invalid"},
                  {9: {"拠点の名称": "盛岡市在宅医療介護連携支援センター", "拠点の種別": "地域医師会等関係団体",
                       "事業区域（市町村）": "盛岡市", "運営主体": "一般社団法人盛岡市医師会",
                       "運営主体の種別": "地域医師会等関係団体", "開始時期": "平成30年4月1日",
                       "推進事業の実施主体と同一（○）": "○", **{f"取組{CIRCLED[n]}": "○" for n in range(5)}},
                   10: {"拠点の名称": "盛岡市保健所", "拠点の種別": "保健所", "事業区域（市町村）": "盛岡市",
                        "運営主体": "盛岡市", "運営主体の種別": "市町村", "開始時期": "R6.4",
                        "取組④": "○", "取組⑤": "○"}})
    # 八幡平市: a messy one. An unknown municipality in 事業区域, a 運営主体の種別 the 指針 does not name, an
    # impossible 和暦 date.
    fill_template(tdir / "shichoson" / "八幡平市_調査票.xlsx", base / "shichoson" / "八幡平市_調査票.xlsx",
                  {"市町村名": "八幡平市", "記入者": "八幡 四郎"},
                  {9: {"拠点の名称": "八幡平市在宅医療連携拠点", "拠点の種別": "市町村",
                       "事業区域（市町村）": "八幡平市・盛岡町",                      # defect: 盛岡町 does not exist
                       "運営主体": "八幡平市", "運営主体の種別": "市町村", "開始時期": "令和2年4月",
                       "取組①": "○", "取組②": "○"},
                   10: {"拠点の名称": "はちまんたい訪問看護ステーション", "拠点の種別": "訪問看護事業所",
                        "事業区域（市町村）": "八幡平市", "運営主体": "NPO法人はちまんたい",
                        "運営主体の種別": "NPO法人",                                    # defect: not a kind the 指針 names
                        "開始時期": "令和5年4月", "取組③": "○"},
                   11: {"拠点の名称": "西根地域包括支援センター", "拠点の種別": "地域包括支援センター",
                        "事業区域（市町村）": "八幡平市", "運営主体": "八幡平市", "運営主体の種別": "市町村",
                        "開始時期": "令和0年4月",                                        # defect: 令和0年 does not exist
                        "取組⑤": "○"}})


# --- 高知県 (39) -----------------------------------------------------------------------------------
def render_39(ref, templates: Path) -> None:
    base = RAW / "39" / "reports"
    shien = shien_institutions(ref, "39")
    tdir = templates / "39_高知県"

    # 高知市医師会: our pre-filled 調査票. Names in the 名簿 carry 法人格 (医療法人 岡村会 岡村病院). Clean.
    src = tdir / "ishikai" / "高知市医師会_調査票_記入済.xlsx"
    rows = prefilled_rows(src)
    kochi = in_munis(shien, ["392014"])
    ticks = {}
    for k, inst in enumerate(kochi[:12]):
        t = {"報告（○）": "○", "取組①": "○", "取組②": "○", "取組⑤": "○"}
        if inst["shien_kind"] == "支援病":
            t["取組⑥"] = "○"
        ticks[rows[inst["inst_code"]]] = t
    fill_template(src, base / "ishikai" / "高知市医師会_調査票_記入済.xlsx",
                  {"医師会名": "高知市医師会", "記入者": "土佐 花子", "電話": "088-000-0000"}, ticks)

    # 幡多医師会: an .xls, several sheets (a cover sheet, the table on the second), 取組 as ✓ and 1,
    # names written without 法人格.
    areas = read_areas(RAW / "39" / "areas.csv", "39", ref.index)[1]
    hata = in_munis(shien, areas.munis_of_ishikai("幡多医師会"))
    wb = xlwt.Workbook(encoding="utf-8")
    cover = wb.add_sheet("表紙")
    cover.write(0, 0, "幡多医師会")
    cover.write(2, 0, "在宅医療の積極的役割を担う医療機関 調査回答")
    ws = wb.add_sheet("回答")
    ws.write(0, 0, "医師会名")
    ws.write(0, 1, "幡多医師会")
    for c, h in enumerate(["医療機関名", "所在市町村", "種別（支援病・支援診）", "取組事項①", "取組事項②", "取組事項③",
                           "取組事項④", "取組事項⑤", "取組事項⑥"]):
        ws.write(2, c, h)
    for k, inst in enumerate(hata):
        ws.write(3 + k, 0, strip_corporate(inst["name"]).strip())
        ws.write(3 + k, 1, "幡多郡" + ref.index.name_of(inst["municipality_code"])
                 if ref.index.name_of(inst["municipality_code"]).endswith(("町", "村"))
                 else ref.index.name_of(inst["municipality_code"]))
        ws.write(3 + k, 2, inst["shien_symbol"])
        for n in range(6):
            if n < 4:
                ws.write(3 + k, 3 + n, "✓" if k % 2 else 1)
    (base / "ishikai").mkdir(parents=True, exist_ok=True)
    wb.save(str(base / "ishikai" / "幡多医師会.xls"))

    # 高知市: our 調査票 with one hub. Clean.
    fill_template(tdir / "shichoson" / "高知市_調査票.xlsx", base / "shichoson" / "高知市_調査票.xlsx",
                  {"市町村名": "高知市", "所属": "高齢者支援課", "記入者": "高知 太郎"},
                  {9: {"拠点の名称": "高知市在宅医療・介護連携支援センター", "拠点の種別": "地域医師会等関係団体",
                       "事業区域（市町村）": "高知市", "運営主体": "高知市医師会",
                       "運営主体の種別": "地域医師会等関係団体", "開始時期": "平成30年4月",
                       "推進事業の実施主体と同一（○）": "○", **{f"取組{CIRCLED[n]}": "○" for n in range(5)}}})
    # 四万十市: a CP932 CSV covering three municipalities, one written with its 郡 and one from another
    # prefecture (defect: 宇和島市 is in 愛媛県 -> error).
    write_csv(base / "shichoson" / "四万十市.csv", [
        ["在宅医療に必要な連携を担う拠点（四万十市）"],
        ["名称", "事業区域", "運営主体", "運営主体の種別", "開始時期", "取組事項"],
        ["幡多在宅医療連携支援センター", "四万十市・幡多郡黒潮町・宿毛市", "幡多医師会", "地域医師会等関係団体",
         "令和元年10月", "1,2,3,4,5"],
        ["西南地域在宅医療ネットワーク", "四万十市・宇和島市", "四万十市", "市町村", "R3.4", "①③"],
    ], "cp932")


def main() -> None:
    prefs = pipeline.select_prefectures(RAW, None)
    ref = pipeline.load_reference(RAW, prefs)
    with tempfile.TemporaryDirectory() as tmp:
        build_templates(RAW, Path(tmp), None)
        templates = Path(tmp) / "templates"
        for p in ("03", "39"):
            shutil.rmtree(RAW / p / "reports", ignore_errors=True)
        render_03(ref, templates)
        render_39(ref, templates)
    for p in sorted(RAW.glob("*/reports/*/*")):
        print(p.relative_to(RAW), p.stat().st_size)


if __name__ == "__main__":
    main()
