"""The refresh flow: read the reference data once, link each prefecture in its own subflow, build the
DuckDB file. Every task calls one plain function from annex.pipeline; nothing here holds logic."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from annex import pipeline, runs
from annex.reference import Prefecture, ReferenceData


@task(name="read-reference", persist_result=False)
def read_reference(raw: Path, prefs: list[Prefecture]) -> ReferenceData:
    ref = pipeline.load_reference(raw, prefs)
    log = get_run_logger()
    for r in ref.results:
        a = r.accounting()
        log.info("読込 %s: %s 入力%d行 採用%d 却下%d 空行等%d 対象外%d", a["kind"], Path(a["source_file"]).name,
                 a["rows_in"], a["accepted"], a["rejected"], a["skipped_blank"], a["out_of_scope"])
    return ref


@task(name="link-facilities", persist_result=False)
def link_facilities(ref: ReferenceData, pref: Prefecture) -> pipeline.PrefectureLinks:
    result = pipeline.link_prefecture(ref, pref)
    get_run_logger().info("紐付け %s: 医療機関%d 施設%d 紐付け%d 要確認%d", pref.code, result.institutions.height,
                          result.facilities, result.links.height, result.review.height)
    return result


@task(name="read-reports", persist_result=False)
def read_reports(ref: ReferenceData, pref: Prefecture, links: pipeline.PrefectureLinks):
    result = pipeline.read_reports(ref, pref, links)
    log = get_run_logger()
    for r in result.results:
        a = r.accounting()
        log.info("報告 %s: %s 入力%d行 採用%d 却下%d 空行等%d", a["kind"], Path(a["source_file"]).name, a["rows_in"],
                 a["accepted"], a["rejected"], a["skipped_blank"])
    log.info("報告 %s: 医療機関の報告%d行 拠点の報告%d行", pref.code, result.institution_reports.height,
             result.hub_reports.height)
    return result


@flow(name="refresh-prefecture", persist_result=False)
def refresh_prefecture(ref: ReferenceData, pref: Prefecture) -> tuple:
    links = link_facilities(ref, pref)
    return links, read_reports(ref, pref, links)


@task(name="build-duckdb", persist_result=False)
def build_duckdb(raw: Path, out: Path, ref: ReferenceData, prefs: list[Prefecture], per_pref: list,
                 reports: list, run_info: runs.Run) -> dict:
    staged = pipeline.stage(raw, ref, per_pref, reports)
    db = pipeline.write_outputs(out, staged, ref, reports, prefs, run_info)
    runs.record(out, run_info, "success", runs.inputs_from(staged["stg_source_files"]))
    result = pipeline.summary(db, staged)
    get_run_logger().info("出力 %s: 施設%d 医療機関%d 届出%d 紐付け%d エラー%d 警告%d", db, result["facilities"],
                          result["institutions"], result["notifications"], result["facility_links"],
                          result["errors"], result["warnings"])
    return result


@flow(name="annex-refresh", persist_result=False)
def refresh(raw: str = "raw", out: str = "out", prefs: list[str] | None = None) -> dict:
    """参照データと医師会・市町村の報告を読み込み、照合・検証して annex.duckdb と返送用の確認結果を作り直します。"""
    raw_dir, out_dir = Path(raw), Path(out)
    run_info = runs.start(raw_dir, out_dir, prefs)
    try:
        selected = pipeline.select_prefectures(raw_dir, prefs)
        ref = read_reference(raw_dir, selected)
        done = [refresh_prefecture(ref, p) for p in selected]
        return build_duckdb(raw_dir, out_dir, ref, selected, [d[0] for d in done], [d[1] for d in done], run_info)
    except BaseException as exc:
        # the run line is written whatever failed (the outputs of the last good run stay in place)
        if not any(r["run_id"] == run_info.run_id for r in runs.history(out_dir)):
            runs.record(out_dir, run_info, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
