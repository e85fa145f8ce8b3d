"""Public code systems: 医療機関コード, 全国地方公共団体コード, and dates written in 和暦 or 西暦."""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING
import unicodedata

if TYPE_CHECKING:
    import polars as pl

# Prefectures whose 医療機関コード check digit covers only the 6 digits after prefecture + 点数表
# (observed on real codes; see docs/formats.md in the project notes and README).
_SHORT_LUHN_PREFS = {"11", "12", "13", "14"}

TENSUHYO = {"医科": "1", "歯科": "3", "調剤": "4", "薬局": "4", "訪問看護": "6"}


def luhn_check_digit(body: str) -> int:
    """Luhn check digit: weights 2,1,2,… from the rightmost body digit, digit sums, (10 - S mod 10) mod 10."""
    s = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return (10 - s % 10) % 10


# Called once per row on values that repeat heavily at national scale (a facility has dozens of 名簿 rows):
# cached, since they are pure and return immutable values.
@lru_cache(maxsize=262144)
def inst_code_check_ok(code: str) -> bool:
    """Check digit of a 10-digit 医療機関コード (prefecture 2 + 点数表 1 + 郡市区 2 + 機関 4 + check 1)."""
    if not re.fullmatch(r"\d{10}", code or ""):
        return False
    body = code[3:9] if code[:2] in _SHORT_LUHN_PREFS else code[:9]
    return luhn_check_digit(body) == int(code[9])


def inst_codes_check_ok(codes: pl.Series) -> pl.Series:
    """inst_code_check_ok of each value, for the 名簿's 1.5 M rows: ten ASCII digits (all but a few) column-wise —
    the same Luhn sum; both bodies end at digit 9, so a digit is doubled when its position in the code is
    even —, any other text through inst_code_check_ok itself (Python's \\d takes full-width digits too)."""
    import polars as pl

    code, number = pl.col("code"), pl.col("number")

    def digit(p: int) -> pl.Expr:
        d = number // 10 ** (9 - p) % 10
        return (d * 2 - pl.when(d * 2 > 9).then(9).otherwise(0)) if p % 2 == 0 else d

    df = pl.DataFrame({"code": codes}, schema={"code": pl.String}).with_columns(
        ascii10=code.str.contains(r"^[0-9]{10}$").fill_null(False))
    df = df.with_columns(number=pl.when("ascii10").then(code).cast(pl.Int64))
    short = (number // 10**8).is_in([int(p) for p in _SHORT_LUHN_PREFS])
    total = pl.sum_horizontal(digit(p) for p in range(3, 9)) + \
        pl.when(short).then(0).otherwise(pl.sum_horizontal(digit(p) for p in range(3)))
    ok = df.select(((10 - total % 10) % 10 == digit(9)).alias("ok"))["ok"]
    other = df.select((~pl.col("ascii10") & code.is_not_null()).alias("other"))["other"]
    if other.any():
        slow = {c: inst_code_check_ok(c) for c in codes.filter(other).unique().to_list()}
        ok = df.with_columns(ok=ok).select(pl.coalesce(
            "ok", code.replace_strict(slow, default=None, return_dtype=pl.Boolean)))["ok"]
    return ok.fill_null(False).rename(codes.name)


@lru_cache(maxsize=262144)
def parse_inst_number(raw: object) -> str | None:
    """医療機関番号 as the bureaus write it -> its 7 digits (郡市区 2 + 機関 4 + check 1).

    Accepts '01,1047,8', '01-1857-5', '01.1857.5', '0118575', full-width digits and the old 2+5 form
    '01-15202'. Returns None when it is not 7 digits.
    """
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = str(int(raw)).zfill(7)
    t = unicodedata.normalize("NFKC", str(raw)).strip()
    digits = re.sub(r"[\s,.\-‐−―ー－]", "", t)
    if re.fullmatch(r"\d{7}", digits):
        return digits
    if re.fullmatch(r"\d{6}", digits) and re.fullmatch(r"\d{1,2}\D\d{4}\D\d", t):
        return digits.zfill(7)
    return None


def inst_code(pref_code: str, tensuhyo: str, number7: str) -> str:
    return f"{pref_code}{tensuhyo}{number7}"


def muni_check_digit(code5: str) -> int:
    """Check digit of the 全国地方公共団体コード: S = Σ d1..d5 × (6,5,4,3,2); (11 − S mod 11) mod 10."""
    s = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2)))
    return (11 - s % 11) % 10


def muni_code6(code5: str) -> str:
    return f"{code5}{muni_check_digit(code5)}"


def muni_code6_ok(code6: str) -> bool:
    return bool(re.fullmatch(r"\d{6}", code6 or "")) and muni_check_digit(code6[:5]) == int(code6[5])


# --- dates -------------------------------------------------------------------------------------
ERAS = {  # name, initial, first day
    "令和": ("R", dt.date(2019, 5, 1)),
    "平成": ("H", dt.date(1989, 1, 8)),
    "昭和": ("S", dt.date(1926, 12, 25)),
    "大正": ("T", dt.date(1912, 7, 30)),
}
_ERA_BY_INITIAL = {v[0]: k for k, v in ERAS.items()}
_ERA_END = {"令和": None, "平成": dt.date(2019, 4, 30), "昭和": dt.date(1989, 1, 7),
            "大正": dt.date(1926, 12, 24)}
_TAIL = r"\s*(年度|年|[./\-])?\s*(?:(\d{1,2})\s*(?:月|[./\-])?\s*(?:(\d{1,2})\s*日?)?)?\s*(?:から|以降)?\s*[～~〜-]?\s*$"
_WAREKI = re.compile(r"^(令和|平成|昭和|大正|[RHST])\.?\s*(元|\d{1,2})" + _TAIL, re.IGNORECASE)
_SEIREKI = re.compile(r"^(\d{4})" + _TAIL)
_RANGE = re.compile(r"\s*[～~〜]")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


class DateParseError(ValueError):
    """Raised with a Japanese explanation when a date cannot be read."""


def parse_date(value: object) -> dt.date:
    """See _parse_date. Values repeat heavily in the 名簿 (thousands of rows share a date): cached."""
    if isinstance(value, (str, int, float, dt.date)):
        return _parse_date_cached(value)
    return _parse_date(value)


@lru_cache(maxsize=1 << 16)
def _parse_date_cached(value) -> dt.date:
    return _parse_date(value)


def _parse_date(value: object) -> dt.date:
    """Parse dates as officials and bureaus write them.

    令和6年4月1日, R6.4.1, R06.04.01, H28年度～ (-> 2016-04-01), 2016/4 (-> 2016-04-01), 2026-03-01,
    Excel serial numbers and datetime objects; what follows a ～ is ignored when what precedes it is a date
    (平成28年度～（2016年度～）, 令和6年4月～現在). A year alone or with 年度 means April 1 of that 年度;
    a month without day means the 1st. Impossible dates (令和0年, 平成32年) raise DateParseError.
    """
    if value is None:
        raise DateParseError("日付が空です")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            return _EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise DateParseError(f"日付として読めない数値です: {value}")
    t = unicodedata.normalize("NFKC", str(value)).strip()
    if re.fullmatch(r"\d{8}", t):
        t = f"{t[:4]}-{t[4:6]}-{t[6:]}"
    if re.fullmatch(r"\d{5}(\.0)?", t):  # Excel serial written as text
        return _parse_date(float(t))
    m = _WAREKI.match(t)
    if m:
        era = m.group(1)
        era = _ERA_BY_INITIAL.get(era.upper(), era)
        year_in_era = 1 if m.group(2) == "元" else int(m.group(2))
        if year_in_era < 1:
            raise DateParseError(f"{era}0年という年はありません: {value}")
        year = ERAS[era][1].year + year_in_era - 1
        d = _build(year, m.group(4), m.group(5), value)
        start, end = ERAS[era][1], _ERA_END[era]
        # A full date must fall inside the era; a year or month alone only inside its calendar years
        # (平成31年度 and 令和元年4月 are how officials write the changeover).
        full = m.group(5) is not None
        if (full and (d < start or (end is not None and d > end))) or d.year < start.year or (
                end is not None and d.year > end.year):
            raise DateParseError(f"{era}{year_in_era}年は存在しません: {value}")
        return d
    m = _SEIREKI.match(t)
    if m:
        return _build(int(m.group(1)), m.group(3), m.group(4), value)
    # 平成28年度～（2016年度～）, 令和6年4月～現在, H28年度～R2年度: the start is what comes before the ～
    head = _RANGE.split(t, maxsplit=1)[0]
    if head != t and (_WAREKI.match(head) or _SEIREKI.match(head)):
        return _parse_date(head)
    raise DateParseError(f"日付として読めません（例: 令和6年4月1日、R6.4.1、2024/4/1）: {value}")


def _build(year: int, month: str | None, day: str | None, raw: object) -> dt.date:
    if month is None:
        month_i, day_i = 4, 1  # a year alone means the 年度, which starts in April
    else:
        month_i, day_i = int(month), int(day) if day else 1
    try:
        return dt.date(year, month_i, day_i)
    except ValueError:
        raise DateParseError(f"存在しない日付です: {raw}") from None


def to_wareki(d: dt.date, nendo: bool = False) -> str:
    """2016-04-01 -> 平成28年4月1日 (or 平成28年度 with nendo=True)."""
    if nendo:
        fy = d.year if d.month >= 4 else d.year - 1
        ref = dt.date(fy, 4, 1)
        for era, (_, start) in ERAS.items():
            if ref >= start or (era == "令和" and fy >= 2019):
                n = fy - start.year + 1
                return f"{era}{'元' if n == 1 else n}年度"
    for era, (_, start) in ERAS.items():
        if d >= start:
            n = d.year - start.year + 1
            return f"{era}{'元' if n == 1 else n}年{d.month}月{d.day}日"
    return d.isoformat()
