"""The refresh flow: read the reference data once, link each prefecture in its own subflow, build the
DuckDB file. Every task calls one plain function from annex.pipeline; nothing here holds logic."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from annex import pipeline
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


@flow(name="refresh-prefecture", persist_result=False)
def refresh_prefecture(ref: ReferenceData, pref: Prefecture) -> pipeline.PrefectureLinks:
    return link_facilities(ref, pref)


@task(name="build-duckdb", persist_result=False)
def build_duckdb(raw: Path, out: Path, ref: ReferenceData, per_pref: list) -> dict:
    staged = pipeline.stage(raw, ref, per_pref)
    db = pipeline.write_outputs(out, staged)
    result = pipeline.summary(db, staged)
    get_run_logger().info("出力 %s: 施設%d 医療機関%d 届出%d 紐付け%d エラー%d 警告%d", db, result["facilities"],
                          result["institutions"], result["notifications"], result["facility_links"],
                          result["errors"], result["warnings"])
    return result


@flow(name="annex-refresh", persist_result=False)
def refresh(raw: str = "raw", out: str = "out", prefs: list[str] | None = None) -> dict:
    """参照データを読み込み、医療機関コードと医療情報ネットIDを紐付け、annex.duckdb を作り直します。"""
    raw_dir, out_dir = Path(raw), Path(out)
    selected = pipeline.select_prefectures(raw_dir, prefs)
    ref = read_reference(raw_dir, selected)
    per_pref = [refresh_prefecture(ref, p) for p in selected]
    return build_duckdb(raw_dir, out_dir, ref, per_pref)
