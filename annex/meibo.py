"""地方厚生局 届出受理医療機関名簿 (施設基準の届出受理状況) workbooks, .xlsx or .xls.

Layout as published: title rows, header on row 4 (found by its names, not assumed), one row per
facility × notification, continuation rows with the facility columns left blank.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
import unicodedata
from pathlib import Path

import polars as pl
from python_calamine import CalamineWorkbook

from annex import codes
from annex.findings import ReadResult, failed_file, finding, validate
from schemas.meibo import NotificationList

HEADER = {
    "項番": "item_no", "都道府県コード": "pref_code", "都道府県名": "pref_name", "区分": "category",
    "医療機関番号": "inst_number_raw", "医療機関名称": "name", "医療機関所在地(郵便番号)": "postcode",
    "医療機関所在地(住所)": "address", "病床数": "beds_raw", "受理届出名称": "notification_name",
    "受理記号": "symbol_raw", "受理番号": "acceptance_no", "算定開始年月日": "start_raw",
    "市町村コード": "city_code", "市町村名": "city_name",
}
# columns that describe the facility: blank on continuation rows, carried down from the row above
FACILITY_COLS = ["item_no", "pref_code", "pref_name", "category", "inst_number_raw", "name", "postcode",
                 "address", "beds_raw", "city_code", "city_name"]
REQUIRED = ["医療機関番号", "医療機関名称", "受理記号", "算定開始年月日"]
NOTIFICATION_COLUMNS = {
    "inst_code": pl.String, "pref_code": pl.String, "tensuhyo": pl.String, "name": pl.String,
    "address": pl.String, "postcode": pl.String, "beds": pl.Int32, "city_code": pl.String,
    "notification_name": pl.String, "symbol_raw": pl.String, "symbol": pl.String,
    "acceptance_no": pl.String, "start_date": pl.Date, "as_of": pl.Date,
    "source_file": pl.String, "source_sheet": pl.String, "source_row": pl.Int64,
}
_TENSUHYO = {"医科": "1", "歯科": "3", "薬局": "4", "調剤": "4", "訪問看護": "6"}


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    return str(v).strip()


def _header_key(v: object) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", _cell(v)))


@lru_cache(maxsize=4096)
def normalise_symbol(raw: str) -> str:
    """受理記号 in one form: full-width -> half-width, spaces removed (支援診２ア -> 支援診2ア)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", raw or ""))


def _find_header(grid: list[list]) -> int | None:
    for i, row in enumerate(grid[:20]):
        keys = {_header_key(v) for v in row}
        if "医療機関番号" in keys and ("受理記号" in keys or "受理届出名称" in keys):
            return i
    return None


def _as_of(grid: list[list], header_at: int) -> dt.date | None:
    for row in grid[:header_at]:
        for v in row:
            t = _cell(v)
            m = re.search(r"((?:令和|平成)\s*\S+?年\s*\d+\s*月\s*\d+\s*日)\s*現在", t)
            if m:
                try:
                    return codes.parse_date(m.group(1))
                except codes.DateParseError:
                    return None
    return None


def _title_pref(grid: list[list], header_at: int) -> str | None:
    for row in grid[:header_at]:
        for v in row:
            m = re.search(r"\[\s*(\S+?[都道府県])\s*\]", _cell(v))
            if m:
                return m.group(1)
    return None


def read_meibo(path: str | Path, prefs: set[str] | None = None,
               pref_code_by_name: dict[str, str] | None = None) -> ReadResult:
    path = Path(path)
    kind = "meibo"
    try:
        wb = CalamineWorkbook.from_path(str(path))
        sheets = wb.sheet_names
    except Exception as exc:  # calamine raises its own error types for corrupt/encrypted files
        return failed_file(kind, path, "workbook_unreadable",
                           f"Excelファイルとして開けません（壊れている・パスワード付き・形式違い）: {exc}",
                           empty_schema=NOTIFICATION_COLUMNS)
    default_tensu = "3" if "shika" in path.name else "4" if "yakkyoku" in path.name else "1"
    res = ReadResult(kind, str(path), pl.DataFrame(schema=NOTIFICATION_COLUMNS))
    frames, recognised = [], 0
    for sheet in sheets:
        try:
            grid = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except Exception as exc:
            res.findings.append(finding(path, sheet, None, None, None, "sheet_unreadable",
                                        f"シート「{sheet}」を読めません: {exc}"))
            continue
        header_at = _find_header(grid)
        if header_at is None:
            # cover sheets and notes are normal; a sheet with data but no header is reported
            data_rows = sum(1 for r in grid if any(_cell(v) for v in r))
            if data_rows > 5:
                res.findings.append(finding(path, sheet, None, None, None, "header_not_found",
                                            f"シート「{sheet}」に名簿の見出し行（医療機関番号・受理記号）が見つかりません。",
                                            severity="warning"))
            continue
        recognised += 1
        header = [_header_key(v) for v in grid[header_at]]
        missing = [h for h in REQUIRED if h not in header]
        body = grid[header_at + 1:]
        if missing:
            res.rows_in += len(body)
            res.findings.append(finding(path, sheet, None, None, None, "missing_column",
                                        f"シート「{sheet}」（見出しは{header_at + 1}行目）に必要な列がありません: "
                                        f"{'・'.join(missing)}"))
            # every body row is lost with the sheet: count them as rejected rows of this sheet
            for j, r in enumerate(body):
                if any(_cell(v) for v in r):
                    res.findings.append(finding(path, sheet, header_at + 2 + j, None, None, "missing_column",
                                                "見出しに必要な列がないため、この行を読めません。"))
                else:
                    res.skipped_blank += 1
            continue
        idx = {HEADER[h]: i for i, h in enumerate(header) if h in HEADER}
        title_pref = _title_pref(grid, header_at)
        as_of = _as_of(grid, header_at)
        res.as_of = as_of.isoformat() if as_of else res.as_of
        records, carry = [], {}
        for j, raw in enumerate(body):
            excel_row = header_at + 2 + j      # 1-based row as Excel shows it
            res.rows_in += 1
            cells = {c: _cell(raw[i]) if i < len(raw) else "" for c, i in idx.items()}
            if not any(_cell(v) for v in raw):
                res.skipped_blank += 1
                continue
            if not cells.get("symbol_raw") and not cells.get("notification_name") and not cells.get("inst_number_raw"):
                # a note line (※…) under the table
                res.skipped_blank += 1
                continue
            if cells.get("inst_number_raw") or cells.get("name"):
                carry = {c: cells.get(c, "") for c in FACILITY_COLS}
            else:
                cells.update({c: v for c, v in carry.items() if not cells.get(c)})
            cells["start_cell"] = raw[idx["start_raw"]] if idx["start_raw"] < len(raw) else None
            cells["source_row"] = excel_row
            records.append(cells)
        frames.append(_to_frame(records, path, sheet, title_pref, default_tensu, pref_code_by_name or {},
                                as_of, prefs, res))
    if recognised == 0:
        return failed_file(kind, path, "header_not_found",
                           "名簿の見出し行（医療機関番号・受理記号）がどのシートにも見つかりません。"
                           "厚生局の届出受理医療機関名簿か確認してください。", rows_in=res.rows_in,
                           empty_schema=NOTIFICATION_COLUMNS)
    res.accepted = pl.concat(frames) if frames else res.accepted
    return res


def _to_frame(records, path, sheet, title_pref, default_tensu, pref_code_by_name, as_of, prefs,
              res: ReadResult) -> pl.DataFrame:
    rows = []
    for c in records:
        pref = c.get("pref_code", "")
        pref = pref.zfill(2) if pref.isdigit() else pref_code_by_name.get(c.get("pref_name") or title_pref or "", "")
        if prefs is not None and pref and pref not in prefs:
            res.out_of_scope += 1
            continue
        number = codes.parse_inst_number(c.get("inst_number_raw"))
        category = unicodedata.normalize("NFKC", c.get("category") or "")
        rows.append({
            "pref_code": pref, "inst_number": number or c.get("inst_number_raw", ""),
            "tensuhyo": _TENSUHYO.get(category, default_tensu if not category else category),
            "name": c.get("name", ""), "address": c.get("address") or None, "postcode": c.get("postcode") or None,
            "beds_raw": c.get("beds_raw") or None, "city_code": c.get("city_code") or None,
            "notification_name": c.get("notification_name") or None,
            "symbol_raw": c.get("symbol_raw", ""), "symbol": normalise_symbol(c.get("symbol_raw", "")),
            "acceptance_no": c.get("acceptance_no") or None, "start_cell": c.get("start_cell"),
            "source_sheet": sheet, "source_row": c["source_row"],
        })
    schema = {"pref_code": pl.String, "inst_number": pl.String, "tensuhyo": pl.String, "name": pl.String,
              "address": pl.String, "postcode": pl.String, "beds_raw": pl.String, "city_code": pl.String,
              "notification_name": pl.String, "symbol_raw": pl.String, "symbol": pl.String,
              "acceptance_no": pl.String, "start_cell": pl.Object, "source_sheet": pl.String,
              "source_row": pl.Int64}
    df = pl.DataFrame(rows, schema=schema)
    ok, found = validate(df.drop("start_cell"), NotificationList, str(path))
    res.findings += found
    keep_rows = set(ok["source_row"].to_list())
    out = []
    for r in rows:
        if r["source_row"] not in keep_rows:
            continue
        code = codes.inst_code(r["pref_code"], r["tensuhyo"], r["inst_number"])
        if not codes.inst_code_check_ok(code):
            res.findings.append(finding(path, sheet, r["source_row"], "医療機関番号", r["inst_number"], "check_digit",
                                        f"医療機関コード {code} の検査数字が合いません。番号の写し間違いがないか確認してください"
                                        "（行は取り込みます）。", severity="warning"))
        start = None
        if r["start_cell"] not in (None, ""):
            try:
                start = codes.parse_date(r["start_cell"])
            except codes.DateParseError as exc:
                res.findings.append(finding(path, sheet, r["source_row"], "算定開始年月日", r["start_cell"],
                                            "date_format", f"{exc}（行は取り込み、開始日は空欄とします）。",
                                            severity="warning"))
        beds = int(r["beds_raw"]) if r["beds_raw"] and r["beds_raw"].isdigit() else None
        out.append({"inst_code": code, "pref_code": r["pref_code"], "tensuhyo": r["tensuhyo"], "name": r["name"],
                    "address": r["address"], "postcode": r["postcode"], "beds": beds, "city_code": r["city_code"],
                    "notification_name": r["notification_name"], "symbol_raw": r["symbol_raw"],
                    "symbol": r["symbol"], "acceptance_no": r["acceptance_no"], "start_date": start,
                    "as_of": as_of, "source_file": str(path), "source_sheet": r["source_sheet"],
                    "source_row": r["source_row"]})
    return pl.DataFrame(out, schema=NOTIFICATION_COLUMNS)
