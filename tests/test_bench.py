"""annex bench on a small input: four phases measured in child processes, a table with the targets."""
import shutil

from annex.bench import PHASES, bench, table

from conftest import RAW


def test_bench_phases_on_one_prefecture(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(RAW, data, ignore=shutil.ignore_patterns("*.py", "README.md", "03"))
    results = bench(data, "prefecture", tmp_path / "work", repeat=2)
    by = {r["phase"]: r for r in results}
    assert [r["phase"] for r in results] == PHASES
    assert all(r["wall_s"] > 0 and r["peak_rss_mb"] > 0 for r in results)
    # each phase twice: the median of the two (a second cold run starts from an empty output folder again)
    assert all(len(r["walls_s"]) == 2 and r["wall_s"] == sum(r["walls_s"]) / 2 for r in results)
    assert by["cold"]["unchanged"] is False and by["warm"]["unchanged"] is True
    assert by["changed"]["unchanged"] is False          # one report edited: rebuilt
    assert by["floor"]["rows_read"] > 7000 and by["floor"]["cells_written"] > 0
    assert by["warm"]["wall_s"] < by["cold"]["wall_s"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["floor", "out", "raw"]   # nothing set aside left
    out = table(results)
    assert "(a)/(d) =" in out and "≤ 5 s" in out and "nothing rebuilt" in out and "runs " in out


def test_link_quality_against_truth(tmp_path):
    """Precision/recall of facility_links against truth/links.csv: a wrong and a missed pair both count."""
    import duckdb
    from annex.bench import link_quality
    db = tmp_path / "annex.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE facility_links (inst_code VARCHAR, facility_id VARCHAR)")
    con.execute("INSERT INTO facility_links VALUES ('0310110001', 'F1'), ('0310110002', 'F9')")
    con.close()
    truth = tmp_path / "links.csv"
    truth.write_text("inst_code,facility_id\n0310110001,F1\n0310110002,F2\n0310110003,F3\n0310110004,F4\n",
                     encoding="utf-8")
    q = link_quality(db, truth)
    assert (q["links"], q["correct"], q["true_pairs"]) == (2, 1, 4)
    assert q["precision"] == 0.5 and q["recall"] == 0.25 and q["wrong"] == [("0310110002", "F9")]


def test_what_the_bench_replaces_is_deleted_only_when_it_ends(tmp_path):
    """The output folder of the last run is moved aside before a cold run and deleted after the last phase: a run
    that creates ~1,900 files right after ~1,900 were deleted pays ext4's scan past recently deleted inodes."""
    from annex.bench import _deleted_at_the_end
    old = tmp_path / "out"
    (old / "returns").mkdir(parents=True)
    (old / "returns" / "01_むかわ町.xlsx").write_bytes(b"x")
    with _deleted_at_the_end(tmp_path) as set_aside:
        set_aside(old)
        assert not old.exists()
        assert len(list(tmp_path.rglob("01_むかわ町.xlsx"))) == 1      # moved, not deleted yet
        old.mkdir()
        set_aside(old)                                                  # a second folder of the same name
        set_aside(tmp_path / "missing")                                 # nothing to move
        assert sorted(p.name for p in tmp_path.glob(".bench-trash-*/*")) == ["0-out", "1-out"]
    assert list(tmp_path.iterdir()) == []


def test_cold_and_floor_runs_alternate_and_the_ratio_is_the_median_of_their_pairs(tmp_path, monkeypatch):
    """The VM's speed drifts over minutes: each cold run is paired with the floor run right after it, and (a)/(d) is
    the median of those pairs' ratios, not the ratio of two medians taken minutes apart."""
    from annex import bench as bench_mod
    calls = []
    walls = iter([10.0, 5.0, 30.0, 10.0, 12.0, 4.0] + [1.0] * 6)   # cold, floor, cold, floor, cold, floor, warm…, changed…

    def child(code, *args):
        kind = "floor" if code == bench_mod.FLOOR else "run"
        calls.append(kind)
        return next(walls), 100.0, ({"rows_read": 1, "cells_written": 2} if kind == "floor" else {"unchanged": False})
    monkeypatch.setattr(bench_mod, "_child", child)
    monkeypatch.setattr(bench_mod, "output_cells", lambda out: 2)
    monkeypatch.setattr(bench_mod, "change_one_report", lambda raw: None)
    (tmp_path / "data").mkdir()
    results = bench_mod._phases(tmp_path / "data", "national", tmp_path, tmp_path / "raw", tmp_path / "out", 3,
                                lambda path: None)
    assert calls[:6] == ["run", "floor"] * 3 and calls[6:] == ["run"] * 6
    by = {r["phase"]: r for r in results}
    assert by["cold"]["walls_s"] == [10.0, 30.0, 12.0] and by["floor"]["walls_s"] == [5.0, 10.0, 4.0]
    # pairs 2.0, 3.0, 3.0: median 3.0 (the medians' ratio, 12 / 5 = 2.4, mixes runs minutes apart)
    assert by["cold"]["ratio_pairs"] == [2.0, 3.0, 3.0] and by["cold"]["ratio"] == 3.0
    assert "(a)/(d) = 3.00" in table(results) and "2.00 / 3.00 / 3.00" in table(results)
