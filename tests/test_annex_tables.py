"""The analysts' annex tables: 参考３ counts against an independent count, reruns, and `changes`."""
from __future__ import annotations

import csv

import duckdb
import polars as pl

from annex import warehouse
from annex.pipeline import run


def test_resource_counts_equal_an_independent_count(sample_run):
    db, _ = sample_run
    con = duckdb.connect(str(db), read_only=True)
    status = pl.from_arrow(con.execute(
        "SELECT municipality_code, shien_kind, shien_type, zaiisoukan, kouhou_byoin FROM home_care_status").arrow())
    areas = pl.from_arrow(con.execute("SELECT pref_code, home_care_area, municipality_code FROM areas").arrow())
    counts = pl.from_arrow(con.execute("SELECT * FROM resource_counts").arrow())
    con.close()
    # count straight from the per-institution rows, in Python
    symbol = pl.col("shien_kind") + pl.col("shien_type").str.slice(0, 1)
    expected = (status.join(areas, on="municipality_code")
                .group_by("municipality_code")
                .agg(*[(symbol == f"{k}{t}").sum().alias(f"shien_{n}_{t}")
                       for k, n in (("支援病", "byo"), ("支援診", "shin")) for t in "123"],
                     pl.col("zaiisoukan").sum(), pl.col("kouhou_byoin").sum()))
    cols = [c for c in expected.columns if c != "municipality_code"]
    got = counts.filter(pl.col("level") == "municipality")
    merged = got.join(expected, on="municipality_code", how="left", suffix="_py").fill_null(0)
    for c in cols:
        assert (merged[c] == merged[f"{c}_py"]).all(), c
    assert got.height == areas.height
    # 計 rows are the sums of their municipality rows
    for pref in ("03", "39"):
        total = counts.filter((pl.col("level") == "prefecture") & (pl.col("pref_code") == pref))
        rows = got.filter(pl.col("pref_code") == pref)
        assert total.height == 1 and all(total[c][0] == rows[c].sum() for c in cols)
    # 盛岡市 (the 参考３ municipality): 支援病1/2/3 1/1/6, 支援診1/2/3 1/7/27 in the 2026-08 名簿
    morioka = got.filter(pl.col("label") == "盛岡市").row(0, named=True)
    assert [morioka[f"shien_{n}_{t}"] for n in ("byo", "shin") for t in "123"] == [1, 1, 6, 1, 7, 27]


def _contents(db) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    out = {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for t in warehouse.TABLE_ORDER if t != "runs"}
    con.close()
    return out


def test_rerun_is_identical_and_one_changed_report_is_one_change(raw_copy, tmp_path):
    out = tmp_path / "out"
    run(raw_copy, out)
    first = _contents(out / "annex.duckdb")
    assert run(raw_copy, out)["unchanged"]          # nothing changed: nothing rebuilt
    run(raw_copy, out, force=True)                  # rebuilt anyway: the same tables
    second = _contents(out / "annex.duckdb")
    assert first == second and second["changes"] == []
    # 紫波郡医師会 withdraws its last institution (池田内科, 盛岡市): exactly that change
    path = raw_copy / "03" / "reports" / "ishikai" / "紫波郡医師会.csv"
    rows = list(csv.reader(path.open(encoding="cp932", newline="")))
    dropped = [r for r in rows if len(r) > 1 and r[1] == "池田内科"]
    assert len(dropped) == 1
    with path.open("w", encoding="cp932", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows([r for r in rows if r not in dropped])
    run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    changes = con.execute("SELECT entity, change, name, previous_run_id IS NOT NULL, run_id FROM changes").fetchall()
    last_run = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    con.close()
    assert changes == [("institution", "removed", "池田内科", True, last_run)]
