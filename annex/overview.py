"""What a run did, for people watching it: a Markdown summary and the findings as table rows (published as
Prefect artifacts by the flow; plain functions here so they can be tested without Prefect)."""
from __future__ import annotations

from pathlib import Path

import duckdb

SEVERITY = {"error": "エラー", "warning": "警告"}
CHANGE = {"added": "追加", "removed": "削除", "status_changed": "届出の変化", "kouhou_changed": "在後病の変化",
          "torikumi_changed": "取組の変化", "area_changed": "事業区域の変化", "operator_changed": "運営主体の変化"}


def markdown(db: Path, summary: dict) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        files = con.execute("""SELECT kind, count(*), sum(rows_in), sum(accepted), sum(rejected),
                                      count(*) FILTER (WHERE status = 'failed')
                               FROM source_files GROUP BY kind ORDER BY kind""").fetchall()
        sev = dict(con.execute("SELECT severity, count(*) FROM findings GROUP BY 1").fetchall())
        gaps = con.execute("""SELECT pref_code, home_care_area, institutions, hubs, gap FROM coverage
                              WHERE NOT meets_rule ORDER BY pref_code, home_care_area""").fetchall()
        changes = con.execute("""SELECT pref_code, entity, change, name, coalesce(before, ''), coalesce(after, '')
                                 FROM changes ORDER BY ALL""").fetchall()
    finally:
        con.close()
    out = ["# 在宅医療 別表の更新結果", "",
           f"- 出力: `{summary['database']}`" + "".join(f"、`{w}`" for w in summary.get("workbooks", [])),
           f"- 医療情報ネット施設 {summary['facilities']:,}／医療機関 {summary['institutions']:,}／紐付け "
           f"{summary['facility_links']:,}（要確認 {summary['link_review']:,}）",
           f"- 報告ファイル {summary['report_files']:,}／医療機関の報告 {summary['institution_reports']:,} 行／"
           f"拠点の報告 {summary['hub_reports']:,} 行",
           f"- 検証結果: エラー {sev.get('error', 0):,} 件、警告 {sev.get('warning', 0):,} 件", "",
           "## 入力", "", "| 種類 | ファイル数 | 入力行 | 採用 | 却下 | 読めなかったファイル |", "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {k} | {n} | {ri or 0:,} | {a or 0:,} | {r or 0:,} | {f} |" for k, n, ri, a, r, f in files]
    out += ["", "## 圏域の不足（指針の「各1以上」を満たさない在宅医療圏）", ""]
    out += [f"- {p} {area}: 医療機関 {i}・拠点 {h} — {g}" for p, area, i, h, g in gaps] or ["- なし"]
    out += ["", "## 前回からの変更", ""]
    out += [f"- {p} {'医療機関' if e == 'institution' else '拠点'} {n}: {CHANGE.get(c, c)}"
            + (f"（{b} → {a}）" if b or a else "") for p, e, c, n, b, a in changes] or ["- なし"]
    return "\n".join(out) + "\n"


def finding_rows(db: Path, limit: int = 500) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""SELECT source_file, sheet, "row", "column", value, severity, message FROM findings
                              ORDER BY severity, source_file, sheet NULLS FIRST, "row" NULLS FIRST LIMIT ?""",
                           [limit]).fetchall()
    finally:
        con.close()
    return [{"ファイル": f, "シート": s or "", "行": r if r is not None else "", "列": c or "", "値": v or "",
             "区分": SEVERITY.get(sv, sv), "内容": m} for f, s, r, c, v, sv, m in rows]
