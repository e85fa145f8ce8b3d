"""annex.synth: the synthetic input folder parses with the project's own readers, is deterministic, knows its
truth, and the whole refresh runs on it (small scale: 03, 14, 39 at ~1 % of the national counts)."""
import csv
import io
import json
import zipfile
from pathlib import Path

import duckdb
import pytest

from annex import codes, synth
from annex.areas import AREA_HEADER, read_areas
from annex.code_list import read_code_list
from annex.facility_files import read_facility_file
from annex.meibo import read_meibo
from annex.municipalities import MunicipalityIndex, read_master

RAW = Path(__file__).resolve().parent.parent / "raw"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "raw"
    manifest = synth.generate(out, "small", seed=7)
    return out, manifest


@pytest.fixture(scope="module")
def index(small):
    out, _ = small
    return MunicipalityIndex(read_master(out / "reference/municipalities/municipalities.csv").accepted)


def _errors(res):
    return [f for f in res.findings if f["severity"] == "error"]


def test_layout_and_manifest(small):
    out, m = small
    assert m["prefectures"] == ["03", "14", "39"]
    assert json.loads((out / "truth/manifest.json").read_text(encoding="utf-8"))["counts"] == m["counts"]
    c = m["counts"]
    # ~1 % of the national counts
    assert 60 <= c["hospitals_in_facility_file"] <= 95 and 700 <= c["clinics_in_facility_file"] <= 900
    assert 450 <= c["dental_in_facility_file"] <= 650 and 12_000 <= c["meibo_rows"] <= 20_000
    assert c["shien_byo"] > 0 and c["shien_shin"] > 0 and c["zaiisoukan"] > 0
    assert (out / "reference/municipalities/municipalities.csv").read_bytes() == \
        (RAW / "reference/municipalities/municipalities.csv").read_bytes()
    for p, name in (("03", "岩手県"), ("14", "神奈川県"), ("39", "高知県")):
        assert (out / p / "prefecture.toml").read_text(encoding="utf-8") == f'pref_code = "{p}"\npref_name = "{name}"\n'
        assert (out / p / "facility_link_overrides.csv").read_bytes() == \
            (RAW / "03/facility_link_overrides.csv").read_bytes().splitlines(keepends=True)[0]
        assert list((out / p / "reports/ishikai").iterdir()) and list((out / p / "reports/shichoson").iterdir())
    assert sorted(p.name for p in (out / "reference/kouseikyoku").iterdir()) == [
        "shisetsu-kantoshinetsu-ika-r0809.xlsx", "shisetsu-shikoku-ika-r0809.xlsx", "shisetsu-touhoku-ika-r0809.xlsx"]
    for rel, rows in m["files"].items():
        assert (out / rel).is_file(), rel


def test_facility_files_in_the_published_layout(small, index):
    out, m = small
    real = {}
    for kind, pattern in (("hospital", "01-1_*.zip"), ("clinic", "02-1_*.zip")):
        with zipfile.ZipFile(next((RAW / "reference/iryo_joho_net").glob(pattern))) as z:
            real[kind] = z.read(z.namelist()[0]).split(b"\r\n", 1)[0]
    real["dental"] = b",".join(real["hospital"].split(b",")[:57])
    for kind, prefix in (("hospital", "01-1"), ("clinic", "02-1"), ("dental", "03-1")):
        path = out / "reference/iryo_joho_net" / f"{prefix}_{kind}_facility_info_20260601.csv.zip"
        with zipfile.ZipFile(path) as z:
            assert z.namelist() == [path.name[:-4]]
            data = z.read(path.name[:-4])
        assert data.startswith(b"\xef\xbb\xbf") and data.split(b"\r\n", 1)[0] == real[kind]
        assert b"\n" not in data.replace(b"\r\n", b"")
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        assert all(len(r) == len(rows[0]) for r in rows)
        line2 = data.split(b"\r\n")[1].decode()
        assert ',"' in line2 and not line2.split(",")[10].startswith('"')   # coordinates bare
        assert any(r[10] == "0.0" and r[11] == "0.0" for r in rows[1:]) or kind == "hospital"
        for r in rows[1:]:
            assert r[0].startswith(r[7]) and len(r[0]) == (11 if r[7] in synth.ELEVEN_DIGIT_IDS else 13)
        res = read_facility_file(path, None, index.current)
        assert res.status == "read" and not res.findings, res.findings[:3]
        assert res.accepted.height == len(rows) - 1 == m["files"].get(f"reference/iryo_joho_net/{path.name}")


def test_meibo_code_list_and_areas_read_cleanly(small, index):
    out, _ = small
    n_inst = 0
    for path in sorted((out / "reference/kouseikyoku").glob("*.xlsx")):
        res = read_meibo(path, None, index.pref_code_by_name)
        assert res.status == "read" and not res.findings, res.findings[:3]
        assert res.as_of == "2026-09-01"
        df = res.accepted
        assert df["start_date"].null_count() == 0
        assert all(codes.inst_code_check_ok(c) for c in df["inst_code"].unique())
        n_inst += df["inst_code"].n_unique()
        symbols = set(df["symbol"])
        raw_symbols = set(df["symbol_raw"])
        assert {"支援診3", "在医総管1"} <= symbols
        assert "在医総管１" in raw_symbols and not any(s.isascii() and s[-1:].isdigit() for s in raw_symbols)  # full width
    assert n_inst > 800
    res = read_code_list(out / "reference/kouseikyoku_codes/all_med_inst_cd_202508.csv")
    assert res.status == "read" and not res.findings and res.accepted.height > 800
    for p in ("03", "14", "39"):
        res, areas = read_areas(out / p / "areas.csv", p, index)
        assert not res.findings, res.findings[:3]
        assert 5 <= areas.frame["secondary_area"].n_unique() <= 10
        assert 1 <= len(areas.ishikai_names()) <= 30
    assert synth.AREA_COLUMNS == list(AREA_HEADER)


def test_short_luhn_prefecture_codes():
    # 14 神奈川: check digit over the 6 digits after prefecture and 点数表
    body = "141" + "050123"
    code = body + str(codes.luhn_check_digit(body[3:]))
    assert codes.inst_code_check_ok(code)


def test_truth_links_point_at_existing_codes_and_ids(small):
    out, m = small
    links = list(csv.reader(open(out / "truth/links.csv", encoding="utf-8", newline="")))
    assert links[0] == ["inst_code", "facility_id"] and len(links) - 1 == m["counts"]["truth_links"]
    ids = set()
    for path in (out / "reference/iryo_joho_net").glob("0[12]-1_*.zip"):
        with zipfile.ZipFile(path) as z:
            ids |= {r[0] for r in list(csv.reader(io.StringIO(z.read(z.namelist()[0]).decode("utf-8-sig"))))[1:]}
    inst = set()
    for path in (out / "reference/kouseikyoku").glob("*.xlsx"):
        inst |= set(read_meibo(path).accepted["inst_code"])
    inst |= set(read_code_list(out / "reference/kouseikyoku_codes/all_med_inst_cd_202508.csv").accepted["inst_code"])
    codes_seen, ids_seen = set(), set()
    for code, fid in links[1:]:
        assert code in inst and fid in ids and codes.inst_code_check_ok(code)
        codes_seen.add(code)
        ids_seen.add(fid)
    assert len(codes_seen) == len(ids_seen) == len(links) - 1   # one-to-one
    assert len(links) - 1 < min(len(ids), len(inst))            # some institutions are in one source only


def test_deterministic(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    synth.generate(again, "small", seed=7)
    for rel in ("reference/kouseikyoku_codes/all_med_inst_cd_202508.csv", "14/areas.csv", "truth/links.csv",
                "reference/iryo_joho_net/02-1_clinic_facility_info_20260601.csv.zip",
                "reference/kouseikyoku/shisetsu-touhoku-ika-r0809.xlsx"):
        assert (again / rel).read_bytes() == (out / rel).read_bytes(), rel
    other = tmp_path / "other"
    synth.generate(other, "small", seed=8, prefs=["39"])
    rel = "reference/kouseikyoku_codes/all_med_inst_cd_202508.csv"
    assert (other / rel).read_bytes() != (out / rel).read_bytes()


def test_refresh_runs_and_links_against_truth(small, tmp_path):
    from annex.pipeline import run
    out, m = small
    summary = run(out, tmp_path / "out")
    assert not summary["failed_files"]
    con = duckdb.connect(str(tmp_path / "out" / "annex.duckdb"), read_only=True)
    links = set(con.execute("SELECT inst_code, facility_id FROM facility_links").fetchall())
    truth = {tuple(r) for r in list(csv.reader(open(out / "truth/links.csv", encoding="utf-8")))[1:]}
    correct = len(links & truth)
    assert correct / len(links) >= 0.98 and correct / len(truth) >= 0.95, (correct, len(links), len(truth))
    # every defect put into a report comes back as that error at that place, and no other report errors
    found = con.execute("SELECT source_file, coalesce(sheet, ''), coalesce(row, 0), rule FROM findings "
                        "WHERE severity = 'error'").fetchall()
    planned = [(d["file"], d["sheet"], int(d["row"]), d["rule"])
               for d in csv.DictReader(open(out / "truth/report_defects.csv", encoding="utf-8-sig"))]
    assert planned and sorted(found) == sorted(planned)
    n_reports = con.execute("SELECT count(*) FROM institution_reports").fetchone()[0]
    assert n_reports == m["counts"]["institution_report_rows"] - sum(
        1 for p in planned if p[3] in ("institution_not_found", "inst_code_check_digit", "yes_or_blank",
                                       "torikumi_in_range") and "/ishikai/" in p[0])


def test_scales_and_cli(tmp_path):
    plan = synth.plan_counts(synth.load_templates().master_rows, "prefecture", None)
    assert list(plan) == ["13"] and 500 < plan["13"]["hospital"] < 800 and plan["13"]["clinic"] > 6000
    national = synth.plan_counts(synth.load_templates().master_rows, "national", None)
    assert len(national) == 47
    assert abs(sum(v["clinic"] for v in national.values()) - 80_155) < 100
    biggest = sorted(national, key=lambda p: -national[p]["clinic"])[:3]
    assert set(biggest) == {"13", "27", "14"}
    with pytest.raises(ValueError):
        synth.plan_counts(synth.load_templates().master_rows, "national", ["99"])
    import argparse
    ap = argparse.ArgumentParser()
    synth.register_cli(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["synth", "--scale", "small", "--out", str(tmp_path / "o"), "--seed", "3", "--pref", "39"])
    assert args.scale == "small" and args.seed == 3 and args.pref == ["39"]
    assert args.func(args) == 0
    assert json.loads((tmp_path / "o/truth/manifest.json").read_text(encoding="utf-8"))["prefectures"] == ["39"]
