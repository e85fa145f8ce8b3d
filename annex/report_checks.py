"""Cross-checks of returned reports against the reference data, and merging them into one entry per
institution / hub.

Severity: 'error' rejects the row (rejected_rows, and the sender gets it back); 'warning' keeps the row
and reports. A rejected row is removed from its file's accepted frame so that, per file,
rows_in = accepted + rejected + skipped_blank still holds.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from annex import codes, text
from annex.areas import Areas
from annex.findings import ReadResult, finding
from annex.municipalities import DISTRICT, MunicipalityIndex, find_municipality
from annex.report_layout import (ISHIKAI, SHICHOSON, hub_kind, institution_type, operator_kind, split_municipalities,
                                 torikumi_numbers, yes_no)
from annex.reports import ReportFile, identify_sender, read_report_rows, validate_reports

REPORT_DIRS = {"ishikai": ISHIKAI, "shichoson": SHICHOSON}
REPORT_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".csv"}

INSTITUTION_REPORT_COLUMNS = {
    "pref_code": pl.String, "inst_code": pl.String, "reported_name": pl.String, "reported_code": pl.String,
    "reported_municipality": pl.String, "reported_type": pl.String, "sender": pl.String,
    **{f"torikumi_{n}": pl.Boolean for n in range(1, 7)}, "note": pl.String,
    "source_file": pl.String, "source_sheet": pl.String, "source_row": pl.Int64, "is_first": pl.Boolean,
}
HUB_REPORT_COLUMNS = {
    "pref_code": pl.String, "hub_id": pl.String, "name": pl.String, "hub_kind": pl.String,
    "area_codes": pl.List(pl.String), "area_text": pl.String, "operator": pl.String, "operator_kind": pl.String,
    "start_date": pl.Date, "start_text": pl.String, "same_as_program": pl.Boolean,
    "same_as_institution": pl.Boolean, **{f"torikumi_{n}": pl.Boolean for n in range(1, 6)}, "note": pl.String,
    "sender": pl.String, "source_file": pl.String, "source_sheet": pl.String, "source_row": pl.Int64,
    "is_first": pl.Boolean,
}


@dataclass
class PrefectureReports:
    pref_code: str
    areas_result: ReadResult
    areas: Areas
    files: list[ReportFile] = field(default_factory=list)
    institution_reports: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=INSTITUTION_REPORT_COLUMNS))
    hub_reports: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=HUB_REPORT_COLUMNS))

    @property
    def results(self) -> list[ReadResult]:
        return [self.areas_result, *(f.result for f in self.files)]


def report_paths(pref_dir: Path) -> dict[str, list[Path]]:
    out = {}
    for kind in REPORT_DIRS:
        d = pref_dir / "reports" / kind
        out[kind] = sorted(p for p in d.glob("*") if p.is_file() and not p.name.startswith((".", "~$"))
                           and p.suffix.lower() in REPORT_SUFFIXES) if d.is_dir() else []
    return out


def _reject(rep: ReportFile, row: dict, column: str | None, value, rule: str, message: str) -> None:
    rep.result.findings.append(finding(rep.path, row["source_sheet"], row["source_row"], column, value, rule, message))


def _warn(rep: ReportFile, row: dict, column: str | None, value, rule: str, message: str) -> None:
    rep.result.findings.append(finding(rep.path, row["source_sheet"], row["source_row"], column, value, rule, message,
                                       "warning"))


def _keep(rep: ReportFile, kept: list[int]) -> None:
    """The file's accepted rows: those at the positions kept (most files keep every row)."""
    if len(kept) != rep.result.accepted.height:
        rep.result.accepted = rep.result.accepted[kept] if kept else rep.result.accepted.head(0)


def _where(prev: dict, sender_name: str | None, rep: ReportFile) -> str:
    """Where an earlier report of the same institution / hub is, as the sender can find it."""
    return f"{Path(prev['source_file']).name} {prev['source_row']}行目" + (
        f"（{sender_name}）" if sender_name and prev["sender"] != rep.sender else "")


_TORIKUMI_FIELDS = [(i, f"torikumi_{i}") for i in range(1, 10)]


def _flags(row: dict, n: int) -> list[bool]:
    listed = torikumi_numbers(row.get("torikumi_list") or "", n) or []
    return [bool(yes_no(row.get(f) or "")) or i in listed for i, f in _TORIKUMI_FIELDS[:n]]


# --- institutions --------------------------------------------------------------------------------
class InstitutionLookup:
    """Institutions of one prefecture (厚生局 名簿 + code list) with their 支援病/支援診 status."""

    def __init__(self, institutions: pl.DataFrame):
        # a row becomes a dict when a report names it (~15,000 of the 87,000 institutions nationally)
        self._frame = institutions
        self._rows: dict[int, dict] = {}
        self._at = {code: i for i, code in enumerate(institutions["inst_code"].to_list())}
        self.by_name: dict[str, list[int]] = {}
        names = institutions["name"].to_list()
        # the keys of every institution (text.name_keys, cached: linking made them), each key once per institution
        keys = list(map(text.name_keys, names))
        by_name = self.by_name
        for i in self._at.values():
            k, full, _ = keys[i]
            if k:
                by_name.setdefault(k, []).append(i)
            if full and full != k:
                by_name.setdefault(full, []).append(i)

    def _row(self, i: int) -> dict:
        if i not in self._rows:
            self._rows[i] = self._frame.row(i, named=True)
        return self._rows[i]

    def by_code(self, code: str) -> dict | None:
        i = self._at.get(code)
        return None if i is None else self._row(i)

    def prefetch(self, codes: list[str | None]) -> None:
        """The rows of these codes made dicts at once, for by_code: one gather, where a row() each costs ~4 µs
        (~15,000 reported codes nationally)."""
        at = self._at
        todo = sorted({at[c] for c in codes if c in at} - self._rows.keys())
        if todo:
            self._rows.update(zip(todo, self._frame[todo].iter_rows(named=True)))

    def by_reported_name(self, name: str, muni: str | None, index: MunicipalityIndex) -> list[dict]:
        hits = {r["inst_code"]: r for k in set(text.name_keys(name)[:2]) if k
                for r in map(self._row, self.by_name.get(k, []))}
        found = list(hits.values())
        if muni and len(found) > 1:
            found = [r for r in found if in_municipality(r["municipality_code"], muni, index)] or found
        return found


def in_municipality(code: str | None, muni: str, index: MunicipalityIndex) -> bool:
    """code is muni, or one of its wards when muni is a 政令市 (a report names 札幌市, the 名簿 札幌市中央区)."""
    return code == muni or (code is not None and index.by_code.get(code, {}).get("parent_code") == muni)


def check_institution_reports(files: list[ReportFile], lookup: InstitutionLookup, areas: Areas,
                              index: MunicipalityIndex, pref_code: str) -> pl.DataFrame:
    rows_out: list[dict] = []
    first_seen: dict[str, dict] = {}
    rows_of = [list(rep.result.accepted.iter_rows(named=True)) for rep in files]
    lookup.prefetch([row.get("inst_code") for rows in rows_of for row in rows])
    for rep, rows in zip(files, rows_of):
        kept = []
        sender_area = set(areas.munis_of_ishikai(rep.sender)) if rep.sender else set()
        for i, row in enumerate(rows):
            flags = _flags(row, 6)
            reported = yes_no(row.get("report") or "")
            if rep.has_report_column and not reported:
                if not any(flags):
                    # a pre-filled row the sender did not tick: not a report, like a blank row
                    rep.result.skipped_blank += 1
                    continue
                _warn(rep, row, "報告", row.get("report"), "report_flag_blank",
                      "報告欄が空ですが取組に○があるため、報告として扱いました。報告しない場合は取組の○を消してください。")
            muni = None
            if row.get("municipality"):
                muni, others = find_municipality(index, row["municipality"], pref_code)
                if muni is None:
                    _warn(rep, row, "所在市町村", row["municipality"], "municipality_unknown",
                          "所在市町村が読み取れません（他県の市町村か誤記）。名簿の所在地を使いました。")
            code = row.get("inst_code")
            inst = lookup.by_code(code) if code else None
            if inst is not None:
                # text.name_keys: (name_key, full_name_key, …), the institution's cached by the linking
                listed, reported = text.name_keys(inst["name"]), text.name_keys(row["name"])
                if listed[0] != reported[0] and listed[1] != reported[1]:
                    _warn(rep, row, "医療機関名", row["name"], "name_differs",
                          f"医療機関コード {code} の名簿上の名称は「{inst['name']}」です。コードを正として名簿の名称を使います。")
            else:
                hits = lookup.by_reported_name(row["name"], muni, index)
                if len(hits) == 1:
                    inst = hits[0]
                    if code:
                        _warn(rep, row, "医療機関コード", code, "code_not_found",
                              f"医療機関コード {code} は名簿にありません。名称から {inst['inst_code']} と判断しました。コードを確認してください。")
                elif len(hits) > 1:
                    _reject(rep, row, "医療機関名", row["name"], "institution_ambiguous",
                            f"同じ名称の医療機関が{len(hits)}件あります（{'・'.join(h['inst_code'] for h in hits[:5])}）。"
                            "医療機関コードを記入してください。")
                    continue
                else:
                    _reject(rep, row, "医療機関名" if not code else "医療機関コード", code or row["name"],
                            "institution_not_found",
                            "厚生局の届出受理医療機関名簿に見つかりません。正式名称（法人名を除いた名称）か医療機関コードを確認してください。"
                            "廃止・名称変更の場合は備考に書いてください。")
                    continue
            if muni and inst["municipality_code"] and not in_municipality(inst["municipality_code"], muni, index):
                _warn(rep, row, "所在市町村", row["municipality"], "municipality_differs",
                      f"名簿の所在地は {index.name_of(inst['municipality_code'])} です。名簿の所在地を使いました。")
            rtype = institution_type(row["reported_type"]) if row.get("reported_type") else None
            _status_finding(rep, row, rtype, inst)
            if rep.sender and inst["municipality_code"] and inst["municipality_code"] not in sender_area:
                _warn(rep, row, "医療機関名", row["name"], "outside_sender_area",
                      f"所在地（{index.name_of(inst['municipality_code'])}）は{rep.sender}の区域外です"
                      f"（区域の医師会: {areas.ishikai_of(inst['municipality_code']) or '設定なし'}）。報告先を確認してください。")
            if not any(flags):
                _warn(rep, row, "取組", None, "no_torikumi",
                      "取組事項①〜⑥に○が一つもありません。行っている取組に○をつけてください。")
            out = {"pref_code": pref_code, "inst_code": inst["inst_code"], "reported_name": row["name"],
                   "reported_code": code, "reported_municipality": row.get("municipality"), "reported_type": rtype,
                   "sender": rep.sender, **{f"torikumi_{n}": flags[n - 1] for n in range(1, 7)},
                   "note": row.get("note"), "source_file": rep.path, "source_sheet": row["source_sheet"],
                   "source_row": row["source_row"], "is_first": True}
            prev = first_seen.get(inst["inst_code"])
            if prev is not None:
                out["is_first"] = False
                same = all(prev[f"torikumi_{n}"] == out[f"torikumi_{n}"] for n in range(1, 7))
                where = _where(prev, prev["sender"], rep)
                _warn(rep, row, "医療機関名", row["name"], "duplicate_report",
                      f"同じ医療機関が {where} でも報告されています。1件にまとめました" +
                      ("。" if same else "（取組の○が異なるため、どちらかに○があれば○としました）。"))
            else:
                first_seen[inst["inst_code"]] = out
            rows_out.append(out)
            kept.append(i)
        _keep(rep, kept)
    return pl.DataFrame(rows_out, schema=INSTITUTION_REPORT_COLUMNS)


def _status_finding(rep: ReportFile, row: dict, rtype: str | None, inst: dict) -> None:
    ref_kind, ref_type = inst.get("shien_kind"), (inst.get("shien_type") or "")[:1]
    ref_label = f"{ref_kind}{ref_type}" if ref_kind else "届出なし"
    if rtype is None:
        if not ref_kind:
            _warn(rep, row, "種別", None, "not_shien",
                  "名簿に在宅療養支援病院・診療所の届出がありません。積極的役割を担う医療機関とする理由を備考に書いてください。")
        return
    if rtype == "なし":
        if ref_kind:
            _warn(rep, row, "種別", row["reported_type"], "status_differs",
                  f"名簿では {inst.get('shien_symbol')} の届出があります。別表には名簿の種別を載せます。")
        else:
            _warn(rep, row, "種別", row["reported_type"], "not_shien",
                  "名簿に在宅療養支援病院・診療所の届出がありません。積極的役割を担う医療機関とする理由を備考に書いてください。")
        return
    if not ref_kind:
        _warn(rep, row, "種別", row["reported_type"], "status_not_in_meibo",
              f"{rtype} と報告されていますが、名簿に在宅療養支援病院・診療所の届出がありません。届出状況を確認してください。")
    elif rtype[:3] != ref_kind or (len(rtype) > 3 and rtype[3] != ref_type):
        _warn(rep, row, "種別", row["reported_type"], "status_differs",
              f"{rtype} と報告されていますが、名簿では {inst.get('shien_symbol') or ref_label} です。別表には名簿の種別を載せます。")


# --- hubs ----------------------------------------------------------------------------------------
def hub_id(pref_code: str, name: str) -> str:
    """Stable across runs: the same hub name (normalised) in the same prefecture is the same hub."""
    return f"{pref_code}-{hashlib.sha1(text.name_key(name).encode()).hexdigest()[:10]}"


def _area_names(areas: Areas) -> dict[str, str]:
    """The prefecture's 在宅医療圏 and 二次医療圏 names, as a 事業区域 may name them (盛岡圏域), by basic() text."""
    return {text.basic(a): a for a in areas.frame["home_care_area"].unique().to_list()} | \
        {text.basic(a): a for a in areas.frame["secondary_area"].unique().to_list()}


def district_towns(institutions: pl.DataFrame, index: MunicipalityIndex, pref_code: str) -> dict[str, list[str]]:
    """郡 (text.basic) -> codes of its towns and villages. The municipality master names no 郡, the reference
    addresses do (岩手県紫波郡矢巾町…); a town where no institution lies is still found when it lies between two
    towns of the 郡 by code, since JIS X 0402 numbers the towns of one 郡 consecutively."""
    towns = sorted(c for c, r in index.by_code.items()
                   if c[:2] == pref_code and r["kind"] in ("町", "村") and index.current(c) == c)
    in_force = set(towns)
    seen: dict[str, set[str]] = {}
    for address in institutions["address"].unique().to_list():
        t = index.strip_prefecture(address or "")
        m = DISTRICT.match(t)
        code = index.resolve(pref_code, t)[0] if m else None
        if code in in_force:
            seen.setdefault(m.group(), set()).add(code)
    placed = {c: d for d, cs in seen.items() for c in cs}
    out = {}
    for d, cs in seen.items():
        run = towns[towns.index(min(cs)):towns.index(max(cs)) + 1]
        out[d] = [c for c in run if placed.get(c, d) == d]
    return out


def _area_codes(rep: ReportFile, row: dict, areas: Areas, index: MunicipalityIndex, pref_code: str,
                area_names: dict[str, str], districts: Callable[[], dict[str, list[str]]]) -> list[str] | None:
    codes_: list[str] = []
    for token in split_municipalities(row["area"]):
        t = text.basic(token)
        if t in ("全域", "市内全域", "町内全域", "村内全域", "区内全域", "全市", "全町", "全村") and rep.sender:
            codes_.append(rep.sender)
            continue
        towns = districts().get(index.strip_prefecture(t)) if t.endswith("郡") else None
        if towns:  # 紫波郡 -> its towns
            codes_.extend(towns)
            _warn(rep, row, "事業区域（市町村）", token, "area_district_expanded",
                  f"「{token}」を{'・'.join(index.name_of(c) for c in towns)}として読みました。"
                  "違う場合は市町村名で書いてください。")
            continue
        area = area_names.get(t.removesuffix("圏域").removesuffix("医療圏").removesuffix("圏")) \
            if t.endswith(("圏域", "医療圏", "圏")) else None
        if area:  # 盛岡圏域 -> its municipalities
            col = "home_care_area" if area in areas.frame["home_care_area"].to_list() else "secondary_area"
            codes_.extend(areas.frame.filter(pl.col(col) == area)["municipality_code"].to_list())
            continue
        if re.fullmatch(r"\d{6}", t) and not codes.muni_code6_ok(t):
            _reject(rep, row, "事業区域（市町村）", token, "area_code_check_digit",
                    f"団体コード「{token}」の検査数字（6桁目）が合いません（{t[:5]} なら {codes.muni_code6(t[:5])}）。"
                    "団体コードを確認するか、市町村名で書いてください。")
            return None
        code, others = find_municipality(index, token, pref_code)
        if code:
            codes_.append(code)
        elif others:
            _reject(rep, row, "事業区域（市町村）", token, "area_other_prefecture",
                    f"「{token}」は他の都道府県（{'・'.join(index.pref_name_by_code.get(o, o) for o in others)}）の市町村です。"
                    "事業区域にはこの県の市町村を書いてください。")
            return None
        else:
            _reject(rep, row, "事業区域（市町村）", token, "area_municipality_unknown",
                    f"事業区域の「{token}」が市町村として見つかりません。市町村名（例: 紫波町）か団体コードで書き、"
                    "複数のときは「・」で区切ってください。")
            return None
    return sorted(set(codes_))


def check_hub_reports(files: list[ReportFile], areas: Areas, index: MunicipalityIndex,
                      pref_code: str, institutions: pl.DataFrame | None = None) -> pl.DataFrame:
    """institutions: the prefecture's, whose addresses tell the towns of a 郡 named as 事業区域."""
    rows_out: list[dict] = []
    first_seen: dict[str, dict] = {}
    area_names = _area_names(areas)
    # looked at only when a 事業区域 names a 郡 (rarely): not once per prefecture
    districts = functools.cache(lambda: {} if institutions is None else district_towns(institutions, index, pref_code))
    for rep in files:
        kept = []
        for i, row in enumerate(rep.result.accepted.iter_rows(named=True)):
            area = _area_codes(rep, row, areas, index, pref_code, area_names, districts)
            if area is None:
                continue
            hkind = hub_kind(row["hub_kind"]) if row.get("hub_kind") else None
            okind = operator_kind(row["operator_kind"]) if row.get("operator_kind") else None
            if hkind is None:
                _warn(rep, row, "拠点の種別", None, "hub_kind_missing",
                      "拠点の種別が空です。病院・診療所・訪問看護事業所・地域医師会等関係団体・保健所・市町村 から選んでください。")
            if okind is None:
                inferred = operator_kind(hkind) if hkind else None
                _warn(rep, row, "運営主体の種別", None, "operator_kind_missing",
                      "運営主体の種別が空です。" + (f"拠点の種別から「{inferred}」としました。" if inferred else "選んでください。"))
                okind = inferred
            if rep.sender and rep.sender not in area:
                _warn(rep, row, "事業区域（市町村）", row["area"], "area_excludes_sender",
                      f"事業区域に報告元の{index.name_of(rep.sender)}が含まれていません。区域を確認してください。")
            flags = _flags(row, 5)
            if not any(flags):
                _warn(rep, row, "取組", None, "no_torikumi", "取組事項①〜⑤に○が一つもありません。行っている取組に○をつけてください。")
            start = None
            if row.get("start"):
                start = codes.parse_date(row["start"])  # readable: pandera checked it
            out = {"pref_code": pref_code, "hub_id": hub_id(pref_code, row["name"]), "name": row["name"],
                   "hub_kind": hkind, "area_codes": area, "area_text": row["area"], "operator": row.get("operator"),
                   "operator_kind": okind, "start_date": start, "start_text": row.get("start"),
                   "same_as_program": bool(yes_no(row.get("same_as_program") or "")),
                   "same_as_institution": bool(yes_no(row.get("same_as_institution") or "")),
                   **{f"torikumi_{n}": flags[n - 1] for n in range(1, 6)}, "note": row.get("note"),
                   "sender": rep.sender, "source_file": rep.path, "source_sheet": row["source_sheet"],
                   "source_row": row["source_row"], "is_first": True}
            prev = first_seen.get(out["hub_id"])
            if prev is not None:
                out["is_first"] = False
                where = _where(prev, index.name_of(prev["sender"]) if prev["sender"] else None, rep)
                _warn(rep, row, "拠点の名称", row["name"], "duplicate_report",
                      f"同じ拠点が {where} でも報告されています。1件にまとめ、事業区域と取組は両方を合わせました。")
            else:
                first_seen[out["hub_id"]] = out
            rows_out.append(out)
            kept.append(i)
        _keep(rep, kept)
    return pl.DataFrame(rows_out, schema=HUB_REPORT_COLUMNS)


# --- one prefecture, or many ---------------------------------------------------------------------
def read_prefecture_reports(pref_dir: Path, pref_code: str, index: MunicipalityIndex, areas_result: ReadResult,
                            areas: Areas, institutions: pl.DataFrame) -> PrefectureReports:
    """Every report under raw/<pref>/reports/, read, validated, cross-checked and merged."""
    return read_many_prefecture_reports([(pref_dir, pref_code, areas_result, areas, institutions)], index)[0]


def read_many_prefecture_reports(prefs: list[tuple[Path, str, ReadResult, Areas, pl.DataFrame]],
                                 index: MunicipalityIndex) -> list[PrefectureReports]:
    """read_prefecture_reports of each (pref_dir, pref_code, areas_result, areas, institutions), with one pandera
    call per kind of report for all of them (a call costs 30–90 ms whatever the rows: two per prefecture
    would be ~5 s nationally). What each prefecture gets is what reading it alone gives."""
    read = [_read_files(pref_dir, pref_code, index, areas_result, areas)
            for pref_dir, pref_code, areas_result, areas, _ in prefs]
    for kind in REPORT_DIRS:
        validate_reports([rep for _, by_kind in read for rep in by_kind.get(kind, [])], REPORT_DIRS[kind])
    for (out, by_kind), (_, pref_code, _, areas, institutions) in zip(read, prefs):
        out.institution_reports = check_institution_reports(by_kind.get("ishikai", []),
                                                            InstitutionLookup(institutions), areas, index, pref_code)
        out.hub_reports = check_hub_reports(by_kind.get("shichoson", []), areas, index, pref_code, institutions)
    return [out for out, _ in read]


def _read_files(pref_dir: Path, pref_code: str, index: MunicipalityIndex, areas_result: ReadResult,
                areas: Areas) -> tuple[PrefectureReports, dict[str, list[ReportFile]]]:
    """The prefecture's report files read and their senders identified, by kind; not yet validated."""
    out = PrefectureReports(pref_code, areas_result, areas)
    ishikai_ids = {text.name_key(n): n for n in areas.ishikai_names()}
    muni_ids = {}
    for code in areas.municipalities():
        name = index.name_of(code) or ""
        muni_ids[text.name_key(name)] = code
        muni_ids[code] = code
    by_kind: dict[str, list[ReportFile]] = {}
    for kind, files in report_paths(pref_dir).items():
        for p in files:
            rep = read_report_rows(p, REPORT_DIRS[kind], pref_code)
            identify_sender(rep, ishikai_ids if kind == "ishikai" else muni_ids)
            by_kind.setdefault(kind, []).append(rep)
            out.files.append(rep)
    return out, by_kind
