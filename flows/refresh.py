"""The refresh flow: fetch (when asked), check whether anything changed, read the reference data once, link and
read the reports of each prefecture in its own subflow (nationally: in worker processes, one task), stage, build
the DuckDB file, export the workbooks, publish artifacts (a short one when nothing changed).
Every task calls one plain function from annex.*; nothing here holds logic."""
from __future__ import annotations

import contextlib
import datetime as dt
from concurrent.futures import Future
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from annex import overview, pipeline, runs, workers
from annex.cache import CACHE_DIR, hash_memo
from annex.reference import Prefecture, ReferenceData


@task(name="fetch-reference", persist_result=False)
def fetch_reference(raw: Path) -> str:
    from annex.fetch import fetch_for_refresh
    report, text = fetch_for_refresh(raw)
    # a failed download (or no sources.toml, or a fetch already running) is not a failed refresh: the last good
    # snapshot is used, and the summary says so
    (get_run_logger().info if report is not None and report.ok else get_run_logger().warning)("取得: %s", text)
    return text


@task(name="check-inputs", persist_result=False)
def check_inputs(raw: Path, out: Path, prefs: list[str] | None, as_of: dt.date | None, force: bool) -> tuple:
    man = runs.manifest(raw, prefs, as_of)
    fp = runs.fingerprint(man)
    previous = pipeline.unchanged_since(out, fp, force)
    get_run_logger().info("入力の確認: %s", "前回から変更なし（作り直しません）" if previous is not None else "変更あり")
    return man, fp, previous


@task(name="plan-rebuild", persist_result=False)
def plan_rebuild(raw: Path, out: Path, man: dict, selected: list[Prefecture], force: bool) -> list[str] | None:
    changed = None if force else pipeline.changed_prefectures(raw, out, man, selected)
    get_run_logger().info("作り直す範囲: %s", "すべて" if not changed else
                          f"報告だけが変わった都道府県 {'・'.join(changed)}（ほかは前回の結果を引き継ぎます）")
    return changed


@task(name="read-reference", persist_result=False, retries=1, retry_delay_seconds=2)
def read_reference(raw: Path, prefs: list[Prefecture], as_of: dt.date | None, cache: Path,
                   only: list[str] | None = None, helper: workers.Helper | None = None) -> ReferenceData:
    ref = pipeline.load_reference(raw, prefs, as_of, cache, only, helper)
    log = get_run_logger()
    for r in ref.results:
        a = r.accounting()
        log.info("読込 %s: %s %s 入力%d行 採用%d 却下%d 空行等%d 対象外%d", a["kind"], Path(a["source_file"]).name,
                 a["status"], a["rows_in"], a["accepted"], a["rejected"], a["skipped_blank"], a["out_of_scope"])
    return ref


@task(name="link-facilities", persist_result=False)
def link_facilities(ref: ReferenceData, pref: Prefecture, cache: Path, helper: workers.Helper | None = None,
                    institutions_found: tuple | None = None) -> pipeline.PrefectureLinks:
    result = pipeline.link_prefecture(ref, pref, cache, helper, institutions_found)
    get_run_logger().info("紐付け %s: 医療機関%d 施設%d 紐付け%d 要確認%d", pref.code, result.institutions.height,
                          result.facilities, result.links.height, result.review.height)
    return result


@task(name="read-reports", persist_result=False)
def read_reports(ref: ReferenceData, pref: Prefecture, links: pipeline.PrefectureLinks,
                 checked: Future | None = None):
    """checked: the reports being checked in the helper (pipeline.reports_beside); else they are read here."""
    result = checked.result() if checked is not None else pipeline.read_reports(ref, pref, links)
    log = get_run_logger()
    for r in result.results:
        a = r.accounting()
        log.info("報告 %s: %s 入力%d行 採用%d 却下%d 空行等%d", a["kind"], Path(a["source_file"]).name, a["rows_in"],
                 a["accepted"], a["rejected"], a["skipped_blank"])
    log.info("報告 %s: 医療機関の報告%d行 拠点の報告%d行", pref.code, result.institution_reports.height,
             result.hub_reports.height)
    return result


@flow(name="refresh-prefecture", persist_result=False)
def refresh_prefecture(ref: ReferenceData, pref: Prefecture, cache: Path, helper: workers.Helper | None = None
                       ) -> tuple:
    """One prefecture; with a helper process, its reports are checked there while it links (as pipeline.run)."""
    if helper is None or not helper.parallel:
        links = link_facilities(ref, pref, cache)
        return links, read_reports(ref, pref, links)
    found, checked = pipeline.reports_beside(ref, pref, helper)
    links = link_facilities(ref, pref, cache, helper, found)
    return links, read_reports(ref, pref, links, checked)


@task(name="refresh-prefectures", persist_result=False)
def refresh_prefectures(ref: ReferenceData, prefs: list[Prefecture], cache: Path, returns_dir: Path | None
                        ) -> tuple[list, list]:
    """Many prefectures (a national run): linked and checked side by side in worker processes, one task
    (47 subflows would run one after another, each with Prefect's own overhead); the workers write the return
    workbooks into returns_dir too."""
    per_pref, reports = pipeline.refresh_prefectures(ref, prefs, cache, returns_dir=returns_dir)
    log = get_run_logger()
    for links, rep in zip(per_pref, reports):
        log.info("紐付け %s: 医療機関%d 施設%d 紐付け%d 要確認%d 報告: 医療機関%d行 拠点%d行", links.code,
                 links.institutions.height, links.facilities, links.links.height, links.review.height,
                 rep.institution_reports.height, rep.hub_reports.height)
    return per_pref, reports


@task(name="stage-tables", persist_result=False)
def stage_tables(raw: Path, ref: ReferenceData, per_pref: list, reports: list) -> dict:
    staged = pipeline.stage(raw, ref, per_pref, reports)
    get_run_logger().info("検証・整形: %s", "、".join(f"{k.removeprefix('stg_')} {v.height:,}行" for k, v in staged.items()))
    return staged


@task(name="build-duckdb", persist_result=False)
def build_duckdb(out: Path, staged: dict, run_info: runs.Run) -> Path:
    tmp = pipeline.build_database(out, staged, run_info)
    get_run_logger().info("DuckDB を作成しました（公開前）: %s %s", tmp.name, overview.row_counts(tmp))
    return tmp


@task(name="update-reports", persist_result=False)
def update_reports(raw: Path, out: Path, ref: ReferenceData, reports: list, prefs: list[Prefecture],
                   run_info: runs.Run, as_of: dt.date | None) -> dict:
    """Only some prefectures' reports changed: their rows in a copy of annex.duckdb and their workbooks."""
    return _published(pipeline.update_outputs(raw, out, ref, reports, prefs, run_info, as_of))


@task(name="export", persist_result=False)
def export(out: Path, tmp: Path, ref: ReferenceData, reports: list, prefs: list[Prefecture],
           as_of: dt.date | None, returns_job: Future | None = None) -> dict:
    return _published(pipeline.export(out, tmp, ref, reports, prefs, as_of, returns_job))


def _published(db: Path) -> dict:
    result = pipeline.summary(db)
    get_run_logger().info("出力 %s と別表 %s: 施設%d 医療機関%d 届出%d 紐付け%d エラー%d 警告%d", db,
                          "・".join(result["workbooks"]), result["facilities"], result["institutions"],
                          result["notifications"], result["facility_links"], result["errors"], result["warnings"])
    return result


@task(name="publish-artifacts", persist_result=False)
def publish_artifacts(result: dict, fetched: str | None = None) -> None:
    db = Path(result["database"])
    create_markdown_artifact(overview.markdown(db, result, fetched), key="annex-refresh-summary",
                             description="在宅医療 別表の更新結果")
    rows, total = overview.finding_rows(db)
    if rows:
        create_table_artifact(rows, key="annex-refresh-findings",
                              description="検証結果（エラー・警告）" + overview.findings_cut(len(rows), total))


@task(name="publish-unchanged", persist_result=False)
def publish_unchanged(out: Path, fp: str, previous: dict, fetched: str | None = None) -> None:
    """A run that rebuilt nothing says so in the UI too (and what the outputs it kept hold)."""
    create_markdown_artifact(overview.unchanged_markdown(out, fp, previous, fetched), key="annex-refresh-summary",
                             description="在宅医療 別表の更新結果（変更なし）")


@flow(name="annex-refresh", persist_result=False)
def refresh(raw: str = "raw", out: str = "out", prefs: list[str] | None = None, as_of: dt.date | None = None,
            force: bool = False, wait: float = 0.0, fetch: bool = False) -> dict:
    """参照データと医師会・市町村の報告を読み込み、照合・検証して annex.duckdb・別表・返送用の確認結果を作り直します。
    as_of を指定すると、その日に有効だった参照データの版で作ります（締切前の再実行の再現）。
    fetch を指定すると、先に raw/reference/sources.toml の参照データを取得します（失敗しても前回の版で続けます）。"""
    raw_dir, out_dir = Path(raw), Path(out)
    with runs.lock(out_dir, wait), hash_memo(out_dir / CACHE_DIR), workers.fewer_collections():
        run_info = runs.start(raw_dir, out_dir, prefs, as_of=str(as_of) if as_of else None)
        pipeline.remove_leftovers(out_dir)
        try:
            # fetched before the inputs are checked: what it brings is what the run reads
            fetched = fetch_reference(raw_dir) if fetch else None
            man, fp, previous = check_inputs(raw_dir, out_dir, prefs, as_of, force)
            if previous is None:
                result, changed = _rebuild(raw_dir, out_dir, prefs, as_of, force, man, run_info)
        except BaseException as exc:
            # the run line is written whatever failed (the outputs of the last good run stay in place)
            runs.record_failure(out_dir, run_info, exc)
            raise
        if previous is not None:
            runs.record(out_dir, run_info, "unchanged", fingerprint=fp, summary=previous)
        else:
            runs.record(out_dir, run_info, "success", result.pop("inputs"), fingerprint=fp, summary=result)
            runs.save_manifest(out_dir, run_info, man)
    fetch_note = {"fetch": fetched} if fetched is not None else {}
    if previous is not None:
        publish_unchanged(out_dir, fp, previous, fetched)
        return {**previous, "unchanged": True, "rebuilt": [], **fetch_note}
    publish_artifacts(result, fetched)
    return {**result, "unchanged": False, "rebuilt": changed or "all", **fetch_note}


def _rebuild(raw_dir: Path, out_dir: Path, prefs: list[str] | None, as_of: dt.date | None, force: bool, man: dict,
             run_info: runs.Run) -> tuple[dict, list[str] | None]:
    """The refresh's tasks when something changed: (the published outputs' summary, the prefectures redone when
    only their reports changed, else None)."""
    selected = pipeline.select_prefectures(raw_dir, prefs)
    if len(selected) >= pipeline.PARALLEL_FROM:
        workers.prestart()   # the worker pools of a national run fork from it
    changed = plan_rebuild(raw_dir, out_dir, man, selected, force)
    touched = [p for p in selected if p.code in changed] if changed else selected
    cache = out_dir / CACHE_DIR  # parsed reference files and links, keyed on content
    # a full run of a few prefectures has a helper process for its whole length, as pipeline.run has;
    # it is handed to the tasks (they run in this process; their results are not persisted or cached)
    with contextlib.nullcontext() if changed else pipeline.helper_for(raw_dir, selected, as_of) as helper:
        ref = read_reference(raw_dir, selected, as_of, cache, changed, helper)
        # a full national run: the return workbooks are written by the workers (pipeline.run does it so)
        with pipeline.returns_folder_for(out_dir, selected, wanted=not changed) as returns_dir:
            if len(touched) >= pipeline.PARALLEL_FROM:
                per_pref, reports = refresh_prefectures(ref, touched, cache, returns_dir)
            else:   # a prefecture's own run: one subflow each, its tasks visible in the UI
                done = [refresh_prefecture(ref, p, cache, helper) for p in touched]
                per_pref, reports = [d[0] for d in done], [d[1] for d in done]
            if changed:
                return update_reports(raw_dir, out_dir, ref, reports, selected, run_info, as_of), changed
            staged = stage_tables(raw_dir, ref, per_pref, reports)
            returns_job = pipeline.returns_beside(out_dir, ref, reports, selected, helper, returns_dir)
            tmp = pipeline.built_beside(returns_job, lambda: build_duckdb(out_dir, staged, run_info))
            return export(out_dir, tmp, ref, reports, selected, as_of, returns_job), None
