"""The analysts' annex tables: 参考３ counts against an independent count, reruns, `changes`, 圏域 order."""
from __future__ import annotations

import csv

import duckdb
import polars as pl

from annex import SQL_DIR, runs, warehouse
from annex.annex_workbook import annex_file_name
from annex.pipeline import run


def test_resource_counts_equal_an_independent_count(sample_run):
    db, _ = sample_run
    con = duckdb.connect(str(db), read_only=True)
    status = pl.from_arrow(con.execute(
        "SELECT municipality_code, shien_kind, shien_type, zaiisoukan, kouhou_byoin FROM home_care_status").arrow())
    areas = pl.from_arrow(con.execute("SELECT pref_code, home_care_area, municipality_code FROM areas").arrow())
    counts = pl.from_arrow(con.execute("SELECT * FROM resource_counts").arrow())
    # the prefecture's institutions, straight from home_care_status (not through areas)
    by_pref = pl.from_arrow(con.execute("""
        SELECT pref_code, count(*) FILTER (WHERE shien_kind = '支援病' AND substr(shien_type, 1, 1) = '1') AS shien_byo_1,
               count(*) FILTER (WHERE shien_kind = '支援病' AND substr(shien_type, 1, 1) = '2') AS shien_byo_2,
               count(*) FILTER (WHERE shien_kind = '支援病' AND substr(shien_type, 1, 1) = '3') AS shien_byo_3,
               count(*) FILTER (WHERE shien_kind = '支援診' AND substr(shien_type, 1, 1) = '1') AS shien_shin_1,
               count(*) FILTER (WHERE shien_kind = '支援診' AND substr(shien_type, 1, 1) = '2') AS shien_shin_2,
               count(*) FILTER (WHERE shien_kind = '支援診' AND substr(shien_type, 1, 1) = '3') AS shien_shin_3,
               count(*) FILTER (WHERE zaiisoukan) AS zaiisoukan, count(*) FILTER (WHERE kouhou_byoin) AS kouhou_byoin
        FROM home_care_status WHERE pref_code IN ('03', '39') GROUP BY pref_code""").arrow())
    unplaced = con.execute("""SELECT count(*) FROM home_care_status h WHERE h.pref_code IN ('03', '39')
                              AND h.municipality_code NOT IN (SELECT municipality_code FROM areas)""").fetchone()[0]
    con.close()
    # every institution of the prefecture lies in a municipality of areas.csv: none is left out of the counts
    assert unplaced == 0
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
    # 計 rows are the sums of their municipality rows, and the prefecture's equal its count in home_care_status
    for pref in ("03", "39"):
        total = counts.filter((pl.col("level") == "prefecture") & (pl.col("pref_code") == pref))
        rows = got.filter(pl.col("pref_code") == pref)
        assert total.height == 1 and all(total[c][0] == rows[c].sum() for c in cols)
        direct = by_pref.filter(pl.col("pref_code") == pref)
        assert [total[c][0] for c in cols] == [direct[c][0] for c in cols], pref
        assert total.select(cols).sum_horizontal()[0] > 0
    area_rows = counts.filter(pl.col("level") == "area")
    by_area = (got.join(areas.select("municipality_code", pl.col("home_care_area").alias("area_of")),
                        on="municipality_code").group_by("pref_code", "area_of").agg(pl.col(cols).sum()))
    assert area_rows.height == areas.select("pref_code", "home_care_area").unique().height == by_area.height
    merged = area_rows.join(by_area, left_on=["pref_code", "home_care_area"], right_on=["pref_code", "area_of"],
                            suffix="_sum")
    assert merged.height == area_rows.height
    for c in cols:
        assert (merged[c] == merged[f"{c}_sum"]).all(), c
    assert (area_rows["label"] == area_rows["home_care_area"] + " 計").all()
    # 盛岡市 (the 参考３ municipality): 支援病1/2/3 1/1/6, 支援診1/2/3 1/7/27 in the 2026-08 名簿
    morioka = got.filter(pl.col("label") == "盛岡市").row(0, named=True)
    assert [morioka[f"shien_{n}_{t}"] for n in ("byo", "shin") for t in "123"] == [1, 1, 6, 1, 7, 27]


def _contents(db) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    out = {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for t in warehouse.TABLE_ORDER if t != "runs"}
    con.close()
    return out


def _withdraw_ikeda(raw) -> None:
    """紫波郡医師会 withdraws its last institution (池田内科, 盛岡市)."""
    path = raw / "03" / "reports" / "ishikai" / "紫波郡医師会.csv"
    rows = list(csv.reader(path.open(encoding="cp932", newline="")))
    dropped = [r for r in rows if len(r) > 1 and r[1] == "池田内科"]
    assert len(dropped) == 1
    with path.open("w", encoding="cp932", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows([r for r in rows if r not in dropped])


def test_rerun_is_identical_and_one_changed_report_is_one_change(raw_copy, tmp_path):
    out = tmp_path / "out"
    run(raw_copy, out)
    first = _contents(out / "annex.duckdb")
    assert run(raw_copy, out)["unchanged"]          # nothing changed: nothing rebuilt
    run(raw_copy, out, force=True)                  # rebuilt anyway: the same tables
    second = _contents(out / "annex.duckdb")
    assert first == second and second["changes"] == []
    _withdraw_ikeda(raw_copy)
    run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    changes = con.execute("SELECT entity, change, name, previous_run_id IS NOT NULL, run_id FROM changes").fetchall()
    last_run = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    con.close()
    assert changes == [("institution", "removed", "池田内科", True, last_run)]


def test_changes_outlive_an_unchanged_rerun(raw_copy, tmp_path):
    """The nightly run after an evening's change finds nothing new and rebuilds nothing: `changes` still holds
    what the last build found against the build before it (both run ids), and the workbook says so. The run
    log has the unchanged run; the `runs` table cannot (the file is not rewritten) and says so."""
    out = tmp_path / "out"
    run(raw_copy, out)
    _withdraw_ikeda(raw_copy)                                    # the evening's change
    assert run(raw_copy, out)["rebuilt"] == ["03"]
    db, book = out / "annex.duckdb", out / annex_file_name("03", "岩手県")
    before = db.read_bytes(), book.read_bytes()
    assert run(raw_copy, out)["unchanged"]                      # the 02:00 run: nothing new
    assert (db.read_bytes(), book.read_bytes()) == before
    log = runs.history(out)
    assert [r["outcome"] for r in log] == ["success", "success", "unchanged"]
    first, second, nightly = (r["run_id"] for r in log)
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("SELECT pref_code, entity, change, previous_run_id, run_id FROM changes").fetchall()
    in_table = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
    comments = dict(con.execute("""SELECT table_name, comment FROM duckdb_tables()
                                   WHERE table_name IN ('changes', 'runs')""").fetchall())
    con.close()
    assert got == [("03", "institution", "removed", first, second)]
    assert in_table == [first, second] and nightly not in in_table
    assert "作り直さなかった" in comments["changes"] and "空にならず" in comments["changes"]
    assert "runs.jsonl にだけ" in comments["runs"]
    import openpyxl
    note = " ".join(str(c.value) for row in openpyxl.load_workbook(book)["前回からの変更"].iter_rows(max_row=4)
                    for c in row if c.value)
    assert "その前に作成した実行（" in note and first[:8] in note and "作り直さなかった実行では、この表は変わりません" in note


def test_area_order_is_the_order_of_areas_csv():
    """areas.area_order numbers the 圏域 as the file first names them, whatever their codes or names."""
    con = duckdb.connect()
    stg = pl.DataFrame({"pref_code": ["03"] * 5 + ["39"] * 2,
                        "municipality_code": ["032018", "032051", "032026", "032140", "032069", "392022", "392014"],
                        "municipality_name": ["盛岡市", "花巻市", "宮古市", "八幡平市", "北上市", "室戸市", "高知市"],
                        "secondary_area": ["盛岡", "岩手中部", "宮古", "盛岡", "岩手中部", "安芸", "中央"],
                        "home_care_area": ["盛岡", "岩手中部", "宮古", "盛岡", "岩手中部", "安芸", "中央"],
                        "ishikai": ["a"] * 7, "source_row": [2, 3, 4, 5, 6, 2, 3]})
    con.register("stg_areas", stg)
    con.execute((SQL_DIR / "areas.sql").read_text(encoding="utf-8"))
    got = con.execute("SELECT DISTINCT pref_code, area_order, home_care_area FROM areas ORDER BY 1, 2").fetchall()
    assert got == [("03", 1, "盛岡"), ("03", 2, "岩手中部"), ("03", 3, "宮古"), ("39", 1, "安芸"), ("39", 2, "中央")]
