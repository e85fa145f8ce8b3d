"""What a run did, for people watching it: a Markdown summary and the findings as table rows (published as
Prefect artifacts by the flow; plain functions here so they can be tested without Prefect)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from annex import runs

SEVERITY = {"error": "エラー", "warning": "警告"}
CHANGE = {"added": "追加", "removed": "削除", "status_changed": "届出の変化", "kouhou_changed": "在後病の変化",
          "torikumi_changed": "取組の変化", "area_changed": "事業区域の変化", "operator_changed": "運営主体の変化"}
# the findings table artifact shows the first rows only: the Prefect UI pages through a table artifact in the
# browser, and a national run's tens of thousands of findings are read in annex.duckdb or the return workbooks
FINDINGS_SHOWN = 500
# the tables the build-duckdb stage counts in its log line
MAIN_TABLES = {"facilities": "施設", "institutions": "医療機関", "notifications": "届出", "facility_links": "紐付け",
               "link_review": "要確認", "report_files": "報告ファイル", "institution_reports": "医療機関の報告",
               "hub_reports": "拠点の報告", "annex_institutions": "別表の医療機関", "annex_hubs": "別表の拠点",
               "findings": "検証結果"}


def row_counts(db: Path) -> str:
    """「施設 1,234行、医療機関 …」: the rows of the main tables (names are constants, not input)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return "、".join(f"{label} {con.execute(f'SELECT count(*) FROM {table}').fetchone()[0]:,}行"
                        for table, label in MAIN_TABLES.items())
    finally:
        con.close()


def _counts(summary: dict) -> list[str]:
    """The lines of a summary's counts (a run's own, or the one an unchanged run kept)."""
    return [f"- 出力: `{summary['database']}`" + "".join(f"、`{w}`" for w in summary.get("workbooks", [])),
            f"- 医療情報ネット施設 {summary['facilities']:,}／医療機関 {summary['institutions']:,}／紐付け "
            f"{summary['facility_links']:,}（要確認 {summary['link_review']:,}）",
            f"- 報告ファイル {summary['report_files']:,}／医療機関の報告 {summary['institution_reports']:,} 行／"
            f"拠点の報告 {summary['hub_reports']:,} 行",
            f"- 検証結果: エラー {summary['errors']:,} 件、警告 {summary['warnings']:,} 件"]


def _fetched(fetched: str | None) -> list[str]:
    return [] if fetched is None else ["", "## 参照データの取得", "", "```", fetched, "```"]


def findings_cut(shown: int, total: int) -> str:
    """The note that the findings table is cut (empty when it is not)."""
    if shown >= total:
        return ""
    return f"：全 {total:,} 件のうち先頭 {shown:,} 件（全件は annex.duckdb の findings 表と返送用の確認結果に）"


def markdown(db: Path, summary: dict, fetched: str | None = None) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        files = con.execute("""SELECT kind, count(*), sum(rows_in), sum(accepted), sum(rejected),
                                      count(*) FILTER (WHERE status = 'failed')
                               FROM source_files GROUP BY kind ORDER BY kind""").fetchall()
        gaps = con.execute("""SELECT pref_code, home_care_area, institutions, hubs, gap FROM coverage
                              WHERE NOT meets_rule ORDER BY pref_code, area_order""").fetchall()
        changes = con.execute("""SELECT pref_code, entity, change, name, coalesce(before, ''), coalesce(after, '')
                                 FROM changes ORDER BY ALL""").fetchall()
    finally:
        con.close()
    out = ["# 在宅医療 別表の更新結果", "", *_counts(summary)]
    cut = findings_cut(min(FINDINGS_SHOWN, summary["errors"] + summary["warnings"]),
                       summary["errors"] + summary["warnings"])
    if cut:
        out.append(f"- 検証結果の表 annex-refresh-findings{cut}")
    out += ["", "## 入力", "", "| 種類 | ファイル数 | 入力行 | 採用 | 却下 | 読めなかったファイル |", "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {k} | {n} | {ri or 0:,} | {a or 0:,} | {r or 0:,} | {f} |" for k, n, ri, a, r, f in files]
    out += ["", "## 圏域の不足（指針の「各1以上」を満たさない在宅医療圏）", ""]
    out += [f"- {p} {area}: 医療機関 {i}・拠点 {h} — {g}" for p, area, i, h, g in gaps] or ["- なし"]
    out += ["", "## 前回からの変更", ""]
    out += [f"- {p} {'医療機関' if e == 'institution' else '拠点'} {n}: {CHANGE.get(c, c)}"
            + (f"（{b} → {a}）" if b or a else "") for p, e, c, n, b, a in changes] or ["- なし"]
    return "\n".join(out + _fetched(fetched)) + "\n"


def unchanged_markdown(out: Path, fingerprint: str, summary: dict, fetched: str | None = None) -> str:
    """A run that rebuilt nothing: why, and what the outputs it kept (the last build's) hold."""
    built = runs.last_built(out)
    line = next((r for r in reversed(runs.history(out)) if r.get("run_id") == built), {})
    when = line.get("finished_at")
    when = dt.datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if when else "不明"
    text = ["# 在宅医療 別表の更新結果：変更なし", "",
            "入力（raw/ のファイル）もプログラムも条件も前回の作成から変わっていないため、作り直しませんでした"
            "（annex refresh --force で作り直します）。", "",
            f"- 入力の指紋（fingerprint）: `{fingerprint}`",
            f"- 出力を作った実行: `{built or '不明'}`（{when} 終了）",
            *_counts(summary)]
    return "\n".join(text + _fetched(fetched)) + "\n"


def finding_rows(db: Path, limit: int | None = None) -> tuple[list[dict], int]:
    """(the first `limit` (default FINDINGS_SHOWN) findings as table rows, the number of findings)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        total = con.execute("SELECT count(*) FROM findings").fetchone()[0]
        rows = con.execute("""SELECT source_file, sheet, "row", "column", value, severity, message FROM findings
                              ORDER BY severity, source_file, sheet NULLS FIRST, "row" NULLS FIRST LIMIT ?""",
                           [FINDINGS_SHOWN if limit is None else limit]).fetchall()
    finally:
        con.close()
    return [{"ファイル": f, "シート": s or "", "行": r if r is not None else "", "列": c or "", "値": v or "",
             "区分": SEVERITY.get(sv, sv), "内容": m} for f, s, r, c, v, sv, m in rows], total
