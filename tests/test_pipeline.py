"""The refresh end to end on the shipped sample, and what a bad file or a failed run leaves behind."""
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from annex import pipeline, warehouse
from tests.conftest import RAW


def test_tables_and_japanese_comments(sample_run):
    db, summary = sample_run
    con = duckdb.connect(str(db), read_only=True)
    for t in warehouse.TABLE_ORDER:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = ?", [t]).fetchone()
        assert comment and comment[0], t
        cols = con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = ?", [t]).fetchall()
        assert cols and all(c for _, c in cols), (t, [n for n, c in cols if not c])
    # the view of rejected rows is documented as the tables are
    cols = con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'rejected_rows'").fetchall()
    assert cols and all(c for _, c in cols), cols
    assert con.execute("SELECT count(*) FROM facilities").fetchone()[0] == 585
    assert con.execute("SELECT count(*) FROM institutions WHERE in_meibo").fetchone()[0] == 1171
    # the reference data of the sample is clean; the sample reports carry deliberate errors (test_report_outputs)
    assert con.execute("SELECT count(*) FROM findings WHERE severity = 'error' "
                       "AND source_file NOT LIKE '%/reports/%'").fetchone()[0] == 0
    assert summary["errors"] > 0


def test_every_source_row_is_accounted_for(sample_run):
    con = duckdb.connect(str(sample_run[0]), read_only=True)
    rows = con.execute("SELECT kind, rows_in, accepted + rejected + skipped_blank + out_of_scope "
                       "FROM source_files").fetchall()
    assert all(a == b for _, a, b in rows), rows
    kinds = {}
    for k, _, _ in rows:
        kinds[k] = kinds.get(k, 0) + 1
    # 6 reference files, 2 override files, 2 area files, 12 readable sample reports and a cover letter (failed)
    assert kinds == {"municipalities": 1, "facility_file": 2, "meibo": 2, "code_list": 1, "link_overrides": 2,
                     "area_config": 2, "ishikai_report": 7, "shichoson_report": 6}
    # accepted rows are the rows in the tables
    assert con.execute("SELECT sum(accepted) FROM source_files WHERE kind = 'meibo'").fetchone()[0] == \
        con.execute("SELECT count(*) FROM notifications").fetchone()[0]


def test_failed_files_add_up(raw_copy, tmp_path):
    """A facility file and an override file given up at their header: their rows are rejected rows, so the counts
    of every file, failed or read, add up."""
    import zipfile
    zp = raw_copy / "reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip"
    with zipfile.ZipFile(zp) as z:
        name, data = z.namelist()[0], z.read(z.namelist()[0])
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr(name, data.decode("utf-8-sig").replace('"所在地",', '"住所",', 1).encode("utf-8-sig"))
    (raw_copy / "39/facility_link_overrides.csv").write_text(
        "医療機関コード,医療情報ネットID\n3910110001,39103100001\n", encoding="utf-8")
    out = tmp_path / "out"
    pipeline.run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    rows = con.execute("SELECT source_file, status, rows_in, accepted, rejected, skipped_blank, out_of_scope "
                       "FROM source_files").fetchall()
    assert all(n == a + r + s + o for _, _, n, a, r, s, o in rows), rows
    failed = {f: (n, r) for f, st, n, _, r, _, _ in rows if st == "failed" and not f.startswith("03/reports")}
    assert failed == {"reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip": (203, 203),
                      "39/facility_link_overrides.csv": (1, 1)}
    lost = con.execute("SELECT source_file, count(*) FROM rejected_rows WHERE \"row\" IS NOT NULL "
                       "AND rule = 'missing_column' GROUP BY ALL ORDER BY 1").fetchall()
    assert lost == [("39/facility_link_overrides.csv", 1),
                    ("reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip", 203)]


def test_home_care_status_matches_notifications(sample_run):
    con = duckdb.connect(str(sample_run[0]), read_only=True)
    # independent count: institutions with at least one 支援診 notification, straight from the rows
    direct = con.execute("SELECT count(DISTINCT inst_code) FROM notifications WHERE symbol LIKE '支援診%'").fetchone()[0]
    mart = con.execute("SELECT count(*) FROM home_care_status WHERE shien_kind = '支援診'").fetchone()[0]
    assert direct == mart > 0
    assert con.execute("SELECT count(*) FROM home_care_status").fetchone()[0] == \
        con.execute("SELECT count(*) FROM institutions").fetchone()[0]
    assert con.execute("SELECT count(*) FROM home_care_status WHERE shien_type IN ('2ア', '2イ')").fetchone()[0] > 0


def test_duckdb_cli_reads_the_file(sample_run):
    cli = Path(sys.executable).parent / "duckdb"     # the project's own, not any duckdb on PATH
    assert cli.is_file(), "duckdb CLI is installed with the project (duckdb-cli)"
    out = subprocess.run([cli, "-readonly", str(sample_run[0]), "-c", "SELECT count(*) FROM facility_links"],
                         capture_output=True, text=True, check=True).stdout
    assert any(ch.isdigit() for ch in out)


def test_database_storage_format(sample_run):
    """The file is written in the storage format warehouse names (a newer one than DuckDB's default: the 名簿
    table builds a third faster), which the project's own CLI reads (above)."""
    con = duckdb.connect(str(sample_run[0]), read_only=True)
    tags = con.execute("SELECT tags FROM duckdb_databases() WHERE NOT internal AND path IS NOT NULL").fetchone()[0]
    assert tags["storage_version"] == warehouse.STORAGE_VERSION + "+"


def test_bad_files_reported_and_run_goes_on(raw_copy, tmp_path):
    zp = raw_copy / "reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip"
    zp.write_bytes(zp.read_bytes()[:4000])                                   # truncated zip
    (raw_copy / "reference/kouseikyoku/shisetsu-broken-ika-r0808.xlsx").write_bytes(b"not a workbook")
    out = tmp_path / "out"
    summary = pipeline.run(raw_copy, out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    failed = dict(con.execute("SELECT source_file, status FROM source_files WHERE status = 'failed' "
                              "AND source_file LIKE 'reference/%'").fetchall())
    assert set(failed) == {"reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip",
                           "reference/kouseikyoku/shisetsu-broken-ika-r0808.xlsx"}
    msgs = con.execute("SELECT message FROM rejected_rows WHERE \"row\" IS NULL "
                       "AND source_file LIKE 'reference/%'").fetchall()
    assert len(msgs) == 2 and all(m[0] for m in msgs)
    assert con.execute("SELECT count(*) FROM facilities WHERE kind = 'hospital'").fetchone()[0] == 203
    assert summary["failed_files"] and not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_failed_run_keeps_previous_outputs(raw_copy, tmp_path):
    out = tmp_path / "out"
    pipeline.run(raw_copy, out, ["39"])
    before = (out / "annex.duckdb").read_bytes()
    (raw_copy / "reference/municipalities/municipalities.csv").write_text("壊れた,ファイル\n", encoding="utf-8")
    with pytest.raises(pipeline.RunError, match="市区町村マスタ"):
        pipeline.run(raw_copy, out, ["39"])
    assert (out / "annex.duckdb").read_bytes() == before
    assert sorted(p.name for p in out.iterdir() if p.name not in (".annex.lock", ".cache")) == ["39_高知県_在宅医療_別表.xlsx", "annex.duckdb", "returns",
                                                     "runs.jsonl"]   # no temporary leftovers
    # the failure is on record: the next good run's `runs` table shows it
    pipeline.run(RAW, out, ["39"])
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    outcomes = [r[0] for r in con.execute("SELECT outcome FROM runs ORDER BY started_at").fetchall()]
    errors = con.execute("SELECT error FROM runs WHERE outcome = 'failed'").fetchall()
    assert outcomes == ["success", "failed", "success"] and "市区町村マスタ" in errors[0][0]


def test_build_failure_leaves_old_file(tmp_path, sample_run, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(sample_run[0], out / "annex.duckdb")
    before = (out / "annex.duckdb").read_bytes()
    monkeypatch.setattr(warehouse, "TABLE_ORDER", warehouse.TABLE_ORDER + ["no_such_table"])
    with pytest.raises(Exception):
        pipeline.run(RAW, out, ["03"])
    assert (out / "annex.duckdb").read_bytes() == before
    # nothing half-written: no temporary files, and no return workbooks from the failed build
    assert sorted(p.name for p in out.iterdir() if p.name not in (".annex.lock", ".cache")) == ["annex.duckdb", "runs.jsonl"]


def test_reader_holding_the_file_does_not_block_the_swap(tmp_path):
    out = tmp_path / "out"
    pipeline.run(RAW, out, ["39"])
    reader = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    try:
        pipeline.run(RAW, out, ["03"])               # replaces the file while it is open
        assert reader.execute("SELECT DISTINCT pref_code FROM facilities").fetchall() == [("39",)]
    finally:
        reader.close()
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT pref_code FROM facilities").fetchall() == [("03",)]


def test_unknown_prefecture_is_a_clear_error():
    with pytest.raises(pipeline.RunError, match="設定のない都道府県コード"):
        pipeline.select_prefectures(RAW, ["13"])


def test_notifications_keep_the_staged_order(tmp_path, monkeypatch):
    """The 名簿's notifications are stored in the order they were staged (file, sheet, row as the bureau lists
    them): build() inserts them with one DuckDB thread. 600,000 rows: with two threads their row groups came out
    interleaved."""
    import datetime as dt
    import polars as pl
    n = 600_000
    whole = pl.DataFrame({
        "inst_code": [f"13{(i * 7919) % 10**8:08d}" for i in range(n)], "pref_code": "13",
        "name": [f"病院{i % 5000}" for i in range(n)], "notification_name": "在宅療養支援診療所",
        "symbol_raw": "支援診１", "symbol": "支援診1", "acceptance_no": [f"第{i}号" for i in range(n)],
        "start_date": dt.date(2024, 4, 1), "as_of": dt.date(2026, 8, 1), "source_file": "m.xlsx",
        "source_sheet": "東京都", "source_row": pl.int_range(5, n + 5, eager=True)})
    # in pieces, as the files and sheets are read: DuckDB 1.5 (one thread) stored the last 53 rows of a 149,557-row
    # Parquet row group after the whole file's other row groups, so the stage is written from one chunk
    at = [0, 87_342, 236_899, 374_024, 462_539, n]
    staged = pl.concat([whole.slice(a, b - a) for a, b in zip(at, at[1:])], rechunk=False)
    assert staged.n_chunks() == 5
    monkeypatch.setattr(warehouse, "TABLE_ORDER", ["notifications"])
    tmp = warehouse.build(tmp_path, {"stg_notifications": staged})
    con = duckdb.connect(str(tmp), read_only=True)
    try:
        got = [r[0] for r in con.execute("SELECT source_row FROM notifications").fetchall()]
    finally:
        con.close()
    assert got == staged["source_row"].to_list()


def test_notifications_staged_in_files_keep_their_order_and_each_file_its_name(tmp_path, monkeypatch):
    """StagedFiles (the parse cache's Parquet files, read where they are): the rows in the files' order, each
    file's rows in its own order, each with its file's source_file. Files of uneven sizes, each written from one
    chunk as the cache writes them: read by one statement, DuckDB 1.5 stored an uneven row group's tail after
    later row groups; build() inserts them file by file, in one transaction. The other tables' view of them
    (home_care_status reads it) holds the same rows."""
    import datetime as dt
    import polars as pl
    sizes = [149_557, 87_342, 5, 121_000]
    files, expected = [], []
    for k, n in enumerate(sizes):
        part = pl.DataFrame({
            "inst_code": [f"13{(i * 7919 + k) % 10**8:08d}" for i in range(n)], "pref_code": "13",
            "name": [f"病院{i % 5000}" for i in range(n)], "notification_name": "在宅療養支援診療所",
            "symbol_raw": "支援診１", "symbol": "支援診1", "acceptance_no": [f"第{i}号" for i in range(n)],
            "start_date": dt.date(2024, 4, 1), "as_of": dt.date(2026, 8, 1),
            "source_file": "/where/it/was/parsed.xlsx",    # the cache keeps the path of the parse
            "source_sheet": f"シート{k}", "source_row": pl.int_range(5, n + 5, eager=True)})
        path = tmp_path / f"part{k}.parquet"
        part.rechunk().write_parquet(path, compression="uncompressed", statistics=False)
        name = f"meibo/{k}_名簿'; DROP TABLE x; --.xlsx"    # a file name is input: bound, never pasted
        files.append((path, name))
        expected += [(name, f"シート{k}", r) for r in range(5, n + 5)]
    monkeypatch.setattr(warehouse, "TABLE_ORDER", ["notifications"])
    staged = warehouse.StagedFiles(tuple(files))
    out = tmp_path / "out"
    tmp = warehouse.build(out, {"stg_notifications": staged})
    con = duckdb.connect(str(tmp), read_only=True)
    try:
        got = con.execute("SELECT source_file, source_sheet, source_row FROM notifications").fetchall()
        comments = con.execute("SELECT count(*), count(comment) FROM duckdb_columns() "
                               "WHERE table_name = 'notifications'").fetchone()
    finally:
        con.close()
    assert got == expected and comments == (13, 13)
    # the view the main connection reads (in no set order): the same rows
    con = duckdb.connect()
    try:
        warehouse._stage_views(con, tmp_path, {"stg_notifications": staged})
        seen = con.execute("SELECT source_file, source_sheet, source_row FROM stg_notifications").fetchall()
    finally:
        con.close()
    assert sorted(seen) == sorted(expected)


def test_notifications_staged_from_the_parse_cache_are_the_rows_read(tmp_path, monkeypatch):
    """A run with a parse cache stages the 名簿 rows as the cache's files (pipeline.staged_notifications); the
    table built from them is the one built from the rows themselves, row for row and in order."""
    import dataclasses
    monkeypatch.setattr(warehouse, "TABLE_ORDER", ["notifications"])
    prefs = pipeline.select_prefectures(RAW, None)
    cache = tmp_path / "cache"
    tables = []
    for ref in (pipeline.load_reference(RAW, prefs, None, cache),     # parsed into the cache
                pipeline.load_reference(RAW, prefs, None, cache)):    # read from it
        staged = pipeline.staged_notifications(RAW, ref)
        assert isinstance(staged, warehouse.StagedFiles) and len(staged.files) == len(
            [r for r in ref.meibo_files if r.accepted.height]) >= 2 and staged.height == ref.notifications().height
        rows = pipeline.staged_notifications(RAW, dataclasses.replace(
            ref, meibo_files=[dataclasses.replace(r, parquet=None) for r in ref.meibo_files]))
        assert isinstance(rows, pl.DataFrame)
        for value in (staged, rows):
            tmp = warehouse.build(tmp_path / "out", {"stg_notifications": value})
            con = duckdb.connect(str(tmp), read_only=True)
            tables.append(con.execute("SELECT * FROM notifications").fetchall())
            con.close()
            warehouse.discard(tmp)
    assert tables[0] and all(t == tables[0] for t in tables)
    assert {r[-3] for r in tables[0]} == {str(p.relative_to(RAW)) for p in (RAW / "reference" / "kouseikyoku").glob("*.xlsx")}


def test_the_export_worker_gets_about_half_the_annex_rows(tmp_path):
    """worker_share: the heaviest prefectures go to different sides, every target to one side, and the two
    sides' rows (a fixed cost per workbook, the national summary on the worker's side) differ by less than a
    small prefecture's."""
    rows = {"13": 1574, "27": 1125, "14": 1193, "01": 1363, "23": 980, **{f"{c:02d}": 200 + 7 * c for c in range(30, 48)}}
    db = tmp_path / "a.duckdb"
    con = duckdb.connect(str(db))
    for t in ("annex_institutions", "annex_hubs", "candidates", "coverage"):
        con.execute(f"CREATE TABLE {t} (pref_code VARCHAR)")
    for code, n in rows.items():   # spread over the four tables: the share counts them all
        for i, t in enumerate(("annex_institutions", "annex_hubs", "candidates", "coverage")):
            con.execute(f"INSERT INTO {t} SELECT ? FROM range(?)", [code, n // 4 + (i < n % 4)])
    con.execute("INSERT INTO annex_hubs VALUES ('99')")   # a prefecture not in this run
    con.close()
    targets = sorted(rows)
    there = pipeline.worker_share(db, targets)
    assert there and there < set(targets)
    assert ("13" in there) != ("01" in there)            # the two heaviest apart
    load = lambda side: sum(rows[c] + pipeline.WORKBOOK_ROWS for c in side)
    here = set(targets) - there
    # within a small prefecture's weight (alternate prefectures: 1,040 rows apart here)
    assert abs(load(there) + pipeline.SUMMARY_ROWS - load(here)) < min(rows.values()) + pipeline.WORKBOOK_ROWS


def test_tables_built_beside_the_notifications_do_not_read_them():
    """build() makes every other table while BESIDE (the notifications) is still being inserted: none may read it;
    home_care_status reads the staged rows it is made from."""
    import re
    others = [t for t in warehouse.TABLE_ORDER if t != warehouse.BESIDE]
    assert len(others) == len(warehouse.TABLE_ORDER) - 1 >= 20
    for table in others:
        sql = (warehouse.SQL_DIR / f"{table}.sql").read_text(encoding="utf-8")
        assert not re.search(rf"(?<!stg_)\b{warehouse.BESIDE}\b", re.sub(r"--.*", "", sql)), table
    status = (warehouse.SQL_DIR / "home_care_status.sql").read_text(encoding="utf-8")
    assert re.search(rf"\bFROM stg_{warehouse.BESIDE}\b", status)


def test_a_frame_is_cut_by_prefecture_as_partition_by_cuts_it():
    """reference._by_prefecture: each prefecture's rows in the frame's order, as partition_by gives them, whether they
    come in one run each (a 名簿's sheets: cut as slices) or not (partitioned); a null code is a prefecture of its own."""
    import polars as pl
    from annex.reference import _by_prefecture

    def partitioned(df):
        return {key[0]: part for key, part in df.partition_by("pref_code", as_dict=True).items()}
    frames = [
        pl.DataFrame({"pref_code": ["13", "13", "14", "14", "14", "11"], "row": range(6)}),      # one run each
        pl.DataFrame({"pref_code": [None, None, "13", "14"], "row": range(4)}),                 # nulls first
        pl.DataFrame({"pref_code": ["13", None, None], "row": range(3)}),                       # nulls last
        pl.DataFrame({"pref_code": ["13", "14", "13", "14", "14"], "row": range(5)}),           # 13 in two runs
        pl.DataFrame({"pref_code": ["01"], "row": [0]}),
    ]
    for df in frames:
        got, want = _by_prefecture(df), partitioned(df)
        assert list(got) == list(want)
        assert all(got[k].equals(want[k]) for k in want), df
    assert _by_prefecture(pl.DataFrame(schema={"pref_code": pl.String})) == {}


def test_a_path_relative_to_raw_read_off_the_string_is_what_pathlib_gives():
    """pipeline._lexically_relative's string path (no parsing) against pathlib's relative_to, on paths that pathlib
    normalises (doubled or trailing slashes, '.' and '..' parts, names starting with dots) and ones it does not."""
    from pathlib import Path
    from annex.pipeline import _lexically_relative

    def by_pathlib(raw, path):
        pure = Path(path)
        if ".." not in pure.parts and pure.is_absolute() == raw.is_absolute() and ".." not in raw.parts:
            try:
                return str(pure.relative_to(raw))
            except ValueError:
                return None
        return None
    raws = [Path("/tmp/raw"), Path("raw"), Path("."), Path("/"), Path("/tmp/a b/raw"), Path("../raw")]
    tails = ["13/reports/報告.xlsx", "x", ".hidden/x.csv", "..x/y", "a..b", "a//b", "a/./b", "a/../b", "a/", ".", "..",
             "./a", "a/.", "a/..", "", "...", "a/.../b", " a /b "]
    for raw in raws:
        for tail in tails:
            for path in (f"{raw}/{tail}", f"{raw}{tail}", tail, f"/elsewhere/{tail}"):
                _lexically_relative.cache_clear()
                assert _lexically_relative(raw, path) == by_pathlib(raw, path), (raw, path)


def test_a_path_not_plainly_under_raw_is_made_relative_through_the_resolved_paths(tmp_path):
    """pipeline._relative beyond the string path: a path reached through '..' or a symlinked folder is relative to
    raw once both are resolved; a path outside raw is kept as it is."""
    from annex.pipeline import _relative
    raw = tmp_path / "raw"
    (raw / "13").mkdir(parents=True)
    (tmp_path / "linked").symlink_to(raw)
    assert _relative(raw, str(raw / "13" / ".." / "13" / "x.csv")) == "13/x.csv"
    assert _relative(tmp_path / "linked", str(raw / "13" / "x.csv")) == "13/x.csv"
    assert _relative(raw, str(tmp_path / "elsewhere" / "x.csv")) == str(tmp_path / "elsewhere" / "x.csv")
