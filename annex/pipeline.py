"""The refresh job as plain functions, one per stage; flows/refresh.py wires them into Prefect tasks."""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter, not_
from pathlib import Path
from typing import Callable

import polars as pl

import duckdb

from annex import annex_workbook, linking, returns, runs, warehouse, workers
from annex import cache as cache_mod
from annex.areas import AREA_COLUMNS, AREAS_FILE, read_many_areas
from annex.facility_files import FACILITY_COLUMNS
from annex.findings import FINDING_SCHEMA, ReadResult, findings_frame
from annex.meibo import NOTIFICATION_COLUMNS
from annex.reference import Prefecture, ReferenceData, configured_prefectures, institutions, read_reference, \
    reference_bytes
from annex.report_checks import HUB_REPORT_COLUMNS, INSTITUTION_REPORT_COLUMNS, PrefectureReports, \
    read_many_prefecture_reports
from annex.status import institutions_with_status


class RunError(RuntimeError):
    """The run cannot go on (e.g. no municipality master); previous outputs are left as they were."""


# progress of the long stages, one line each: the CLI shows them on the terminal when it runs without Prefect
# (progress_shown); a Prefect run shows them among its task's logs (PREFECT_LOGGING_EXTRA_LOGGERS=annex)
progress = logging.getLogger("annex")
progress.setLevel(logging.INFO)   # who shows them decides (a handler); the root logger's WARNING would drop them


@contextlib.contextmanager
def progress_shown(stream=None):
    """While inside: the progress lines (time, message) printed on stream (default: standard error)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    progress.addHandler(handler)
    try:
        yield
    finally:
        progress.removeHandler(handler)


def select_prefectures(raw: Path, codes: list[str] | None) -> list[Prefecture]:
    available = {p.code: p for p in configured_prefectures(raw)}
    if not available:
        raise RunError(f"{raw} に都道府県の設定（<都道府県コード>/prefecture.toml）がありません。")
    if not codes:
        return list(available.values())
    wanted = [c.zfill(2) for c in codes]
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise RunError(f"設定のない都道府県コードです: {', '.join(unknown)}（設定済み: {', '.join(available)}）")
    return [available[c] for c in wanted]


def load_reference(raw: Path, prefs: list[Prefecture], as_of: dt.date | None = None,
                   cache: Path | None = None, only: list[str] | None = None,
                   helper: workers.Helper | None = None) -> ReferenceData:
    """The reference data of prefs (only: just these prefectures' rows of it, see read_reference)."""
    ref = read_reference(raw, {p.code for p in prefs}, as_of, cache, set(only) if only is not None else None,
                         helper)
    if ref.master.status != "read" or ref.master.accepted.height == 0:
        msgs = "; ".join(f["message"] for f in ref.master.findings)
        raise RunError(f"市区町村マスタを読めないため中止しました（前回の出力はそのまま残ります）: {msgs}")
    return ref


@dataclass
class PrefectureLinks:
    code: str
    facilities: int               # 医療情報ネット facilities of the prefecture that were matched against
    institutions: pl.DataFrame
    links: pl.DataFrame
    review: pl.DataFrame
    overrides: ReadResult | None
    findings: list[dict]


def pref_notifications(ref: ReferenceData, pref_code: str) -> pl.DataFrame:
    notes = ref.of_prefecture("notifications", pref_code)
    return notes if notes.width else pl.DataFrame(schema=NOTIFICATION_COLUMNS)


def _frame_hash(df: pl.DataFrame) -> str:
    """Content hash of a frame: its schema and each row's hash (independent of chunking and of the Parquet
    round trip), the file path it came from left out. polars' row hash is fixed for a seed within a polars
    version, which is part of the key (writing the rows as CSV and hashing that took 30 times as long)."""
    df = df.drop([c for c in ("source_file",) if c in df.columns])
    return hashlib.sha256(f"{pl.__version__}|{df.schema}".encode() + df.hash_rows(seed=0).to_numpy().tobytes()
                          ).hexdigest()


def link_prefecture(ref: ReferenceData, pref: Prefecture, cache: Path | None = None,
                    helper: workers.Helper | None = None,
                    institutions_found: tuple[pl.DataFrame, list[dict]] | None = None) -> PrefectureLinks:
    """Institutions of one prefecture and their links to 医療情報ネット facilities. helper: part of the
    municipalities are linked there while the rest link here (blocks are independent: see split_blocks).
    institutions_found: what pref_institutions() gave, when the caller already has it."""
    inst, found = institutions_found or pref_institutions(ref, pref)
    fac = ref.of_prefecture("facilities", pref.code)
    override_path = pref.dir / "facility_link_overrides.csv"
    overrides = linking.read_overrides(override_path) if override_path.exists() else None
    if overrides is not None:
        known_i, known_f = set(inst["inst_code"]), set(fac["facility_id"])
        for o in overrides.accepted.iter_rows(named=True):
            if o["inst_code"] not in known_i or o["facility_id"] not in known_f:
                overrides.findings.append({
                    "source_file": str(override_path), "sheet": None, "row": o["source_row"], "column": None,
                    "value": f"{o['inst_code']} / {o['facility_id']}", "rule": "override_unknown",
                    "severity": "warning",
                    "message": "指定した医療機関コードまたは医療情報ネットIDが今回の参照データにありません。指定は使われません。"})
    chosen = overrides.accepted if overrides is not None else None

    def compute() -> dict[str, pl.DataFrame]:
        candidates = matchable(inst, fac, chosen)   # decided for the whole prefecture, before any split
        there = split_blocks(inst, candidates, chosen) if helper is not None and helper.parallel else set()
        if there:
            beside = helper.submit(link_frames, *_blocks_of(inst, candidates, there, True), chosen, ref.index)
            parts = [link_frames(*_blocks_of(inst, candidates, there, False), chosen, ref.index), beside.result()]
        else:
            parts = [link_frames(inst, candidates, chosen, ref.index)]
        return {"links": pl.concat([p["links"] for p in parts]).sort("inst_code"),
                "review": pl.concat([pl.concat([p[kind] for p in parts]).sort(**linking.REVIEW_ORDER)
                                     for kind in ("review", "review_older")])}

    # the links depend only on the content of what is matched: reuse them while that is unchanged
    key = [pref.code, _frame_hash(inst), _frame_hash(fac),
           _frame_hash(chosen) if chosen is not None else ""]
    got = cache_mod.cached_frames(cache, "links", key, ["links", "review"], compute)
    links, review = got["links"], got["review"]
    return PrefectureLinks(pref.code, fac.height, inst, links, review, overrides, found)


def pref_institutions(ref: ReferenceData, pref: Prefecture) -> tuple[pl.DataFrame, list[dict]]:
    """One row per institution of the prefecture (reference.institutions) and the findings made on the way."""
    return institutions(pref_notifications(ref, pref.code), ref.index, ref.of_prefecture("code_list", pref.code))


def link_frames(inst: pl.DataFrame, fac: pl.DataFrame, chosen: pl.DataFrame | None, index
                ) -> dict[str, pl.DataFrame]:
    """Links and review list of these institutions and facilities (module level: it runs in the helper).
    The override file's links first, once: the codes and facilities it links take part in neither pass below, and
    its 紐付け禁止 pairs are kept apart in both. Then codes in the current 名簿; codes known only from the (older)
    code list may take what is left, so a facility that was given a new code is linked to the code its
    notifications are filed under — but not a facility with a current code close to it (linking.hold_contested)."""
    fac_sides = linking.make_sides(fac, "facility_id", "kind", index)
    inst_sides = linking.make_sides(inst, "inst_code", None, index)
    forced = pl.DataFrame(linking.override_links(inst_sides, fac_sides, chosen), schema=linking.LINK_COLUMNS)
    banned = chosen.filter(pl.col("action") == "reject") if chosen is not None else None
    taken_i, taken_f = set(forced["inst_code"].to_list()), set(forced["facility_id"].to_list())
    current = dict(zip(inst["inst_code"].to_list(), inst["in_meibo"].to_list()))
    if taken_i:
        inst_sides = [s for s in inst_sides if s.key not in taken_i]
    in_meibo = list(map(current.__getitem__, map(attrgetter("key"), inst_sides)))
    links, review = linking.link(list(compress(inst_sides, in_meibo)),
                                 [s for s in fac_sides if s.key not in taken_f] if taken_f else fac_sides, banned)
    taken_f |= set(links["facility_id"].to_list())
    links2, review2 = linking.link(list(compress(inst_sides, map(not_, in_meibo))),
                                   [s for s in fac_sides if s.key not in taken_f], banned)
    links2, review, held = linking.hold_contested(links2, review)
    # a facility already under review with a current code does not also need an old-code candidate
    older = review2.filter(~pl.col("facility_id").is_in(review["facility_id"].implode()))
    return {"links": pl.concat([forced, links, links2]).sort("inst_code"), "review": review,
            "review_older": pl.concat([older, held]).sort(**linking.REVIEW_ORDER)}


def matchable(inst: pl.DataFrame, fac: pl.DataFrame, chosen: pl.DataFrame | None) -> pl.DataFrame:
    """The facilities that can be linked to any of these institutions: a dental clinic only to a dental
    (点数表 3) institution (linking.compatible). Read from the 医科 名簿 alone, the ~55,000 dental clinics of
    医療情報ネット are not matched at all (nor counted when a name or an address must be unique among the
    facilities of a municipality: none of them could be the institution anyway); a manual override still
    reaches any facility."""
    if inst.height == 0 or (inst["tensuhyo"] == "3").any():
        return fac
    keep = pl.col("kind") != "dental"
    if chosen is not None and chosen.height:
        keep = keep | pl.col("facility_id").is_in(chosen["facility_id"].implode())
    return fac.filter(keep)


HELPER_SHARE = 0.3         # of a prefecture's linking, done in the helper (which checks its reports first)
SPLIT_FROM_RECORDS = 4000  # institutions + facilities: below this a prefecture is linked in one piece


def split_blocks(inst: pl.DataFrame, fac: pl.DataFrame, chosen: pl.DataFrame | None) -> set[str | None]:
    """The municipalities (blocks) to link in the helper: about HELPER_SHARE of the records, largest first.
    Blocks never share a candidate pair (linking compares only inside a municipality), so linking two sets of
    blocks apart gives the links and review list of linking them together — except for manual overrides,
    which may pair across municipalities: their municipalities stay here, together."""
    if inst.height + fac.height < SPLIT_FROM_RECORDS:
        return set()
    weights = pl.concat([inst.select("municipality_code"), fac.select("municipality_code")]) \
        .group_by("municipality_code").len().sort(["len", "municipality_code"], descending=[True, False],
                                                  nulls_last=True)
    pinned: set[str | None] = set()
    if chosen is not None and chosen.height:
        linked = chosen.filter(pl.col("action") == "link")
        pinned = set(inst.filter(pl.col("inst_code").is_in(linked["inst_code"].implode()))["municipality_code"]) \
            | set(fac.filter(pl.col("facility_id").is_in(linked["facility_id"].implode()))["municipality_code"])
    there, load, goal = set(), 0, HELPER_SHARE * (inst.height + fac.height)
    for code, n in weights.iter_rows():
        if code not in pinned and load + n <= goal:
            there.add(code)
            load += n
    return there


def _blocks_of(inst: pl.DataFrame, fac: pl.DataFrame, codes: set[str | None], inside: bool
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The institutions and facilities in (inside) or outside these municipalities; None is a block too."""
    def pick(df: pl.DataFrame) -> pl.DataFrame:
        member = pl.col("municipality_code").is_in(sorted(c for c in codes if c is not None))
        if None in codes:
            member = member | pl.col("municipality_code").is_null()
        return df.filter(member.fill_null(False) if inside else ~member.fill_null(False))
    return pick(inst), pick(fac)


def refresh_prefectures(ref: ReferenceData, prefs: list[Prefecture], cache: Path | None = None,
                        helper: workers.Helper | None = None, returns_dir: Path | None = None
                        ) -> tuple[list[PrefectureLinks], list[PrefectureReports]]:
    """Link and check the reports of every prefecture: independent of each other, so nationally in worker
    processes, each sent only its own prefecture's reference rows (annex.workers). With a few prefectures and
    a helper process: each prefecture's reports are checked there while it is linked here (the reports need
    its institutions, not its links), and the helper links part of its municipalities too.
    returns_dir (returns_folder_for): the senders' return workbooks are written into it as well, nationally by
    the worker that checked the reports, right after checking them."""
    if len(prefs) < PARALLEL_FROM and helper is not None and helper.parallel:
        done = []
        for i, p in enumerate(prefs, start=1):
            inst_found, reports = reports_beside(ref, p, helper)
            done.append((link_prefecture(ref, p, cache, helper, inst_found), reports))
            progress.info("紐付け: %d/%d 都道府県（%s）", i, len(prefs), p.name)
        per_pref, checked = [links for links, _ in done], [reports.result() for _, reports in done]
        if returns_dir is not None:
            returns.write_into(returns_dir, checked, ref.index, {p.code: p.name for p in prefs})
        return per_pref, checked
    weights = {p.code: ref.of_prefecture("notifications", p.code).height for p in prefs}
    batches = batches_of(prefs, weights, workers.worker_count(len(prefs)))
    made = []

    def job(batch: list[Prefecture]) -> tuple:
        """A batch's arguments, cut when it is handed out (the first batches run while the rest are cut)."""
        refs = [ref.for_prefecture(p.code) if len(prefs) >= PARALLEL_FROM else ref for p in batch]
        made.append(batch)
        if len(made) == len(batches) and len(prefs) >= PARALLEL_FROM:
            ref.release_parts()   # the per-prefecture split is a second copy of 1.5 M 名簿 rows; the jobs have theirs
        return refs, batch, cache, returns_dir
    finished: list[str] = []

    def report(i: int, _results) -> None:
        finished.extend(p.code for p in batches[i])
        progress.info("紐付け・報告の確認: %d/%d 都道府県（%s）", len(finished), len(prefs),
                      "・".join(p.name for p in batches[i]))
    done = workers.map_jobs(_refresh_batch, batches, weights=[sum(weights[p.code] for p in b) for b in batches],
                            parallel_from=PARALLEL_FROM, prepare=job, on_result=report)
    by_code = {p.code: result for batch, results in zip(batches, done) for p, result in zip(batch, results)}
    return [by_code[p.code][0] for p in prefs], [by_code[p.code][1] for p in prefs]


def reports_beside(ref: ReferenceData, pref: Prefecture, helper: workers.Helper
                   ) -> tuple[tuple[pl.DataFrame, list[dict]], Future]:
    """The prefecture's institutions (pref_institutions), and its reports checked in the helper from them (they
    need the institutions, not the links): to link the prefecture while they are checked."""
    found = pref_institutions(ref, pref)
    return found, helper.submit(reports_of, ref.for_prefecture(pref.code), pref, found[0])


def batches_of(prefs: list[Prefecture], weights: dict[str, float], processes: int) -> list[list[Prefecture]]:
    """prefs in batches for that many worker processes, heaviest first, each batch about half a worker's share of
    what is left (guided scheduling): few batches, so that a batch's reports are validated in one pandera call per
    kind (read_many_prefecture_reports), and small ones at the end, so that no worker is left alone with a big one."""
    todo = sorted(prefs, key=lambda p: -weights[p.code])
    batches: list[list[Prefecture]] = []
    left = sum(weights[p.code] for p in todo)
    while todo:
        target, batch, got = left / (2 * max(1, processes)), [], 0.0
        while todo and (not batch or got + weights[todo[0].code] <= target):
            p = todo.pop(0)
            batch.append(p)
            got += weights[p.code]
        batches.append(batch)
        left -= got
    return batches


PARALLEL_FROM = 4   # prefectures: with fewer, starting worker processes (~1 s each) costs more than it saves
# reference files of a run of fewer prefectures, from which it has a helper process: 東京都's 6.9 MB take
# 5.1 s instead of 6.6 s with it; the shipped sample's 0.9 MB 2.9 s instead of 2.2 s
HELPER_BYTES = 3 * 2**20


def helper_for(raw: Path, prefs: list[Prefecture], as_of: dt.date | None = None
               ) -> contextlib.AbstractContextManager[workers.Helper | None]:
    """A full run of a few prefectures: one helper process for the whole run (nationally each stage has its
    workers), unless their files are so small that starting it costs more than it saves (a null context)."""
    if len(prefs) < PARALLEL_FROM and reference_bytes(raw, as_of) >= HELPER_BYTES:
        return workers.Helper()
    return contextlib.nullcontext()


def _refresh_batch(refs: list[ReferenceData], prefs: list[Prefecture], cache: Path | None,
                   returns_dir: Path | None = None) -> list[tuple[PrefectureLinks, PrefectureReports]]:
    links = [link_prefecture(ref, pref, cache) for ref, pref in zip(refs, prefs)]
    reports = reports_of_many(refs, prefs, [found.institutions for found in links])
    if returns_dir is not None:
        returns.write_into(returns_dir, reports, refs[0].index, {p.code: p.name for p in prefs})
    return list(zip(links, reports))


@contextlib.contextmanager
def returns_folder_for(out: Path, prefs: list[Prefecture], wanted: bool = True):
    """A national run's folder for the return workbooks (when wanted), filled by the workers of
    refresh_prefectures (each batch's right after its reports are checked: ~1,900 workbooks, 3 s, that would
    otherwise run beside the database build and slow it down by more than they take); None for a run of a few
    prefectures, whose return workbooks are written beside the build (returns_beside). On leaving, the folder
    goes: published by then, or to be dropped."""
    folder = returns.new_folder(out) if wanted and len(prefs) >= PARALLEL_FROM else None
    try:
        yield folder
    finally:
        if folder is not None:
            returns.discard(folder)


def read_reports(ref: ReferenceData, pref: Prefecture, links: PrefectureLinks) -> PrefectureReports:
    """The 医師会 and 市町村 reports of one prefecture, checked against its reference data."""
    return reports_of(ref, pref, links.institutions)


def reports_of(ref: ReferenceData, pref: Prefecture, inst: pl.DataFrame) -> PrefectureReports:
    """read_reports from the prefecture's institutions (pref_institutions), without its links: module level,
    it runs in the helper while the prefecture links."""
    return reports_of_many([ref], [pref], [inst])[0]


def reports_of_many(refs: list[ReferenceData], prefs: list[Prefecture], insts: list[pl.DataFrame]
                    ) -> list[PrefectureReports]:
    """reports_of of each prefecture, their reports validated together (read_many_prefecture_reports)."""
    todo = []
    areas_read = read_many_areas([(pref.dir / AREAS_FILE, pref.code) for pref in prefs], refs[0].index) if refs else []
    for ref, pref, inst, (areas_result, areas) in zip(refs, prefs, insts, areas_read):
        todo.append((pref.dir, pref.code, areas_result, areas,
                     institutions_with_status(inst, pref_notifications(ref, pref.code))))
    return read_many_prefecture_reports(todo, refs[0].index) if todo else []


def staged_notifications(raw: Path, ref: ReferenceData) -> pl.DataFrame | warehouse.StagedFiles:
    """stg_notifications: the 名簿 files' parse-cache Parquet files where every file with rows has one (a run
    with a cache), read by DuckDB where they are; else the rows themselves."""
    read = [r for r in ref.meibo_files if r.accepted.height]
    if read and all(r.parquet for r in read):
        return warehouse.StagedFiles(tuple((Path(r.parquet), _relative(raw, r.file)) for r in read),
                                     sum(r.accepted.height for r in read))
    notes = ref.notifications()
    return _with_relative_paths(raw, notes if notes.height else pl.DataFrame(schema=NOTIFICATION_COLUMNS))


def _sha256(path: str) -> str | None:
    """For source_files: None for a file that is gone or unreadable (it is listed as failed anyway)."""
    try:
        return cache_mod.file_sha256(path)
    except OSError:
        return None


def _with_relative_paths(raw: Path, df: pl.DataFrame) -> pl.DataFrame:
    """source_file as a path relative to raw/, as officials see it in their folder (mapped once per file)."""
    if df.height == 0:
        return df
    files = df["source_file"].drop_nulls().unique().to_list()
    return df.with_columns(pl.col("source_file").replace({f: _relative(raw, f) for f in files}))


def _relative(raw: Path, path: str) -> str:
    """path relative to raw/: read off the path itself when it was made under raw (how every input is found:
    no filesystem calls, ~5,600 paths nationally), else through both resolved (symlinks, '..')."""
    lexical = _lexically_relative(raw, path)
    if lexical is not None:
        return lexical
    try:
        return str(Path(path).resolve().relative_to(raw.resolve()))
    except ValueError:
        return path


@functools.lru_cache(maxsize=1 << 16)
def _lexically_relative(raw: Path, path: str) -> str | None:
    """path relative to raw read off the two paths alone (None where that cannot be done): it depends on nothing
    else, so it is remembered — stage() asks for each report's path three times (its accounting, its report_files
    row, its findings), and pathlib's parsing was ~0.1 s of the national stage on the run's one busy thread."""
    prefix = str(raw) + "/"
    if os.sep == "/" and not os.altsep and path.startswith(prefix) and prefix != "//" and ".." not in raw.parts \
            and _PLAIN_TAIL.fullmatch(path, len(prefix)):
        return path[len(prefix):]   # as pathlib would give it (tested), without parsing either path
    pure = Path(path)
    if ".." not in pure.parts and pure.is_absolute() == raw.is_absolute() and ".." not in raw.parts:
        try:
            return str(pure.relative_to(raw))
        except ValueError:
            pass
    return None


# a POSIX path's tail that pathlib leaves as it is: no empty, '.' or '..' component, no trailing '/'
_PLAIN_TAIL = re.compile(r"(?!\.{1,2}(?:/|$))[^/]+(?:/(?!\.{1,2}(?:/|$))[^/]+)*")


# stg_source_files: one row per file read (ReadResult.accounting() with its sha256); as_of as ISO text
SOURCE_FILE_COLUMNS = {"kind": pl.String, "source_file": pl.String, "status": pl.String, "as_of": pl.String,
                       "rows_in": pl.Int64, "accepted": pl.Int64, "rejected": pl.Int64, "skipped_blank": pl.Int64,
                       "out_of_scope": pl.Int64, "sha256": pl.String}


def stage(raw: Path, ref: ReferenceData, per_pref: list[PrefectureLinks],
          reports: list[PrefectureReports] | None = None) -> dict[str, pl.DataFrame]:
    """Everything the SQL files read, as stg_* frames. Personal data from reports is not among them."""
    if ref.partial:
        raise ValueError("stage() needs the reference data of every prefecture of the run (read without only=)")
    reports = reports or []
    results = ref.results + [p.overrides for p in per_pref if p.overrides is not None] + \
        [r for pr in reports for r in pr.results]
    staged = _report_frames(raw, results, reports, [f for p in per_pref for f in p.findings])
    facilities = ref.facilities().filter(pl.col("pref_code").is_in([p.code for p in per_pref]))
    areas = [pr.areas.frame.with_columns(pl.lit(pr.pref_code).alias("pref_code")) for pr in reports]
    return {
        "stg_municipalities": ref.master.accepted,
        "stg_facilities": _with_relative_paths(raw, facilities if facilities.height else pl.DataFrame(schema=FACILITY_COLUMNS)),
        "stg_institutions": _with_relative_paths(raw, pl.concat([p.institutions for p in per_pref])),
        "stg_notifications": staged_notifications(raw, ref),
        "stg_facility_links": pl.concat([p.links for p in per_pref]),
        "stg_link_review": pl.concat([p.review for p in per_pref]),
        "stg_areas": pl.concat(areas) if areas else pl.DataFrame(schema={**AREA_COLUMNS, "pref_code": pl.String}),
        **staged,
    }


def stage_reports(raw: Path, reports: list[PrefectureReports]) -> dict[str, pl.DataFrame]:
    """The stg_* frames of the report files alone (for warehouse.update: only reports changed)."""
    results = [f.result for pr in reports for f in pr.files]
    return _report_frames(raw, results, reports, [])


def _report_frames(raw: Path, results: list[ReadResult], reports: list[PrefectureReports],
                   more_findings: list[dict]) -> dict[str, pl.DataFrame]:
    """stg_source_files and stg_findings of `results`, and the report tables of `reports`."""
    findings = [f for r in results for f in r.findings] + more_findings
    fdf = _with_relative_paths(raw, findings_frame(findings))
    accounting = pl.DataFrame([{**r.accounting(), "sha256": _sha256(r.file), "source_file": _relative(raw, r.file)}
                               for r in results], schema=SOURCE_FILE_COLUMNS)
    report_files = pl.DataFrame(
        [{"source_file": _relative(raw, rep.path), "kind": rep.kind.kind, "pref_code": pr.pref_code,
          "sender": rep.sender, "sender_text": rep.sender_text, "sender_source": rep.sender_source,
          "layout": rep.layout, "sheets": rep.sheets} for pr in reports for rep in pr.files],
        schema={"source_file": pl.String, "kind": pl.String, "pref_code": pl.String, "sender": pl.String,
                "sender_text": pl.String, "sender_source": pl.String, "layout": pl.String,
                "sheets": pl.List(pl.String)})
    inst_reports = [pr.institution_reports for pr in reports]
    hub_reports = [pr.hub_reports for pr in reports]
    return {
        "stg_source_files": accounting,
        "stg_findings": fdf if fdf.height else pl.DataFrame(schema=FINDING_SCHEMA),
        "stg_report_files": report_files,
        "stg_institution_reports": _with_relative_paths(
            raw, pl.concat(inst_reports) if inst_reports else pl.DataFrame(schema=INSTITUTION_REPORT_COLUMNS)),
        "stg_hub_reports": _with_relative_paths(
            raw, pl.concat(hub_reports) if hub_reports else pl.DataFrame(schema=HUB_REPORT_COLUMNS)),
    }


def write_outputs(out: Path, staged: dict[str, pl.DataFrame], ref: ReferenceData | None = None,
                  reports: list[PrefectureReports] | None = None, prefs: list[Prefecture] | None = None,
                  run_info: runs.Run | None = None, as_of: dt.date | None = None,
                  helper: workers.Helper | None = None, returns_dir: Path | None = None) -> Path:
    """build_database then export. The return workbooks (from the reports, not the database) are already in
    returns_dir when given (returns_folder_for), else written beside the database build — in the run's helper
    process when there is one — or by export."""
    returns_job = returns_beside(out, ref, reports, prefs, helper, returns_dir)
    tmp = built_beside(returns_job, lambda: build_database(out, staged, run_info))
    return export(out, tmp, ref, reports, prefs, as_of, returns_job)


def returns_beside(out: Path, ref: ReferenceData | None, reports: list[PrefectureReports] | None,
                   prefs: list[Prefecture] | None, helper: workers.Helper | None = None,
                   returns_dir: Path | None = None) -> Future | None:
    """The return workbooks for export to wait for: already written into returns_dir (returns_folder_for), or
    started beside the database build in the helper, when there is one; None: export writes them itself."""
    if returns_dir is not None:
        return workers.done((returns_dir, []))
    if ref is None or not reports:
        return None
    names = {p.code: p.name for p in prefs or []}
    if helper is not None and helper.parallel:
        return helper.submit(returns.prepare, out, reports, ref.index, names)
    return None


def built_beside(returns_job: Future | None, build: Callable[[], Path]) -> Path:
    """build() while returns_job writes the return workbooks; if the build fails, they are discarded."""
    try:
        return build()
    except BaseException:
        if returns_job is not None and returns_job.exception() is None:
            returns.discard(returns_job.result()[0])
        raise


def build_database(out: Path, staged: dict[str, pl.DataFrame], run_info: runs.Run | None = None) -> Path:
    """The new DuckDB file under a temporary name (staged gets its stg_runs: the run log plus this run)."""
    run_info = run_info or runs.start(Path("?"), out, None)
    staged["stg_runs"] = runs.frame(out, run_info, runs.inputs_from(staged["stg_source_files"]))
    return warehouse.build(out, staged)


def export(out: Path, tmp: Path, ref: ReferenceData | None, reports: list[PrefectureReports] | None,
           prefs: list[Prefecture] | None, as_of: dt.date | None = None, returns_job=None,
           rewrite: set[str] | None = None) -> Path:
    """Annex and return workbooks written from the new database under temporary names; then the database is
    swapped in (the commit point), then the return workbooks, then the annex workbooks. Anything failing
    before the database swap leaves every previous output as it was; a run dying after it leaves a database
    its success line does not vouch for, which the next run rebuilds (unchanged_since).

    rewrite (after warehouse.update): only these prefectures' annex and return workbooks are written; the
    others' published ones are kept (the national summary is always rewritten)."""
    books: list[tuple[Path, Path]] = []
    staged_returns = None
    as_of = as_of or dt.date.today()
    targets = [p.code for p in prefs or [] if rewrite is None or p.code in rewrite]
    many = len(targets) >= PARALLEL_FROM
    # many annex workbooks (from the database): every other prefecture's, and the national summary, in a
    # worker, the rest here after the return workbooks (from the reports) — unless those were started beside
    # the database build (returns_job: write_outputs), which leaves this process free to start on its share
    there = worker_share(tmp, targets) if many else set(targets)
    annex_job = workers.start(write_workbooks, tmp, out, prefs or [], as_of, there, True, parallel=many)
    try:
        if returns_job is None and ref is not None and (reports or rewrite is not None):
            staged_returns, _ = returns.prepare(out, reports or [], ref.index, {p.code: p.name for p in prefs or []})
        if many:
            books = write_workbooks(tmp, out, prefs or [], as_of, set(targets) - there, False)
        if returns_job is not None:
            staged_returns = returns_job.result()[0]
        if staged_returns is not None and rewrite is not None:
            returns.carry_over(staged_returns, out, rewrite)
        books = books + annex_job.result()
        db = warehouse.publish(tmp, out)
        if staged_returns is not None:
            returns.publish(staged_returns, out)
        for part, final in books:
            os.replace(part, final)
        # workbooks of prefectures this run did not cover would no longer match annex.duckdb
        written = {final.name for _, final in books} | {
            annex_workbook.annex_file_name(p.code, p.name) for p in prefs or [] if rewrite is not None and p.code not in rewrite}
        for stale in [*out.glob(annex_workbook.annex_file_name("*", "*")), out / annex_workbook.NATIONAL_FILE_NAME]:
            if stale.name not in written and stale.exists():
                stale.unlink()
        return db
    finally:
        if annex_job.exception() is None and not set(annex_job.result()) <= set(books):
            books = books + annex_job.result()   # something else failed: its workbooks go too
        if staged_returns is None and returns_job is not None and returns_job.exception() is None:
            staged_returns = returns_job.result()[0]
        warehouse.discard(tmp)
        for part, _ in books:
            part.unlink(missing_ok=True)
        if staged_returns is not None:
            returns.discard(staged_returns)


# the cost of an annex workbook in rows of its tables (~0.1 ms a row): what one costs whatever its rows, and
# the national summary (measured on the national synthetic set: 13 東京都 0.26 s for 1,574 rows, 47 沖縄 0.11 s
# for 316)
WORKBOOK_ROWS, SUMMARY_ROWS = 150, 300


def worker_share(db: Path, targets: list[str]) -> set[str]:
    """The prefectures whose annex workbooks export's worker writes, with the national summary: about half the
    work by the rows each workbook shows, heaviest first to the side with less (alternate prefectures left
    東京都 and 大阪府 on the same side: 1.36 against 1.01 s)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = dict(con.execute("""SELECT pref_code, count(*) FROM (
                                       SELECT pref_code FROM annex_institutions UNION ALL
                                       SELECT pref_code FROM annex_hubs UNION ALL
                                       SELECT pref_code FROM candidates UNION ALL
                                       SELECT pref_code FROM coverage) GROUP BY 1""").fetchall())
    finally:
        con.close()
    load = {"here": 0, "there": SUMMARY_ROWS}
    there = set()
    for code in sorted(targets, key=lambda c: (-rows.get(c, 0), c)):
        side = min(load, key=lambda k: (load[k], k))
        load[side] += rows.get(code, 0) + WORKBOOK_ROWS
        if side == "there":
            there.add(code)
    return there


def write_workbooks(db: Path, out: Path, prefs: list[Prefecture], as_of: dt.date,
                    only: set[str] | None = None, national: bool = True) -> list[tuple[Path, Path]]:
    """Each prefecture's annex workbook (only those in `only` when given) and the national summary when
    several run together (and national), written from the new database under temporary names: (temporary,
    final) pairs for the caller to swap in. Two processes may write from the same database at once (each
    opens it read-only)."""
    pairs: list[tuple[Path, Path]] = []
    con = duckdb.connect(str(db), read_only=True)
    try:
        targets = [(p, out / annex_workbook.annex_file_name(p.code, p.name)) for p in prefs
                   if only is None or p.code in only]
        data = annex_workbook.annex_data(con, [p.code for p, _ in targets]) if targets else None
        for p, final in targets:
            part = out / f".{final.name}.{uuid.uuid4().hex}.tmp"
            pairs.append((part, final))
            annex_workbook.write_annex(con, part, p.code, p.name, as_of, data)
        if len(prefs) > 1 and national:
            final = out / annex_workbook.NATIONAL_FILE_NAME
            part = out / f".{final.name}.{uuid.uuid4().hex}.tmp"
            pairs.append((part, final))
            annex_workbook.write_national_summary(con, part, [(p.code, p.name) for p in prefs], as_of)
    except BaseException:
        for part, _ in pairs:
            part.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    return pairs


def run(raw: Path, out: Path, pref_codes: list[str] | None = None, *, as_of: dt.date | None = None,
        force: bool = False, wait: float = 0.0) -> dict:
    """The whole refresh without Prefect (used by tests and as the reference for the flow).

    One run at a time per output folder (runs.lock). When nothing it depends on changed since the last good
    run (runs.fingerprint), nothing is rebuilt and that run's summary is returned with unchanged=True. When
    only some prefectures' reports changed (changed_prefectures), only those are read again and their rows
    and workbooks replaced (update_outputs); otherwise everything is rebuilt.
    """
    with runs.lock(out, wait), cache_mod.hash_memo(out / cache_mod.CACHE_DIR), workers.fewer_collections():
        if _rebuilds_everything(raw, out, pref_codes, force):
            workers.prestart()   # its imports overlap the hashing of the inputs (~0.3 s nationally) and the master
        info = runs.start(raw, out, pref_codes, as_of=str(as_of) if as_of else None)
        man = runs.manifest(raw, pref_codes, as_of)
        fp = runs.fingerprint(man)
        previous = unchanged_since(out, fp, force)
        if previous is not None:
            runs.record(out, info, "unchanged", fingerprint=fp, summary=previous)
            return {**previous, "unchanged": True, "rebuilt": []}
        remove_leftovers(out)
        try:
            prefs = select_prefectures(raw, pref_codes)
            if len(prefs) >= PARALLEL_FROM:
                workers.prestart()   # the worker pools of a national run fork from it
            cache = out / cache_mod.CACHE_DIR
            changed = None if force else changed_prefectures(raw, out, man, prefs)
            t0 = time.perf_counter()
            if changed:
                progress.info("報告だけが変わった都道府県（%s）を作り直します", "・".join(changed))
                # read as the last build read it, for every prefecture (the parse cache's entries are keyed on
                # the prefectures read); when only reports changed, just those prefectures' rows are kept
                ref = load_reference(raw, prefs, as_of, cache, changed)
                _read_line(ref, t0)
                per_pref, reports = refresh_prefectures(ref, [p for p in prefs if p.code in changed], cache)
                db = update_outputs(raw, out, ref, reports, prefs, info, as_of)
            else:
                progress.info("作り直します: %d 都道府県", len(prefs))
                mark = cache_mod.prune_mark(cache)
                with helper_for(raw, prefs, as_of) as helper:
                    ref = load_reference(raw, prefs, as_of, cache, helper=helper)
                    _read_line(ref, t0)
                    with returns_folder_for(out, prefs) as returns_dir:
                        per_pref, reports = refresh_prefectures(ref, prefs, cache, helper, returns_dir)
                        staged = stage(raw, ref, per_pref, reports)
                        progress.info("DuckDB と別表を作成中（%.1f 秒経過）", time.perf_counter() - t0)
                        db = write_outputs(out, staged, ref, reports, prefs, info, as_of, helper, returns_dir)
                # what this rebuild did not use of the cache is from older inputs or code
                if removed := cache_mod.prune(cache, mark):
                    progress.info("キャッシュから使われなくなった解析結果を %d ファイル削除しました", len(removed))
            progress.info("公開しました: %s（%.1f 秒）", db, time.perf_counter() - t0)
            result = summary(db)
        except BaseException as exc:
            runs.record_failure(out, info, exc)
            raise
        runs.record(out, info, "success", result.pop("inputs"), fingerprint=fp, summary=result)
        runs.save_manifest(out, info, man)
        return {**result, "unchanged": False, "rebuilt": sorted(changed) if changed else "all"}


def _rebuilds_everything(raw: Path, out: Path, pref_codes: list[str] | None, force: bool) -> bool:
    """Whether the run is sure, before hashing anything, to rebuild many prefectures in worker processes: no
    build to compare with (or force) and at least PARALLEL_FROM prefectures. Otherwise the fork server is
    started once the run knows it rebuilds (a run with nothing changed never needs it)."""
    try:
        return (force or runs.last_success(out) is None) and \
            len(pref_codes or configured_prefectures(raw)) >= PARALLEL_FROM
    except Exception:   # an unreadable prefecture.toml: the run itself reports it
        return False


def _read_line(ref: ReferenceData, t0: float) -> None:
    failed = sum(1 for r in ref.results if r.status == "failed")
    progress.info("参照データを読みました: %d ファイル%s（%.1f 秒）", len(ref.results),
                  f"、うち読めなかったもの {failed}" if failed else "", time.perf_counter() - t0)


def changed_prefectures(raw: Path, out: Path, man: dict, prefs: list[Prefecture]) -> list[str] | None:
    """The prefectures whose reports alone changed since the last build (files under <pref>/reports/ added,
    edited or removed), when everything else is as it was: the reference files, every prefecture's
    configuration and link overrides, the code, the parameters, and the published outputs that are kept
    (annex.duckdb built by that run, the other prefectures' annex workbooks). None: rebuild everything."""
    last = runs.built_manifest(out)
    if last is None or last.get("params") != man["params"] or last.get("code") != man["code"] \
            or not _database_of_last_build(out):
        return None
    old, new = last.get("files") or {}, man["files"]
    report_dirs = {(p.dir / "reports").resolve(): p.code for p in prefs}
    changed: set[str] = set()
    for rel in old.keys() | new.keys():
        if old.get(rel) == new.get(rel):
            continue
        code = next((c for d, c in report_dirs.items() if (raw / rel).resolve().is_relative_to(d)), None)
        if code is None:
            return None
        changed.add(code)
    kept = [p for p in prefs if p.code not in changed]
    if not changed or not all((out / annex_workbook.annex_file_name(p.code, p.name)).exists() for p in kept):
        return None
    return sorted(changed)


def update_outputs(raw: Path, out: Path, ref: ReferenceData, reports: list[PrefectureReports],
                   prefs: list[Prefecture], run_info: runs.Run, as_of: dt.date | None = None) -> Path:
    """Only some prefectures' reports changed: their rows replaced in a copy of annex.duckdb
    (warehouse.update), their annex and return workbooks rewritten, the national summary rewritten; the
    rest carried over. Published as a full run is (export). Their return workbooks are written in a thread
    while DuckDB updates the copy (its statements run without holding the interpreter)."""
    codes = {pr.pref_code for pr in reports}
    staged = stage_reports(raw, reports)
    with ThreadPoolExecutor(1) as pool:
        returns_job = pool.submit(returns.prepare, out, reports, ref.index, {p.code: p.name for p in prefs})
        tmp = built_beside(returns_job, lambda: warehouse.update(
            out, staged, sorted(codes), lambda inputs: runs.frame(out, run_info, inputs)))
        return export(out, tmp, ref, reports, prefs, as_of, returns_job, rewrite=codes)


def skip_if_unchanged(raw: Path, out: Path, pref_codes: list[str] | None, as_of: dt.date | None = None,
                      force: bool = False, wait: float = 0.0) -> dict | None:
    """For the CLI, before starting Prefect at all: when nothing changed since the last good run, record an
    'unchanged' run and return its summary (a nightly run with nothing new takes about a second)."""
    with runs.lock(out, wait), cache_mod.hash_memo(out / cache_mod.CACHE_DIR):
        fp = runs.fingerprint(raw, pref_codes, as_of)
        previous = unchanged_since(out, fp, force)
        if previous is not None:
            runs.record(out, runs.start(raw, out, pref_codes, as_of=str(as_of) if as_of else None), "unchanged",
                        fingerprint=fp, summary=previous)
            return {**previous, "unchanged": True, "rebuilt": []}
    return None


def remove_leftovers(out: Path) -> list[str]:
    """Temporary files of a run that was killed (SIGKILL, power loss): safe to remove while we hold the lock,
    since no other run can be writing them."""
    gone = []
    returns.recover(out)   # the previous returns/ folder, if a run died in the middle of swapping it
    if out.is_dir():
        for p in out.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".tmp") or ".tmp." in p.name or
                                           p.name.startswith(".returns-")):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                gone.append(p.name)
    return gone


def unchanged_since(out: Path, fp: str, force: bool) -> dict | None:
    """The last good run's summary when its fingerprint is fp and its outputs are still there."""
    last = runs.last_success(out)
    if force or last is None or last.get("fingerprint") != fp or not _database_of_last_build(out):
        return None
    return last.get("summary")


def _database_of_last_build(out: Path) -> bool:
    """Whether annex.duckdb is there and was built by the last run the log records as successful (not by a
    run that died after swapping it in: then it is not the last good run's output)."""
    db = out / warehouse.DB_NAME
    return db.exists() and warehouse.built_by(db) == runs.last_built(out)


def summary(db: Path) -> dict:
    """What the run produced, counted in the published database (the same however it was built), with the
    inputs it lists (for the run log)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        def count(sql: str) -> int:
            return con.execute(sql).fetchone()[0]
        result = {"database": str(db)}
        for key, table in (("facilities", "facilities"), ("institutions", "institutions"),
                           ("notifications", "notifications"), ("facility_links", "facility_links"),
                           ("link_review", "link_review"), ("report_files", "report_files"),
                           ("institution_reports", "institution_reports"), ("hub_reports", "hub_reports")):
            result[key] = count(f"SELECT count(*) FROM {table}")
        result["workbooks"] = sorted(p.name for p in db.parent.glob("*_在宅医療_*.xlsx"))
        result["errors"] = count("SELECT count(*) FROM findings WHERE severity = 'error'")
        result["warnings"] = count("SELECT count(*) FROM findings WHERE severity = 'warning'")
        result["failed_files"] = [r[0] for r in con.execute(
            "SELECT source_file FROM source_files WHERE status = 'failed' ORDER BY source_file").fetchall()]
        result["inputs"] = warehouse.dict_rows(con.execute(
            "SELECT source_file, kind, sha256, rows_in, accepted, rejected FROM source_files ORDER BY kind, source_file"))
    finally:
        con.close()
    return result
