"""Every reader: real files read fully, every variant in docs/formats.md accepted, every defect caught with
the row number the user sees, and rows_in = accepted + rejected + skipped + out_of_scope for each file."""
import csv
import datetime as dt
import io
import zipfile

import polars as pl
import pytest
import xlsxwriter

from annex import codes
from annex.code_list import read_code_list
from annex.facility_files import read_facility_file
from annex.meibo import read_meibo
from annex.municipalities import MunicipalityIndex, read_master
from tests.conftest import RAW

HOSP_ZIP = RAW / "reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip"
CLINIC_ZIP = RAW / "reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip"
MASTER = RAW / "reference/municipalities/municipalities.csv"


@pytest.fixture(scope="module")
def index():
    return MunicipalityIndex(read_master(MASTER).accepted)


def hospital_bytes() -> bytes:
    with zipfile.ZipFile(HOSP_ZIP) as z:
        return z.read(z.namelist()[0])


def assert_balanced(res):
    a = res.accounting()
    assert a["rows_in"] == a["accepted"] + a["rejected"] + a["skipped_blank"] + a["out_of_scope"], a


# --- municipality master -----------------------------------------------------------------------
def test_master_real(index):
    res = read_master(MASTER)
    assert_balanced(res)
    assert res.findings == [] and res.accepted.height == 1966
    # wards of designated cities are there, Hamamatsu's old wards map to the 2024 ones
    assert index.current("011011") == "011011"
    assert index.current("221317") == "221384" and index.current("221376") == "221406"
    assert index.resolve("03", "岩手郡雫石町七ツ森16番地243")[0] == "033014"
    assert index.resolve("39", "高知県幡多郡黒潮町入野5929-1")[0] == "394289"
    assert index.resolve("39", "高岡郡檮原町梼原1212")[0] == "394050"   # 檮/梼


def test_master_defects(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("団体コード,都道府県名,市区町村名,区分\n"
                 "032018,岩手県,盛岡市,市\n"
                 "032019,岩手県,盛岡市X,市\n"        # line 3: wrong check digit
                 "\n"                                # line 4: blank
                 "03202,岩手県,宮古市,市\n", encoding="utf-8")   # line 5: 5 digits
    res = read_master(p)
    assert_balanced(res)
    assert sorted(f["row"] for f in res.findings) == [3, 5]
    assert all(f["severity"] == "error" and f["message"] for f in res.findings)
    assert res.accepted.height == 1 and res.skipped_blank == 1


# --- 医療情報ネット facility files ------------------------------------------------------------
def test_hospital_file_real():
    res = read_facility_file(HOSP_ZIP, {"03", "39"})
    assert_balanced(res)
    assert res.findings == [] and res.accepted.height == 203
    ids = res.accepted["facility_id"]
    assert ids.dtype == pl.String and set(ids.str.len_chars().unique()) == {11, 13}
    assert ids.str.starts_with("0").any()                       # leading zeros kept
    kamaishi = res.accepted.filter(pl.col("facility_id") == "03103100001").row(0, named=True)
    assert kamaishi["lat"] is None and kamaishi["lon"] is None   # 0.0,0.0 means missing
    assert kamaishi["municipality_code"] == "032115" and kamaishi["beds"] == 204


def test_clinic_file_and_pref_filter():
    res = read_facility_file(CLINIC_ZIP, {"03"})
    assert_balanced(res)
    assert res.accepted.height == 0 and res.out_of_scope == 382


@pytest.mark.parametrize("variant", ["bom_crlf", "no_bom", "lf", "cp932", "plain_csv"])
def test_hospital_encodings_and_line_ends(tmp_path, variant):
    data = hospital_bytes()
    name = "01-1_hospital_facility_info_20250601.csv"
    if variant == "no_bom":
        data = data[3:]
    elif variant == "lf":
        data = data.replace(b"\r\n", b"\n")
    elif variant == "cp932":
        data = data[3:].decode("utf-8").encode("cp932")
    p = tmp_path / (name if variant == "plain_csv" else name + ".zip")
    if variant == "plain_csv":
        p.write_bytes(data)
    else:
        with zipfile.ZipFile(p, "w") as z:
            z.writestr(name, data)
    res = read_facility_file(p, {"03", "39"})
    assert_balanced(res)
    assert res.accepted.height == 203
    rules = [f["rule"] for f in res.findings]
    assert rules == (["encoding"] if variant == "cp932" else [])
    if variant == "cp932":
        assert res.findings[0]["severity"] == "warning"


def test_facility_row_defects_with_line_numbers(tmp_path, index):
    lines = hospital_bytes().decode("utf-8-sig").split("\r\n")
    header, rows = lines[0], [ln for ln in lines[1:] if ln]
    bad = list(rows[:6])
    bad[1] = bad[1].replace('"03103100002"', '"03-10310"', 1)       # line 3: ID not digits
    bad[2] = bad[2].replace('"03","211"', '"03","2A1"', 1)          # line 4: 市区町村コード not 3 digits
    bad[3] = bad[3].rsplit(",", 1)[0]                               # line 5: one field missing
    bad.insert(4, "")                                               # line 6: blank line
    bad[5] = bad[5].replace('"03","', '"39","', 1)                  # line 7: ID 03… but pref 39
    text_ = "\ufeff" + "\r\n".join([header] + bad) + "\r\n"
    p = tmp_path / "01-1_hospital_facility_info_20250601.csv"
    p.write_text(text_, encoding="utf-8", newline="")
    res = read_facility_file(p, {"03", "39"}, index.current)
    assert_balanced(res)
    errs = sorted((f["row"], f["rule"]) for f in res.findings if f["severity"] == "error")
    assert [r for r, _ in errs] == [3, 4, 5, 7], errs
    assert res.skipped_blank == 1 and res.accepted.height == 2
    assert all(f["message"] and f["source_file"] == str(p) for f in res.findings)


def test_unknown_and_abolished_municipality(tmp_path, index):
    lines = hospital_bytes().decode("utf-8-sig").split("\r\n")
    row = lines[1]
    hamamatsu = row.replace('"03103100001"', '"22103100001"').replace('"03","211"', '"22","131"')
    nowhere = row.replace('"03103100001"', '"03103199999"').replace('"03","211"', '"03","999"')
    p = tmp_path / "01-1_hospital_facility_info_20250601.csv"
    p.write_text("\r\n".join([lines[0], hamamatsu, nowhere]) + "\r\n", encoding="utf-8-sig", newline="")
    res = read_facility_file(p, None, index.current)
    assert_balanced(res)
    by_rule = {f["rule"]: f for f in res.findings}
    assert by_rule["municipality_abolished"]["severity"] == "warning" and by_rule["municipality_abolished"]["row"] == 2
    assert by_rule["municipality_unknown"]["severity"] == "error" and by_rule["municipality_unknown"]["row"] == 3
    assert res.accepted["municipality_code"].to_list() == ["221384"]


def test_dental_file(tmp_path, index):
    """03-1 (歯科診療所), as published: a .csv.zip, BOM, CRLF, every field quoted but the bare coordinates, in the
    hospital file's layout without its bed columns (its first 57 columns; docs/formats.md: the clinic and dental
    files follow the hospital pattern), 機関区分 3. Rows: real 01-1 rows (IDs, codes, addresses, coordinates —
    the first with 0.0,0.0) under dental names."""
    rows = list(csv.reader(io.StringIO(hospital_bytes().decode("utf-8-sig"), newline="")))
    header, body = rows[0][:57], [r[:57] for r in rows[1:] if r]
    picked = [body[0], body[1], next(r for r in body if r[7] == "39")]
    for r, (name, kana) in zip(picked, [("かまいし歯科医院", "カマイシシカイイン"), ("さくら歯科クリニック", "サクラシカクリニック"),
                                        ("はりまや橋歯科", "ハリマヤバシシカ")]):
        r[1:3], r[6] = [name, kana], "3"

    def line(fields: list[str], bare: tuple[int, ...] = (10, 11)) -> str:
        return ",".join(v if i in bare else f'"{v}"' for i, v in enumerate(fields))
    data = "\ufeff" + "\r\n".join([line(header, ())] + [line(r) for r in picked]) + "\r\n"
    p = tmp_path / "03-1_dental_facility_info_20260601.csv.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("03-1_dental_facility_info_20260601.csv", data.encode("utf-8"))
    res = read_facility_file(p, {"03"}, index.current)
    assert_balanced(res)
    assert res.findings == [] and res.out_of_scope == 1 and res.as_of == "2026-06-01"
    got = res.accepted.select("facility_id", "kind", "name", "municipality_code", "lat", "beds").rows()
    assert got == [(picked[0][0], "dental", "かまいし歯科医院", "032115", None, None),
                   (picked[1][0], "dental", "さくら歯科クリニック", codes.muni_code6("03" + picked[1][8]),
                    float(picked[1][10]), None)]


def test_missing_column_is_one_clear_finding(tmp_path):
    """One file-level finding names the column; every row lost with the file is a rejected row (a row of a
    prefecture outside the run is out of scope), so the file's counts add up."""
    data = hospital_bytes().decode("utf-8-sig").replace('"所在地",', '"住所",', 1)
    p = tmp_path / "01-1_hospital_facility_info_20250601.csv"
    p.write_text(data, encoding="utf-8", newline="")
    res = read_facility_file(p, {"03", "39"})
    assert res.status == "failed" and res.accepted.height == 0
    files = [f for f in res.findings if f["row"] is None]
    assert len(files) == 1 and "所在地" in files[0]["message"]
    assert res.rows_in == res.rejected == 203
    assert sorted(f["row"] for f in res.findings if f["row"] is not None) == list(range(2, 205))
    assert_balanced(res)
    only_03 = read_facility_file(p, {"03"})
    assert only_03.rejected == 85 and only_03.out_of_scope == 118
    assert_balanced(only_03)


def test_truncated_zip(tmp_path):
    p = tmp_path / HOSP_ZIP.name
    p.write_bytes(HOSP_ZIP.read_bytes()[:5000])
    res = read_facility_file(p, {"03"})
    assert res.status == "failed" and res.findings[0]["rule"] == "zip_corrupt"
    assert "zip" in res.findings[0]["message"]


def test_zip_traversal_and_bomb(tmp_path):
    evil = tmp_path / "01-1_hospital_facility_info_20250601.csv.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../01-1_hospital_facility_info_20250601.csv", hospital_bytes())
    res = read_facility_file(evil, {"03"})
    assert res.status == "failed" and "ファイル名が不正" in res.findings[0]["message"]
    bomb = tmp_path / "02-1_clinic_facility_info_20260601.csv.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("02-1_clinic_facility_info_20260601.csv", b"0" * (60 * 1024 * 1024))
    res = read_facility_file(bomb, {"03"})
    assert res.status == "failed" and "大きすぎ" in res.findings[0]["message"]


def test_undecodable_file(tmp_path):
    p = tmp_path / "01-1_hospital_facility_info_20250601.csv"
    p.write_bytes(b"\x81\xff\xfe\x00" * 100)
    res = read_facility_file(p, {"03"})
    assert res.status == "failed" and res.findings[0]["rule"] == "encoding"


# --- 厚生局 名簿 ------------------------------------------------------------------------------
def test_meibo_real():
    res = read_meibo(RAW / "reference/kouseikyoku/shisetsu-touhoku-ika-r0808.xlsx", {"03"})
    assert_balanced(res)
    df = res.accepted
    assert df["inst_code"].n_unique() == 692 and res.as_of == "2026-08-01"
    assert df["name"].null_count() == 0 and (df["name"] != "").all()   # carried down onto continuation rows
    assert set(df["symbol"]) >= {"支援診1", "支援診2ア", "支援診3", "在医総管1", "在後病", "支援病1"}
    assert df.filter(pl.col("inst_code") == "0310110309")["start_date"].min() == dt.date(1998, 9, 1)


MESSY = [
    # number          name                 symbol        start          defect (comment for the reader)
    ("01,1030,9", "遠山病院", "支援病３", "令和 8年 3月 1日", None),
    ("", "", "在医総管１", dt.date(2015, 4, 1), None),                  # continuation row: facility carried
    ("01-1045-7", "三田記念病院", "支援診２", "R6.6.1", None),          # old style 支援診２ (no ア/イ)
    ("", "", "在医総管", "H28.4.1", None),                             # bare 在医総管 (old style)
    (None, None, None, None, None),                                     # blank row
    ("01.1124.0", "盛岡さんさ病院", "支援診2ア", "2024/6/1", None),      # half-width symbol, dotted number
    ("0111240", "盛岡さんさ病院", "在後病", "平成32年4月1日", "date"),   # impossible 和暦 -> warning
    ("01-1124-1", "誤記病院", "支援診3", "2024/6/1", "check"),          # check digit wrong -> warning
    ("01-112X-0", "番号不正医院", "支援診3", "2024/6/1", "number"),     # not a number -> error
    ("01-1233-9", "", "支援診3", "2024/6/1", "name"),                   # number without a name -> error
]


def write_messy_meibo(path, fmt="xlsx"):
    header = ["項番", "都道府県コード", "都道府県名", "区分", "医療機関番号", "併設医療機関番号", "医療機関記号番号",
              "医療機関名称", "医療機関所在地（郵便番号）", "医療機関所在地（住所）", "電話番号", "FAX番号", "病床数",
              "受理届出名称", "受理記号", "受理番号", "算定開始年月日"]
    rows = [["[ 岩手県 ] 届出受理医療機関名簿 医科"], ["令和 8年 8月 1日現在　令和 8年 8月10日作成"], [], header]
    for n, (num, name, sym, start, _) in enumerate(MESSY):
        if num is None:
            rows.append([])
            continue
        rows.append([n + 1 if num else "", "03" if num else "", "岩手県" if num else "", "医科" if num else "",
                     num, "", "", name, "", "盛岡市下ノ橋町6番14号" if num else "", "", "", "", "届出",
                     sym, "第1号", start])
    rows.append(["※ この名簿は…"])                                     # note row under the table
    if fmt == "xlsx":
        wb = xlsxwriter.Workbook(path)
        ws = wb.add_worksheet("岩手県")
        fmt_d = wb.add_format({"num_format": "yyyy/mm/dd"})
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if isinstance(v, dt.date):
                    ws.write_datetime(r, c, dt.datetime(v.year, v.month, v.day), fmt_d)
                elif v != "":
                    ws.write(r, c, v)
        wb.close()
    else:
        import xlwt
        wb = xlwt.Workbook(encoding="utf-8")
        ws = wb.add_sheet("岩手県")
        style = xlwt.easyxf(num_format_str="yyyy/mm/dd")
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if isinstance(v, dt.date):
                    ws.write(r, c, dt.datetime(v.year, v.month, v.day), style)
                elif v != "":
                    ws.write(r, c, v)
        wb.save(str(path))


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_meibo_messy(tmp_path, fmt):
    p = tmp_path / f"shisetsu-touhoku-ika-r0808.{fmt}"
    write_messy_meibo(p, fmt)
    res = read_meibo(p, {"03"})
    assert_balanced(res)
    assert res.rows_in == 11 and res.skipped_blank == 2         # blank row + note row
    first_data_row = 5                                          # header on Excel row 4
    found = {(f["row"], f["rule"], f["severity"]) for f in res.findings}
    expected_rows = {d: first_data_row + i for i, (*_, d) in enumerate(MESSY) if d}
    assert (expected_rows["date"], "date_format", "warning") in found
    assert (expected_rows["check"], "check_digit", "warning") in found
    assert any(r == expected_rows["number"] and s == "error" for r, _, s in found)
    assert any(r == expected_rows["name"] and s == "error" for r, _, s in found)
    df = res.accepted
    assert df.filter(pl.col("source_row") == 6)["name"].item() == "遠山病院"       # carried down
    assert set(df["symbol"]) == {"支援病3", "在医総管1", "支援診2", "在医総管", "支援診2ア", "在後病", "支援診3"}
    assert df.filter(pl.col("source_row") == 5)["start_date"].item() == dt.date(2026, 3, 1)
    assert df.filter(pl.col("source_row") == 6)["start_date"].item() == dt.date(2015, 4, 1)
    assert set(df["inst_code"]) >= {"0310110309", "0310111240"}
    assert res.as_of == "2026-08-01"


def test_meibo_copy_is_a_whole_row_again(tmp_path):
    """Only a row equal to an earlier one in every column is a copy: rows 6 and 7 share 番号, 受理記号, 受理番号 and
    算定開始 with row 5 but differ in 届出名称 or 住所 (the reader pre-selects copies on those four columns)."""
    p = tmp_path / "shisetsu-touhoku-ika-r0808.xlsx"
    wb = xlsxwriter.Workbook(p)
    ws = wb.add_worksheet("岩手県")
    ws.write_row(3, 0, ["項番", "都道府県コード", "医療機関番号", "医療機関名称", "医療機関所在地（住所）",
                        "受理届出名称", "受理記号", "受理番号", "算定開始年月日"])
    row = [1, "03", "01-1030-9", "遠山病院", "盛岡市下ノ橋町6番14号", "在宅療養支援病院", "支援病３", "第1号", "2024/4/1"]
    ws.write_row(4, 0, row)                                                      # row 5
    ws.write_row(5, 0, [*row[:5], "在宅療養支援病院（再届）", *row[6:]])           # row 6: another 届出名称
    ws.write_row(6, 0, [*row[:4], "盛岡市下ノ橋町6番15号", *row[5:]])              # row 7: another address
    ws.write_row(7, 0, row)                                                      # row 8: a copy of row 5
    wb.close()
    res = read_meibo(p, {"03"})
    assert_balanced(res)
    assert [(f["rule"], f["row"]) for f in res.findings] == [("duplicate_row", 8)]
    assert "5行目と同じ行" in res.findings[0]["message"]
    assert res.accepted["source_row"].to_list() == [5, 6, 7]


def test_meibo_sheets_are_checked_together_but_each_row_keeps_its_sheet(tmp_path):
    """A bureau's workbook has a sheet per prefecture; the reader checks the rows of all its sheets at once. Each
    finding still names the row's own sheet, a copy is a copy only within its sheet, and a start date is judged
    against its own sheet's date: 2026-04-01 is a typo in a list of 2024-08-01 (more than a year ahead), not in
    one of 2026-08-01. The second sheet lays its columns out in another order, with one more (市町村コード)."""
    p = tmp_path / "shisetsu-touhoku-ika-r0808.xlsx"
    wb = xlsxwriter.Workbook(p)
    header = ["項番", "都道府県コード", "医療機関番号", "医療機関名称", "医療機関所在地（住所）", "受理届出名称",
              "受理記号", "受理番号", "算定開始年月日"]
    layout = {"岩手県": list(range(9)), "宮城県": [3, 0, 1, 2, 4, 5, 6, 7, 8]}   # 宮城県: 名称 first
    ws_extra = "市町村コード"
    iwate = [1, "03", "01-1030-9", "遠山病院", "盛岡市下ノ橋町6番14号", "在宅療養支援病院", "支援病３", "第1号"]
    miyagi = [1, "04", "01-1030-8", "仙台遠山病院", "仙台市青葉区本町3-8-1", "在宅療養支援病院", "支援病３", "第1号"]
    for name, title, rows in [
            ("岩手県", "令和 6年 8月 1日現在", [iwate + ["2026/4/1"],                   # row 5: a year too far ahead
                                                iwate[:7] + ["第2号", "2024/4/1"]]),  # row 6
            ("宮城県", "令和 8年 8月 1日現在", [iwate + ["2024/4/1"],                   # row 5: 岩手's row 6, not a copy
                                                miyagi + ["2026/4/1"],                 # row 6: a plausible date here
                                                miyagi + ["2026/4/1"],                 # row 7: a copy of row 6
                                                [2, "04", "01-1124-0", "誤記病院", "仙台市青葉区1", "届出", "支援診3",
                                                 "第3号", "2024/6/1"]])]:              # row 8: check digit wrong
        ws = wb.add_worksheet(name)
        ws.write(0, 0, f"[ {name} ] 届出受理医療機関名簿 医科")
        ws.write(1, 0, title)
        extra = [ws_extra] if name == "宮城県" else []
        ws.write_row(3, 0, [header[i] for i in layout[name]] + extra)
        for r, row in enumerate(rows, start=4):
            ws.write_row(r, 0, [row[i] for i in layout[name]] + (["041009"] if extra else []))
    wb.close()
    res = read_meibo(p, {"03", "04"})
    assert_balanced(res)
    assert sorted((f["sheet"], f["row"], f["rule"]) for f in res.findings) == [
        ("宮城県", 7, "duplicate_row"), ("宮城県", 8, "check_digit"), ("岩手県", 5, "date_out_of_range")]
    assert next(f for f in res.findings if f["rule"] == "duplicate_row")["message"].startswith("6行目と同じ行")
    assert "2025年の範囲外" in next(f["message"] for f in res.findings if f["rule"] == "date_out_of_range")
    df = res.accepted
    assert df.select("source_sheet", "source_row").rows() == [("岩手県", 5), ("岩手県", 6), ("宮城県", 5),
                                                              ("宮城県", 6), ("宮城県", 8)]
    assert df["start_date"].to_list() == [None, dt.date(2024, 4, 1), dt.date(2024, 4, 1), dt.date(2026, 4, 1),
                                          dt.date(2024, 6, 1)]
    assert df["as_of"].to_list() == [dt.date(2024, 8, 1)] * 2 + [dt.date(2026, 8, 1)] * 3
    assert df["name"].to_list() == ["遠山病院"] * 3 + ["仙台遠山病院", "誤記病院"]
    assert df["city_code"].to_list() == [None, None, "041009", "041009", "041009"]


def test_meibo_missing_column_and_corrupt(tmp_path):
    p = tmp_path / "m.xlsx"
    wb = xlsxwriter.Workbook(p)
    ws = wb.add_worksheet("S")
    for c, h in enumerate(["項番", "医療機関番号", "医療機関名称", "受理記号"]):   # no 算定開始年月日
        ws.write(3, c, h)
    ws.write_row(4, 0, [1, "01-1030-9", "遠山病院", "支援診１"])
    wb.close()
    res = read_meibo(p, {"03"})
    assert_balanced(res)
    assert any("算定開始年月日" in f["message"] for f in res.findings) and res.accepted.height == 0
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes((RAW / "reference/kouseikyoku/shisetsu-shikoku-ika-r0809.xlsx").read_bytes()[:3000])
    res = read_meibo(broken, {"39"})
    assert res.status == "failed" and res.findings[0]["rule"] == "workbook_unreadable"
    other = tmp_path / "notes.xlsx"
    wb = xlsxwriter.Workbook(other)
    wb.add_worksheet("x").write(0, 0, "これは名簿ではありません")
    wb.close()
    res = read_meibo(other, {"03"})
    assert res.status == "failed" and res.findings[0]["rule"] == "header_not_found"


# --- code list ---------------------------------------------------------------------------------
def test_the_whitespace_written_out_is_what_str_strip_removes():
    """facility_files._PY_SPACE is written out (finding it cost every import 0.1 s): it must stay exactly the
    characters str.strip() removes, which polars' strip_chars is given in their place."""
    from annex import facility_files
    assert facility_files._PY_SPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def test_code_list_real_and_defects(tmp_path):
    res = read_code_list(RAW / "reference/kouseikyoku_codes/all_med_inst_cd_202508.csv", {"03", "39"})
    assert_balanced(res)
    assert res.accepted.height == 1275 and res.findings == []
    assert all(codes.inst_code_check_ok(c) for c in res.accepted["inst_code"])
    p = tmp_path / "all_med_inst_cd_202508.csv"
    p.write_text("030110309,0110309,遠山病院,0200877,盛岡市下ノ橋町６番１４号\r\n"
                 "03011030,0110309,短い,0200877,盛岡市\r\n\r\n"
                 "030110308,0110308,検査数字違い,0200877,盛岡市\r\n", encoding="cp932")
    res = read_code_list(p, {"03"})
    assert_balanced(res)
    assert [(f["row"], f["severity"]) for f in res.findings] == [(2, "error"), (4, "warning")]


def test_publisher_facility_files_are_read_column_wise():
    """The shipped files (UTF-8 with BOM, CRLF, every text field quoted: the publisher's form) take the
    column-wise path; a file with a line break inside a quoted field does not (csv.reader reads it)."""
    from annex import facility_files
    for p in (HOSP_ZIP, CLINIC_ZIP):
        header, body = facility_files._plain_records(facility_files._payload(p))
        assert "ID" in header and body.height == read_facility_file(p).rows_in > 100
    assert facility_files._plain_records('\ufeff"ID","正式名称"\r\n"1","中央\r\nクリニック"\r\n'.encode()) is None
    assert facility_files._plain_records('"ID","正式名称"\r\n"1","中央クリニック"\r\n'.encode("cp932")) is None
