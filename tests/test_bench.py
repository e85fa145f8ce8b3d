"""annex bench on a small input: four phases measured in child processes, a table with the targets."""
import shutil

from annex.bench import PHASES, bench, table

from conftest import RAW


def test_bench_phases_on_one_prefecture(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(RAW, data, ignore=shutil.ignore_patterns("*.py", "README.md", "03"))
    results = bench(data, "prefecture", tmp_path / "work")
    by = {r["phase"]: r for r in results}
    assert [r["phase"] for r in results] == PHASES
    assert all(r["wall_s"] > 0 and r["peak_rss_mb"] > 0 for r in results)
    assert by["cold"]["unchanged"] is False and by["warm"]["unchanged"] is True
    assert by["changed"]["unchanged"] is False          # one report edited: rebuilt
    assert by["floor"]["rows_read"] > 7000 and by["floor"]["cells_written"] > 0
    assert by["warm"]["wall_s"] < by["cold"]["wall_s"]
    out = table(results)
    assert "(a)/(d) =" in out and "≤ 5 s" in out and "nothing rebuilt" in out
