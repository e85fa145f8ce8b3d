"""全国地方公共団体コード master: reading it, and finding the municipality an address lies in."""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from annex import codes, text
from annex.csvio import EncodingError, decode, rows_with_line_numbers
from annex.findings import ReadResult, failed_file, validate
from schemas.municipality_master import MunicipalityMaster

MASTER_HEADER = {
    "団体コード": "code", "都道府県名": "pref_name", "市区町村名": "name", "都道府県名カナ": "pref_kana",
    "市区町村名カナ": "name_kana", "区分": "kind", "所属政令市コード": "parent_code", "有効開始日": "valid_from",
    "廃止日": "valid_to", "後継団体コード": "successor_code", "出典": "source",
}
MASTER_COLUMNS = list(MASTER_HEADER.values())


def read_master(path: str | Path) -> ReadResult:
    path = Path(path)
    try:
        txt, _ = decode(path.read_bytes())
    except (OSError, EncodingError) as exc:
        return failed_file("municipalities", path, "unreadable", f"市区町村マスタを読めません: {exc}")
    rows = list(rows_with_line_numbers(txt))
    if not rows:
        return failed_file("municipalities", path, "empty_file", "市区町村マスタが空です。")
    header = [h.strip() for h in rows[0][1]]
    missing = [h for h in ("団体コード", "都道府県名", "市区町村名", "区分") if h not in header]
    if missing:
        return failed_file("municipalities", path, "missing_column",
                           f"市区町村マスタに必要な列がありません: {'・'.join(missing)}", rows_in=len(rows) - 1)
    idx = {MASTER_HEADER[h]: i for i, h in enumerate(header) if h in MASTER_HEADER}
    records, blank = [], 0
    for line, fields in rows[1:]:
        if not any(f.strip() for f in fields):
            blank += 1
            continue
        rec = {c: (fields[i].strip() if i < len(fields) else "") for c, i in idx.items()}
        rec.update({c: None for c in MASTER_COLUMNS if c not in rec})
        rec["source_row"] = line
        records.append(rec)
    df = pl.DataFrame(records, schema={**{c: pl.String for c in MASTER_COLUMNS}, "source_row": pl.Int64})
    ok, found = validate(df, MunicipalityMaster, str(path))
    res = ReadResult("municipalities", str(path), ok, found, rows_in=len(rows) - 1, skipped_blank=blank)
    return res


class MunicipalityIndex:
    """Finds the municipality of an address and maps abolished codes to their successors."""

    def __init__(self, master: pl.DataFrame):
        self.master = master
        self.by_code = {r["code"]: r for r in master.iter_rows(named=True)}
        self.pref_code_by_name = {text.basic(r["pref_name"]): r["code"][:2]
                                  for r in master.iter_rows(named=True) if r["kind"] == "都道府県"}
        self.pref_name_by_code = {v: k for k, v in self.pref_code_by_name.items()}
        self._names: dict[str, list[tuple[str, str]]] = {}
        for r in master.iter_rows(named=True):
            if r["kind"] == "都道府県" or not r["name"]:
                continue
            code = self.current(r["code"]) or r["code"]
            self._names.setdefault(r["code"][:2], []).append((text.basic(r["name"]), code))
        for names in self._names.values():
            names.sort(key=lambda t: -len(t[0]))
        # the same lists split by the names' first two characters (no municipality name is shorter): resolve
        # tries a handful of names instead of every name in the prefecture (320 k addresses nationally)
        self._by_head: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for pref, names in self._names.items():
            heads = self._by_head.setdefault(pref, {})
            for name, code in names:
                heads.setdefault(name[:2], []).append((name, code))
        self._pref_name_lengths = sorted({len(n) for n in self.pref_code_by_name}, reverse=True)
        self._resolved: dict[tuple[str, str | None], tuple[str | None, str]] = {}

    def __getstate__(self) -> dict:
        # sent to worker processes: without the lookups it memoised here
        return {**self.__dict__, "_resolved": {}}

    def current(self, code6: str | None) -> str | None:
        """The code in force for code6: itself, its successor if abolished, None if unknown."""
        seen = set()
        while code6 and code6 in self.by_code and code6 not in seen:
            seen.add(code6)
            row = self.by_code[code6]
            if not row["valid_to"]:
                return code6
            code6 = row["successor_code"]
        return None

    def name_of(self, code6: str) -> str | None:
        row = self.by_code.get(code6)
        return None if row is None else (row["name"] or row["pref_name"])

    def strip_prefecture(self, address: str) -> str:
        return self._after_prefecture(text.basic(address))

    def _after_prefecture(self, t: str) -> str:
        for n in self._pref_name_lengths:
            if t[:n] in self.pref_code_by_name:
                return t[n:]
        return t

    def resolve(self, pref_code: str, address: str | None) -> tuple[str | None, str]:
        """(current 6-digit code, remainder of the address after the municipality) or (None, address after the
        prefecture). The remainder keeps the address's spaces (text.tail_as_written): a space ends the street.

        Accepts addresses with or without the prefecture, and with or without the 郡 of a town or village
        (岩手郡雫石町…, 幡多郡黒潮町…). Longest name first, so 札幌市中央区 wins over 札幌市.
        """
        key = (pref_code, address)
        hit = self._resolved.get(key)
        if hit is None:   # institutions() and the linking both resolve the same addresses
            hit = self._resolved[key] = self._resolve(pref_code, address)
        return hit

    def _resolve(self, pref_code: str, address: str | None) -> tuple[str | None, str]:
        code, rest = self._municipality(pref_code, self.strip_prefecture(address or ""))
        return code, text.tail_as_written(address, rest)

    def _municipality(self, pref_code: str, t: str) -> tuple[str | None, str]:
        """(code, the rest of t) for the municipality t (basic()'d, no prefecture) starts with, else (None, t)."""
        heads = self._by_head.get(pref_code, {})
        for name, code in heads.get(t[:2], ()):
            if t.startswith(name):
                return code, t[len(name):]
        candidate = DISTRICT.sub("", t)   # without a leading 郡 (only when the address does not match as it is)
        for name, code in heads.get(candidate[:2], ()):
            if candidate.startswith(name):
                return code, candidate[len(name):]
        return None, t

    def street_key(self, pref_code: str, address: str) -> str:
        """text.address_key(self.resolve(pref_code, address)[1]), the street key make_sides needs of each record
        (~180 k nationally, nearly all addresses distinct). A plain address (text.plain_basic) is cut from its one
        basic() form and keyed by text.plain_street_key: it has no space for tail_as_written to keep, and what is
        left after the municipality is plain and basic()'d already."""
        t = text.plain_basic(address)
        if t is not None:
            return text.plain_street_key(self._municipality(pref_code, self._after_prefecture(t))[1])
        return text.address_key(self.resolve(pref_code, address)[1])


# a 郡 at the start of an address (岩手郡雫石町…): the master names towns without it
DISTRICT = re.compile(r"^[^市区町村]{1,6}?郡")


def find_municipality(index: MunicipalityIndex, value: str, pref_code: str) -> tuple[str | None, list[str]]:
    """A municipality written by hand -> (current code in pref_code, other prefectures where it exists).

    Accepts a 6-digit code (check digit verified), a 5-digit code, or the name with or without the
    prefecture and 郡 (岩手県紫波郡紫波町, 紫波郡紫波町, 紫波町). The whole text must be the name: an
    address is not a municipality.
    """
    t = text.basic(value or "")
    if re.fullmatch(r"\d{6}", t):
        cur = index.current(t) if codes.muni_code6_ok(t) else None
        if cur is None:
            return None, []
        return (cur, []) if cur[:2] == pref_code else (None, [cur[:2]])
    if re.fullmatch(r"\d{5}", t):
        return find_municipality(index, codes.muni_code6(t), pref_code)
    code, rest = index.resolve(pref_code, t)
    if code and rest == "":
        return code, []
    others = []
    for other in index._names:
        if other == pref_code:
            continue
        c, r = index.resolve(other, t)
        if c and r == "":
            others.append(other)
    return None, sorted(set(others))
