"""Only reports changed: the run replaces those prefectures' rows and workbooks and carries the rest over.

The check is against the truth: the same inputs rebuilt from scratch (force=True) in a copy of the same output
folder must give the same tables and the same workbooks for the prefectures that were redone; the prefectures
that were carried over keep their files byte for byte.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
from python_calamine import CalamineWorkbook

from annex import cache as cache_mod, pipeline, runs, warehouse
from annex.annex_workbook import NATIONAL_FILE_NAME, annex_file_name

RUN_ID_COLUMNS = {"changes": ["previous_run_id", "run_id"]}


def _tables(db: Path) -> dict[str, list[tuple]]:
    """Every table and view but the run log, as sorted rows (row order in a table is not part of its content)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        got = {}
        for t in names:
            if t == "runs":
                continue
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?"
                " ORDER BY ordinal_position", [t]).fetchall() if r[0] not in RUN_ID_COLUMNS.get(t, [])]
            rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{t}"').fetchall()
            got[t] = sorted(rows, key=repr)
        return got
    finally:
        con.close()


def _values(book: Path) -> dict[str, list[list]]:
    wb = CalamineWorkbook.from_path(str(book))
    return {name: wb.get_sheet_by_name(name).to_python() for name in wb.sheet_names}


def _edit_cp932(path: Path, old: str, new: str) -> None:
    text = path.read_bytes().decode("cp932")
    assert old in text
    path.write_bytes(text.replace(old, new).encode("cp932"))


def _changes(db: Path, pref: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT entity, change, key, before, after, previous_run_id, run_id FROM changes "
                           "WHERE pref_code = ? ORDER BY ALL", [pref]).fetchall()
    finally:
        con.close()


def test_changed_reports_give_what_a_full_rebuild_gives(raw_copy, tmp_path):
    inc, full = tmp_path / "inc", tmp_path / "full"
    cold = pipeline.run(raw_copy, inc)
    assert cold["rebuilt"] == "all"
    shutil.copytree(inc, full)
    kept = inc / annex_file_name("39", "高知県")
    kept_bytes, kept_mtime = kept.read_bytes(), kept.stat().st_mtime_ns
    kept_returns = {p.name: p.read_bytes() for p in (inc / "returns").glob("39_*.xlsx")}
    assert kept_returns

    # step 1, one 医師会 of 岩手 resends its report: 取組 ⑥ added for 池田内科, こずかた診療所 taken out
    report = raw_copy / "03" / "reports" / "ishikai" / "紫波郡医師会.csv"
    _edit_cp932(report, "3,池田内科,盛岡市,支援診3,1・2,", "3,池田内科,盛岡市,支援診3,1・2・6,")
    _edit_cp932(report, '2,こずかた診療所,矢巾町,支援診3,"1,2,4,5",\r\n', "")
    step1 = pipeline.run(raw_copy, inc)
    truth1 = pipeline.run(raw_copy, full, force=True)
    assert step1["rebuilt"] == ["03"] and truth1["rebuilt"] == "all"
    assert _tables(inc / "annex.duckdb") == _tables(full / "annex.duckdb")
    assert {k: v for k, v in step1.items() if k not in ("database", "rebuilt")} == \
        {k: v for k, v in truth1.items() if k not in ("database", "rebuilt")}
    got = {(c[0], c[1], c[2]) for c in _changes(inc / "annex.duckdb", "03")}
    assert ("institution", "torikumi_changed") in {g[:2] for g in got}
    assert ("institution", "removed") in {g[:2] for g in got}
    # the redone prefecture's workbook reads as the full rebuild's; the other one is the very same file
    redone = annex_file_name("03", "岩手県")
    assert _values(inc / redone) == _values(full / redone)
    assert kept.read_bytes() == kept_bytes and kept.stat().st_mtime_ns == kept_mtime
    assert sorted(p.name for p in (inc / "returns").iterdir()) == sorted(p.name for p in (full / "returns").iterdir())
    for p in (inc / "returns").iterdir():
        assert _values(p) == _values(full / "returns" / p.name), p.name
    assert {p.name: p.read_bytes() for p in (inc / "returns").glob("39_*.xlsx")} == kept_returns
    assert _values(inc / NATIONAL_FILE_NAME) == _values(full / NATIONAL_FILE_NAME)
    # the run log lists every input file, as a full run's does
    assert runs.history(inc)[-1]["inputs"] == runs.history(full)[-1]["inputs"]

    # step 2, a 市町村 of 高知 withdraws its report (a file removed): 高知 is redone from the last run's file,
    # 岩手 keeps everything, including the changes its own last rebuild found
    before_03 = _changes(inc / "annex.duckdb", "03")
    (raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv").unlink()
    step2 = pipeline.run(raw_copy, inc)
    truth2 = pipeline.run(raw_copy, full, force=True)
    assert step2["rebuilt"] == ["39"]
    a, b = _tables(inc / "annex.duckdb"), _tables(full / "annex.duckdb")
    assert a.keys() == b.keys()
    for t in a:
        if t != "changes":
            assert a[t] == b[t], t
    assert [c for c in a["changes"] if c[0] == "39"] == [c for c in b["changes"] if c[0] == "39"]
    assert any(c[0] == "39" and c[2] == "removed" for c in a["changes"])
    assert _changes(inc / "annex.duckdb", "03") == before_03 and before_03
    assert not [p for p in (inc / "returns").iterdir() if "四万十市" in p.name]
    assert step2["failed_files"] == truth2["failed_files"]


def test_what_makes_a_full_rebuild(raw_copy, tmp_path):
    out = tmp_path / "out"
    pipeline.run(raw_copy, out)
    prefs = pipeline.select_prefectures(raw_copy, None)

    def plan() -> list[str] | None:
        return pipeline.changed_prefectures(raw_copy, out, runs.manifest(raw_copy, None, None), prefs)

    assert plan() is None                                   # nothing changed (the unchanged check comes first)
    late = raw_copy / "39" / "reports" / "shichoson" / "四万十市_再提出.csv"
    shutil.copy(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv", late)
    assert plan() == ["39"]                                 # a report added
    # the configuration of a prefecture: its areas, and so the tables built from the reference data
    areas = next((raw_copy / "03").glob("areas*"))
    areas.write_bytes(areas.read_bytes() + b"\n")
    assert plan() is None
    areas.write_bytes(areas.read_bytes()[:-1])
    assert plan() == ["39"]
    # a reference file
    ref_file = next(p for p in sorted((raw_copy / "reference").rglob("*")) if p.is_file() and p.suffix != ".toml")
    saved = ref_file.read_bytes()
    ref_file.write_bytes(saved + b"\n")
    assert plan() is None
    ref_file.write_bytes(saved)
    # other parameters than the last build's
    assert pipeline.changed_prefectures(raw_copy, out, runs.manifest(raw_copy, ["03"], None), prefs) is None
    # a carried-over workbook that is gone cannot be carried over
    book = out / annex_file_name("03", "岩手県")
    book.rename(book.with_suffix(".bak"))
    assert plan() is None
    book.with_suffix(".bak").rename(book)
    assert plan() == ["39"]
    # a database some other run swapped in (killed before recording success): not the last build's
    con = duckdb.connect(str(out / warehouse.DB_NAME))
    con.execute("UPDATE runs SET run_id = 'someone-else' WHERE started_at = (SELECT max(started_at) FROM runs)")
    con.close()
    assert plan() is None


def test_force_rebuilds_everything(raw_copy, tmp_path):
    out = tmp_path / "out"
    pipeline.run(raw_copy, out)
    with open(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv", "ab") as f:
        f.write(b"\r\n")
    assert pipeline.run(raw_copy, out, force=True)["rebuilt"] == "all"


def test_hash_memo_sees_a_rewrite_that_keeps_size_and_time(raw_copy, tmp_path):
    """Unchanged files are not hashed again from run to run (out/.cache/sha256_memo.json), but a file rewritten
    with the same size and its old modification time is still seen: its change time moved."""
    import json
    import os
    from annex.cache import CACHE_DIR, HASH_MEMO
    out = tmp_path / "out"
    pipeline.run(raw_copy, out)
    memo = json.loads((out / CACHE_DIR / HASH_MEMO).read_text(encoding="utf-8"))
    report = raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv"
    assert str(report.resolve()) in memo or str(report) in memo or os.path.abspath(report) in memo
    assert pipeline.run(raw_copy, out)["unchanged"]
    st = report.stat()
    data = report.read_bytes()
    i = data.index(b"1,2,3,4,5")
    report.write_bytes(data[:i] + b"1,2,3,4,4" + data[i + 9:])    # same size: 取組⑤ becomes ④ twice
    os.utime(report, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert report.stat().st_size == st.st_size and report.stat().st_mtime_ns == st.st_mtime_ns
    again = pipeline.run(raw_copy, out)
    assert not again["unchanged"] and again["rebuilt"] == ["39"]


def test_cli_says_what_it_redid(raw_copy, tmp_path, capsys):
    """...and, as it goes, shows its progress on standard error, one line per stage (not with --quiet)."""
    from annex.cli import main
    out = tmp_path / "out"
    args = ["refresh", "--raw", str(raw_copy), "--out", str(out), "--no-prefect"]
    assert main(args) == 0
    said = capsys.readouterr()
    assert "報告だけが変わった" not in said.out
    progress = [line.split(" ", 1)[1] for line in said.err.splitlines()]
    assert progress[0] == "作り直します: 2 都道府県"
    assert progress[1].startswith("参照データを読みました: 6 ファイル（")
    assert progress[2:4] == ["紐付け・報告の確認: 1/2 都道府県（岩手県）", "紐付け・報告の確認: 2/2 都道府県（高知県）"]
    assert progress[4].startswith("DuckDB と別表を作成中（") and progress[5].startswith(f"公開しました: {out}")
    with open(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv", "ab") as f:
        f.write(b"\r\n")
    assert main(args) == 0
    said = capsys.readouterr()
    assert "報告だけが変わった都道府県（39）を作り直し、ほかは前回の結果を引き継ぎました" in said.out
    assert "報告だけが変わった都道府県（39）を作り直します" in said.err
    assert "紐付け・報告の確認: 1/1 都道府県（高知県）" in said.err
    assert main([*args, "--force", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_link_cache_key_follows_content_not_layout(tmp_path):
    """The links are reused while _frame_hash of what is matched is unchanged: it must see every change of a
    value, a null, a type or the order, and nothing else (chunks, a Parquet round trip, the file's path)."""
    df = pl.DataFrame({"name": ["盛岡病院", "花巻診療所", None], "beds": [120, 0, 19],
                       "source_file": ["a.xlsx", "a.xlsx", "a.xlsx"]})
    key = pipeline._frame_hash(df)
    df.write_parquet(tmp_path / "f.parquet")
    assert pipeline._frame_hash(pl.concat([df.head(1), df.tail(2)], rechunk=False)) == key
    assert pipeline._frame_hash(pl.read_parquet(tmp_path / "f.parquet")) == key
    assert pipeline._frame_hash(df.with_columns(source_file=pl.lit("moved/a.xlsx"))) == key
    changed = [df.with_columns(name=pl.Series(["盛岡病院", "花巻診療所", ""])),      # null -> empty text
               df.with_columns(name=pl.Series(["盛岡病院", "花巻診療所2", None])),   # one value
               df.with_columns(pl.col("beds").cast(pl.Int32)),                   # a type
               df.reverse()]                                                    # the order
    assert len({key, *map(pipeline._frame_hash, changed)}) == 1 + len(changed)


def _entries(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir() if cache_mod.ENTRY.fullmatch(p.name)}


def test_a_full_rebuild_prunes_the_cache_entries_it_did_not_use(raw_copy, tmp_path):
    """Parses are keyed on content and code: each changed reference file (and each new version of the code) left
    its old parse in out/.cache for ever. A run that rebuilds everything removes the entries it neither read nor
    wrote; a run that redoes some prefectures reads only some of them, and removes none."""
    out = tmp_path / "out"
    cache = out / cache_mod.CACHE_DIR
    pipeline.run(raw_copy, out)
    first = _entries(cache)
    kinds = {name.split("-")[0] for name in first}
    assert {"meibo", "facility_file", "code_list", "municipalities", "links"} <= kinds, kinds
    with open(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv", "ab") as f:
        f.write(b"\r\n")
    assert pipeline.run(raw_copy, out)["rebuilt"] == ["39"]
    assert _entries(cache) >= first                          # nothing pruned: 03's links were not read
    code_list = next((raw_copy / "reference" / "kouseikyoku_codes").glob("*.csv"))
    code_list.write_bytes(code_list.read_bytes() + b"\r\n")  # new content: parsed anew, everything rebuilt
    assert pipeline.run(raw_copy, out)["rebuilt"] == "all"
    now = _entries(cache)
    old_list = {n for n in first if n.startswith("code_list-")}
    assert not old_list & now and any(n.startswith("code_list-") for n in now - first)
    # the parses of the unchanged files were read again, and kept
    kept = {n for n in first if n.split("-")[0] in ("meibo", "facility_file", "municipalities")}
    assert kept <= now
    assert (cache / cache_mod.HASH_MEMO).exists() and (cache / runs.MANIFEST_NAME).exists()
    # nothing changed since: every entry a rebuild needs is there (no parse, no linking)
    assert pipeline.run(raw_copy, out, force=True)["rebuilt"] == "all"
    assert _entries(cache) == now
