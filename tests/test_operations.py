"""Operations: one run at a time, nothing rebuilt when nothing changed, deadline reruns with --as-of."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from annex import pipeline, runs
from annex.reference import facility_file_plan, monthly_plan


def test_second_refresh_refuses_or_waits(tmp_path):
    out = tmp_path / "out"
    with runs.lock(out):
        # another process: refuses at once, with a clear message
        cmd = [sys.executable, "-c", "import sys; from pathlib import Path; from annex import runs\n"
               "try:\n    runs.lock(Path(sys.argv[1])).__enter__()\nexcept runs.Busy as e:\n"
               "    print(e); sys.exit(3)", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 3 and "別の更新が実行中です" in done.stdout and "PID" in done.stdout
    # with --wait, the second waits for the first to finish instead
    entered = []

    def second():
        with runs.lock(out, wait=10):
            entered.append(time.monotonic())

    with runs.lock(out):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        released = time.monotonic()
        assert entered == []
    t.join(5)
    assert entered and entered[0] >= released


def test_nothing_new_is_not_rebuilt(raw_copy, tmp_path):
    shutil.rmtree(raw_copy / "03")
    out = tmp_path / "out"
    first = pipeline.run(raw_copy, out)
    stamp = (out / "annex.duckdb").stat().st_mtime_ns
    again = pipeline.run(raw_copy, out)
    assert again["unchanged"] and not first["unchanged"]
    assert (out / "annex.duckdb").stat().st_mtime_ns == stamp
    assert {k: v for k, v in again.items() if k not in ("unchanged", "rebuilt")} == \
        {k: v for k, v in first.items() if k not in ("unchanged", "rebuilt")}
    # a late report arrives: rebuilt
    shutil.copy(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv",
                raw_copy / "39" / "reports" / "shichoson" / "四万十市_再提出.csv")
    assert not pipeline.run(raw_copy, out)["unchanged"]
    outcomes = [r["outcome"] for r in runs.history(out)]
    assert outcomes == ["success", "unchanged", "success"]


def test_monthly_and_snapshot_choice_by_date():
    names = [Path(n) for n in ("shisetsu-touhoku-ika-r0808.xlsx", "shisetsu-touhoku-ika-r0810.xlsx",
                               "shisetsu-shikoku-ika-r0809.xlsx")]
    keep, old = monthly_plan(names)
    assert [p.name for p in keep] == ["shisetsu-shikoku-ika-r0809.xlsx", "shisetsu-touhoku-ika-r0810.xlsx"]
    keep, old = monthly_plan(names, dt.date(2026, 8, 31))
    assert [p.name for p in keep] == ["shisetsu-touhoku-ika-r0808.xlsx"] and len(old) == 2


def test_as_of_reproduces_the_reference_valid_then(raw_copy, tmp_path):
    """A deadline rerun: a newer 名簿 and facility file arrived after the submission; --as-of picks the old."""
    shutil.rmtree(raw_copy / "03")
    kouseikyoku = raw_copy / "reference" / "kouseikyoku"
    shutil.copy(kouseikyoku / "shisetsu-shikoku-ika-r0809.xlsx", kouseikyoku / "shisetsu-shikoku-ika-r0811.xlsx")
    fac = raw_copy / "reference" / "iryo_joho_net"
    shutil.copy(fac / "02-1_clinic_facility_info_20260601.csv.zip", fac / "02-1_clinic_facility_info_20261201.csv.zip")
    out = tmp_path / "out"
    pipeline.run(raw_copy, out, as_of=dt.date(2026, 10, 1))
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    read = {r[0] for r in con.execute("SELECT source_file FROM source_files WHERE status = 'read'").fetchall()}
    newer = {r[0] for r in con.execute("SELECT source_file FROM source_files WHERE status = 'superseded'").fetchall()}
    params = con.execute("SELECT parameters->>'as_of' FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    con.close()
    assert "reference/kouseikyoku/shisetsu-shikoku-ika-r0809.xlsx" in read
    assert {"reference/kouseikyoku/shisetsu-shikoku-ika-r0811.xlsx",
            "reference/iryo_joho_net/02-1_clinic_facility_info_20261201.csv.zip"} <= newer
    assert params == "2026-10-01"
    plan, _ = facility_file_plan(raw_copy)                     # without a date: the newest
    assert any("20261201" in p.name for p in plan)


def _readers(monkeypatch, refuse: bool) -> list[str]:
    """Patch every reference reader and the linking so that each call is recorded; with refuse, a call fails
    the run (the cache was not used). The calls, in order."""
    from annex import reference
    called: list[str] = []
    for module, name in ((reference, "read_master"), (reference, "read_facility_file"), (reference, "read_meibo"),
                         (reference, "read_code_list"), (pipeline, "link_frames")):
        def spy(*args, _name=name, _real=getattr(module, name), **kwargs):
            called.append(_name)
            if refuse:
                raise AssertionError(f"{_name} was called: its cache entry was not used")
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    return called


def test_parse_cache_is_keyed_on_content(raw_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNEX_WORKERS", "1")    # every parse in this process, where the readers are patched
    shutil.rmtree(raw_copy / "03")
    out = tmp_path / "out"
    first = pipeline.run(raw_copy, out)
    cache = out / ".cache"
    kinds = {p.name.split("-")[0] for p in cache.glob("*.parquet")}
    assert kinds == {"municipalities", "facility_file", "meibo", "code_list", "links"}
    same = lambda result: {k: v for k, v in result.items() if k not in ("database",)} == \
        {k: v for k, v in first.items() if k not in ("database",)}
    # a forced rebuild of the same files parses nothing and links nothing: every reader fails if called
    with monkeypatch.context() as m:
        called = _readers(m, refuse=True)
        again = pipeline.run(raw_copy, out, force=True)
    assert called == [] and same(again)
    # a damaged cache entry is parsed again (only that one), with the same result
    for p in cache.glob("meibo-*.parquet"):
        p.write_bytes(b"not parquet")
    with monkeypatch.context() as m:
        called = _readers(m, refuse=False)
        again = pipeline.run(raw_copy, out, force=True)
    assert called == ["read_meibo"] * len(list((raw_copy / "reference" / "kouseikyoku").glob("*.xlsx"))) and same(again)
    # a changed file is parsed again: one 高知 row less in the code list -> one institution less, linked again
    codes = raw_copy / "reference" / "kouseikyoku_codes" / "all_med_inst_cd_202508.csv"
    lines = codes.read_bytes().split(b"\r\n")
    kochi_only = [ln for ln in lines if ln.startswith(b"39")]
    in_meibo = duckdb.connect(str(out / "annex.duckdb"), read_only=True).execute(
        "SELECT list(inst_code) FROM institutions WHERE in_meibo").fetchone()[0]
    drop = next(ln for ln in kochi_only if ("39" + "1" + ln.split(b",")[0][2:].decode()) not in in_meibo)
    codes.write_bytes(b"\r\n".join(ln for ln in lines if ln != drop))
    with monkeypatch.context() as m:
        called = _readers(m, refuse=False)
        changed = pipeline.run(raw_copy, out)
    assert called == ["read_code_list", "link_frames"]
    assert not changed["unchanged"] and changed["institutions"] == first["institutions"] - 1
    # reports are never cached (they carry personal data)
    assert not any("report" in p.name for p in cache.iterdir())


def test_parse_cache_files_are_written_from_one_chunk_and_named_in_the_result(tmp_path):
    """A parse's Parquet file is written from one chunk — row groups of one size, which DuckDB needs to insert
    them in order (warehouse.StagedFiles) — and the ReadResult names it (parquet) when it holds exactly the
    accepted rows: after the parse and when read back, not when only some rows were asked for."""
    import polars as pl
    from annex import cache as cache_mod
    from annex.findings import ReadResult
    source = tmp_path / "meibo.xlsx"
    source.write_bytes(b"the bytes the cache is keyed on")
    whole = pl.DataFrame({"inst_code": [f"{i:010d}" for i in range(149_557)], "pref_code": "13",
                          "source_file": str(source)})
    at = [0, 87_342, 87_345, 149_557]   # a file's sheets: pieces of uneven sizes
    pieces = pl.concat([whole.slice(a, b - a) for a, b in zip(at, at[1:])], rechunk=False)
    assert pieces.n_chunks() == 3
    cache = tmp_path / "cache"
    read = lambda: ReadResult("meibo", str(source), pieces, rows_in=pieces.height)
    first = cache_mod.cached_read(cache, source, "meibo", "p", read)
    again = cache_mod.cached_read(cache, source, "meibo", "p", lambda: pytest.fail("parsed again"))
    some = cache_mod.cached_read(cache, source, "meibo", "p", read, pl.col("inst_code") < "0000000010")
    assert first.parquet and again.parquet == first.parquet and some.parquet is None and some.accepted.height == 10
    sizes = [r[0] for r in duckdb.execute("SELECT row_group_num_rows FROM parquet_metadata(?) "
                                          "GROUP BY row_group_id, row_group_num_rows", [first.parquet]).fetchall()]
    assert max(sizes) - min(sizes) <= 1, sizes
    assert pl.read_parquet(first.parquet).equals(whole) and again.accepted.equals(whole)


# the first refresh, through the real CLI, held at its staging step until the test lets it go (so that it is
# surely running when the second starts)
HELD = """
import sys, time
from pathlib import Path
from annex import cli, pipeline
raw, out, gate = sys.argv[1:4]
stage = pipeline.stage
def held(*args, **kwargs):
    Path(gate + ".held").touch()
    while not Path(gate).exists():
        time.sleep(0.05)
    return stage(*args, **kwargs)
pipeline.stage = held
sys.exit(cli.main(["refresh", "--no-prefect", "--raw", raw, "--out", out]))
"""


def test_two_refresh_processes_on_one_output_folder(raw_copy, tmp_path):
    """Two real `annex refresh --no-prefect` on one out/: the second refuses at once with the holder's PID while
    the first runs; with --wait it waits for the first to finish, then finds nothing new. Never interleaved."""
    shutil.rmtree(raw_copy / "03")
    out, gate = tmp_path / "out", tmp_path / "go"
    refresh = [sys.executable, "-m", "annex.cli", "refresh", "--no-prefect", "--raw", str(raw_copy), "--out", str(out)]
    first = subprocess.Popen([sys.executable, "-c", HELD, str(raw_copy), str(out), str(gate)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = None
    try:
        deadline = time.monotonic() + 120
        while not Path(f"{gate}.held").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = subprocess.run(refresh, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "別の更新が実行中です" in second.stderr and f"PID {first.pid}" in second.stderr
        waiting = subprocess.Popen([*refresh, "--wait", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(3)
        assert waiting.poll() is None and first.poll() is None        # the third waits while the first holds
        gate.touch()
        assert first.wait(120) == 0, first.communicate()
        stdout, stderr = waiting.communicate(timeout=120)
        assert waiting.returncode == 0 and "作り直しませんでした" in stdout, stdout + stderr
    finally:
        gate.touch()
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    log = runs.history(out)
    assert [r["outcome"] for r in log] == ["success", "unchanged"]     # the refused one never started a run
    assert log[1]["started_at"] >= log[0]["finished_at"]


# SIGKILL during a rebuild: tests/test_faults.py kills the run at each stage deterministically (this module had
# kills after 0.8/2.5/4.5 s, which could not say which stage they hit).
