"""厚生局 コード内容別医療機関一覧 (code lists of 医科 institutions), as collected in the headerless CSV
`all_med_inst_cd_YYYYMM.csv`: 9-digit code (prefecture + 7), 7-digit code, 名称, 郵便番号, 住所 (no prefecture).

It names institutions that have no notification in the 名簿 (so they are missing from it), which is what
lets a hospital without a 施設基準 row still be linked to its 医療機関コード.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl

from annex import codes
from annex.csvio import EncodingError, decode, rows_with_line_numbers
from annex.findings import ReadResult, failed_file, finding

CODE_LIST_COLUMNS = {"inst_code": pl.String, "pref_code": pl.String, "name": pl.String, "postcode": pl.String,
                     "address": pl.String, "as_of": pl.Date, "source_file": pl.String, "source_row": pl.Int64}


_CODE9 = re.compile(r"\d{9}")
_NON_DIGIT = re.compile(r"\D")


def read_code_list(path: str | Path, prefs: set[str] | None = None) -> ReadResult:
    path = Path(path)
    m = re.search(r"(\d{6})", path.name)
    as_of = dt.date(int(m.group(1)[:4]), int(m.group(1)[4:]), 1) if m else None
    try:
        txt, _ = decode(path.read_bytes())
    except (OSError, EncodingError) as exc:
        return failed_file("code_list", path, "unreadable", f"医療機関コード一覧を読めません: {exc}",
                           empty_schema=CODE_LIST_COLUMNS)
    res = ReadResult("code_list", str(path), pl.DataFrame(schema=CODE_LIST_COLUMNS),
                     as_of=as_of.isoformat() if as_of else None)
    # the check digit is tested column-wise after the loop (once per row in Python it was half the reading of
    # the national list's 91,000 rows); its warnings go in line order among the loop's findings
    rows, lines_found = [], []
    for line, f in rows_with_line_numbers(txt):
        res.rows_in += 1
        if not "".join(f).strip():
            res.skipped_blank += 1
            continue
        if len(f) < 5 or not _CODE9.fullmatch(f[0].strip()):
            lines_found.append(line)
            res.findings.append(finding(path, None, line, "コード", f[0] if f else "", "code_format",
                                        "1列目は9桁の医療機関コード（都道府県2桁＋7桁）、列は5つ（コード・7桁コード・名称・郵便番号・住所）です。"))
            continue
        c9 = f[0].strip()
        if prefs is not None and c9[:2] not in prefs:
            res.out_of_scope += 1
            continue
        pc = _NON_DIGIT.sub("", f[3])
        rows.append((codes.inst_code(c9[:2], "1", c9[2:]), c9[:2], f[2].strip(),
                     f"{pc[:3]}-{pc[3:]}" if len(pc) == 7 else None, f[4].strip(), line))
    df = pl.DataFrame(rows, schema={"inst_code": pl.String, "pref_code": pl.String, "name": pl.String,
                                    "postcode": pl.String, "address": pl.String, "source_row": pl.Int64},
                      orient="row")
    bad = df.filter(~codes.inst_codes_check_ok(df["inst_code"])).select("source_row", "inst_code")
    if bad.height:   # the value shown is the list's own 9 digits: prefecture + the code after its 点数表
        digit_findings = [(line, finding(path, None, line, "コード", code[:2] + code[3:], "check_digit",
                                         f"医療機関コード {code} の検査数字が合いません（行は取り込みます）。",
                                         severity="warning")) for line, code in bad.iter_rows()]
        # the loop's findings are all code_format ones, one per line
        res.findings = [f for _, f in sorted([*zip(lines_found, res.findings), *digit_findings],
                                             key=lambda lf: lf[0])]
    res.accepted = df.with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"),
                                   pl.lit(str(path), dtype=pl.String).alias("source_file")
                                   ).select(list(CODE_LIST_COLUMNS))
    if res.rows_in == res.skipped_blank:
        res.findings.append(finding(path, None, None, None, None, "empty_file",
                                    "医療機関コード一覧にデータ行がありません。", severity="warning"))
    return res
