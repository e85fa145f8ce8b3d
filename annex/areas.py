"""Prefecture configuration raw/<pref>/areas.csv: 在宅医療圏, 二次医療圏 and 郡市医師会 of each municipality.

A CSV officials edit in Excel (UTF-8 with BOM, or CP932 after Excel's 'CSV' save), one row per municipality:
団体コード,市町村名,二次医療圏,在宅医療圏,郡市医師会. The code wins over the name; a name that does not match
the code is reported, as is a municipality of the prefecture that no row places in an area.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from annex import codes, text
from annex.csvio import EncodingError, decode, rows_with_line_numbers
from annex.findings import ReadResult, failed_file, finding, validate_each
from annex.municipalities import MunicipalityIndex
from schemas.area_config import AreaConfig

AREAS_FILE = "areas.csv"
AREA_HEADER = {"団体コード": "municipality_code", "市町村名": "municipality_name", "二次医療圏": "secondary_area",
               "在宅医療圏": "home_care_area", "郡市医師会": "ishikai"}
AREA_COLUMNS = {**{c: pl.String for c in AREA_HEADER.values()}, "source_row": pl.Int64}


@dataclass
class Areas:
    """Who covers what in one prefecture."""
    pref_code: str
    frame: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=AREA_COLUMNS))
    _cached: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def municipalities(self) -> list[str]:
        return self.frame["municipality_code"].to_list()

    def ishikai_names(self) -> list[str]:
        return list(dict.fromkeys(self.frame["ishikai"].to_list()))

    def ishikai_of(self, muni: str | None) -> str | None:
        return self._by_muni().get(muni, (None, None))[0]

    def area_of(self, muni: str | None) -> str | None:
        return self._by_muni().get(muni, (None, None))[1]

    def munis_of_ishikai(self, name: str) -> list[str]:
        return list(self._lookups()[1].get(name, []))

    def _by_muni(self) -> dict[str, tuple[str | None, str | None]]:
        return self._lookups()[0]

    def _lookups(self) -> tuple[dict, dict]:
        """municipality -> (医師会, 在宅医療圏) and 医師会 -> municipalities, built once per frame (the report checks
        ask for every row of every report)."""
        if self._cached is None or self._cached[0] is not self.frame:
            by_muni, by_ishikai = {}, {}
            for muni, ishikai, area in self.frame.select("municipality_code", "ishikai", "home_care_area").iter_rows():
                by_muni.setdefault(muni, (ishikai, area))
                by_ishikai.setdefault(ishikai, []).append(muni)
            self._cached = (self.frame, (by_muni, by_ishikai))
        return self._cached[1]

    def ishikai_by_key(self) -> dict[str, str]:
        return {text.name_key(n): n for n in self.ishikai_names()}


def read_areas(path: Path, pref_code: str, index: MunicipalityIndex) -> tuple[ReadResult, Areas]:
    return read_many_areas([(path, pref_code)], index)[0]


def read_many_areas(files: list[tuple[Path, str]], index: MunicipalityIndex) -> list[tuple[ReadResult, Areas]]:
    """read_areas of each (path, prefecture code), the files validated in one pandera call (validate_each; a
    national run's workers read a batch of prefectures each)."""
    parsed = [_parse(path) for path, _ in files]
    readable = [i for i, p in enumerate(parsed) if not isinstance(p, ReadResult)]
    checked = dict(zip(readable, validate_each([parsed[i][0] for i in readable], AreaConfig,
                                               [str(files[i][0]) for i in readable])))
    out = []
    for i, ((path, pref_code), got) in enumerate(zip(files, parsed)):
        if isinstance(got, ReadResult):
            out.append((got, Areas(pref_code)))
        else:
            ok, found = checked[i]
            out.append(_finish(path, pref_code, index, ok, found, *got[1:]))
    return out


def _parse(path: Path) -> ReadResult | tuple[pl.DataFrame, int, int]:
    """The file's rows as text (団体コード with its check digit), its rows and blank rows; or the failed file."""
    kind = "area_config"
    try:
        txt, _ = decode(path.read_bytes())
    except FileNotFoundError:
        return failed_file(kind, path, "missing_file",
                           f"圏域の設定ファイル {path.name} がありません。団体コード,市町村名,二次医療圏,在宅医療圏,郡市医師会 の"
                           "CSVを作ってください。医師会の区域の確認と圏域別の集計ができません。",
                           empty_schema=AREA_COLUMNS)
    except (OSError, EncodingError) as exc:
        return failed_file(kind, path, "unreadable", f"圏域の設定ファイルを読めません: {exc}",
                           empty_schema=AREA_COLUMNS)
    rows = list(rows_with_line_numbers(txt))
    header = [text.basic(h) for h in rows[0][1]] if rows else []
    missing = [h for h in AREA_HEADER if h not in header]
    if missing:
        return failed_file(kind, path, "missing_column", f"圏域の設定ファイルに必要な列がありません: {'・'.join(missing)}",
                           rows_in=max(len(rows) - 1, 0), empty_schema=AREA_COLUMNS)
    idx = {AREA_HEADER[h]: header.index(h) for h in AREA_HEADER}
    records, blank = [], 0
    for line, fields in rows[1:]:
        if not any(f.strip() for f in fields):
            blank += 1
            continue
        rec = {c: (fields[i].strip() or None) if i < len(fields) else None for c, i in idx.items()}
        code = text.basic(rec["municipality_code"] or "")
        if len(code) == 5 and code.isdigit():
            code = codes.muni_code6(code)  # Excel drops the check digit column in some exports
        rec["municipality_code"] = code
        rec["source_row"] = line
        records.append(rec)
    return pl.DataFrame(records, schema=AREA_COLUMNS), len(rows) - 1, blank


def _finish(path: Path, pref_code: str, index: MunicipalityIndex, ok: pl.DataFrame, found: list[dict],
            rows_in: int, blank: int) -> tuple[ReadResult, Areas]:
    """The validated rows checked against the municipality master: codes of this prefecture in force, names
    that match them, and every municipality placed."""
    areas = Areas(pref_code)
    keep = []
    for r in ok.iter_rows(named=True):
        code = r["municipality_code"]
        current = index.current(code) if codes.muni_code6_ok(code) else None
        if current is None or code[:2] != pref_code:
            found.append(finding(path, None, r["source_row"], "団体コード", code, "municipality_unknown",
                                 f"団体コード {code} はこの都道府県（{pref_code}）の市町村として見つかりません。"
                                 "検査数字を含む6桁のコードか確認してください。"))
            continue
        official = index.name_of(current)
        if r["municipality_name"] and text.basic(r["municipality_name"]) != text.basic(official):
            found.append(finding(path, None, r["source_row"], "市町村名", r["municipality_name"], "name_mismatch",
                                 f"団体コード {code} は「{official}」です。コードのほうを採用しました。", "warning"))
        keep.append({**r, "municipality_code": current, "municipality_name": official})
    accepted = pl.DataFrame(keep, schema=AREA_COLUMNS)
    areas.frame = pl.DataFrame([*keep, *_wards_of_cities(keep, index)], schema=AREA_COLUMNS)
    placed = set(areas.frame["municipality_code"])
    for code, row in sorted(index.by_code.items()):
        if (code[:2] == pref_code and row["kind"] != "都道府県" and not row["valid_to"] and code not in placed
                and not row.get("parent_code")):
            found.append(finding(path, None, None, "団体コード", code, "municipality_not_placed",
                                 f"{row['name']}（{code}）がどの圏域にも入っていません。行を追加してください。", "warning"))
    res = ReadResult("area_config", str(path), accepted, found, rows_in=rows_in, skipped_blank=blank)
    return res, areas


def _wards_of_cities(rows: list[dict], index: MunicipalityIndex) -> list[dict]:
    """The wards of each 政令市 placed by a row, where no row places them, in the city's 圏域 and 医師会 (and its
    line of the file): institutions and facilities lie in wards (their addresses and codes name them), while a
    plan's table may list the city alone — as placed, its wards would otherwise count nowhere."""
    placed = {r["municipality_code"] for r in rows}
    wards: dict[str, list[str]] = {}
    for code, row in sorted(index.by_code.items()):
        if row.get("parent_code") and not row["valid_to"] and code not in placed:
            wards.setdefault(index.current(row["parent_code"]) or row["parent_code"], []).append(code)
    return [{**r, "municipality_code": w, "municipality_name": index.name_of(w)}
            for r in rows for w in wards.get(r["municipality_code"], [])]
