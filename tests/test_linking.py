"""Linking on the real sample against a hand-checked answer table, and the matcher's safety rules."""
import csv

import polars as pl

from annex import linking
from tests.conftest import DATA


def answers():
    with open(DATA / "hospital_links_answer.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_hospitals_linked_to_the_hand_checked_codes(sample_run):
    import duckdb
    db, _ = sample_run
    con = duckdb.connect(str(db), read_only=True)
    got = dict(con.execute("SELECT l.facility_id, l.inst_code FROM facility_links l "
                           "JOIN facilities f USING (facility_id) WHERE f.kind = 'hospital'").fetchall())
    hospitals = con.execute("SELECT count(*) FROM facilities WHERE kind = 'hospital'").fetchone()[0]
    expected = {a["facility_id"]: a["inst_code"] for a in answers()}
    assert hospitals == len(expected) == 203
    wrong = {f: (c, expected.get(f)) for f, c in got.items() if expected.get(f) != c}
    assert wrong == {}                                              # no link is wrong
    correct = sum(1 for f, c in expected.items() if c and got.get(f) == c)
    assert correct / hospitals >= 0.99, f"{correct}/{hospitals}"
    # the one without a counterpart is listed, not dropped
    missing = [f for f, c in expected.items() if not c]
    listed = {r[0] for r in con.execute("SELECT facility_id FROM unlinked_facilities").fetchall()}
    assert set(missing) <= listed


def test_links_are_one_to_one(sample_run):
    import duckdb
    con = duckdb.connect(str(sample_run[0]), read_only=True)
    assert con.execute("SELECT count(*) - count(DISTINCT inst_code), count(*) - count(DISTINCT facility_id) "
                       "FROM facility_links").fetchone() == (0, 0)


def side(key, name, address, block="032018", kind=None):
    from annex import text
    return linking.Side(key, name, text.name_key(name), text.full_name_key(name), text.address_key(address),
                        kind or text.kind_hint(name), block, block[:2])


def test_close_candidates_go_to_review_not_link():
    inst = [side("0310110001", "さくら内科クリニック", "本町1-2-3")]
    facs = [side("F1", "さくら内科クリニック", "本町1-2-3 1F"), side("F2", "医療法人 さくら内科クリニック", "本町1-2-3 2F")]
    links, review = linking.link(inst, facs)
    assert links.height == 0 and review.height == 2


def test_two_codes_never_share_a_facility():
    inst = [side("0310110001", "中央病院", "本町1-2-3"), side("0310110002", "中央病院", "本町1-2-3")]
    facs = [side("F1", "中央病院", "本町1-2-3")]
    links, review = linking.link(inst, facs)
    assert links.height == 0 and review.height == 2


def test_renamed_institution_at_same_address():
    inst = [side("0310111240", "盛岡さんさ病院", "館向町4番8号")]
    facs = [side("03103100111", "医療法人社団　高松病院", "館向町４ー８")]
    links, _ = linking.link(inst, facs)
    assert links.row(0, named=True)["method"] == "address"
    assert "名称変更" in links["why"].item()


def test_hospital_never_linked_to_a_clinic_at_the_same_address():
    inst = [side("0310110001", "はなまる内科クリニック", "本町1-2-3")]
    facs = [side("F1", "本町病院", "本町1-2-3", kind="hospital")]
    links, review = linking.link(inst, facs)
    assert links.height == 0 and review.height == 0


def test_override_wins():
    inst = [side("0310110001", "甲病院", "本町1-2-3"), side("0310110002", "乙病院", "本町9")]
    facs = [side("F1", "甲病院", "本町1-2-3"), side("F2", "丙病院", "本町7")]
    ov = pl.DataFrame({"inst_code": ["0310110001", "0310110002"], "facility_id": ["F1", "F2"],
                       "action": ["reject", "link"], "note": ["別施設", "確認済"]})
    links, _ = linking.link(inst, facs, ov)
    assert links.select("inst_code", "facility_id", "method").rows() == [("0310110002", "F2", "override")]


def test_gaiji_names_do_not_crash():
    inst = [side("0310112826", "\ue1d1坂医院", "中央通1-1")]
    facs = [side("F1", "\ue1d1坂医院", "中央通1-1")]
    links, _ = linking.link(inst, facs)
    assert links.height == 1


def test_override_file(tmp_path):
    p = tmp_path / "facility_link_overrides.csv"
    p.write_text("医療機関コード,医療情報ネットID,指示,理由\n0310110309,03103100001,紐付け,確認済\n"
                 "0310110309,03103100001,たぶん,\n", encoding="utf-8")
    res = linking.read_overrides(p)
    assert res.accepted.height == 1 and [f["row"] for f in res.findings] == [3]


def test_override_file_with_a_wrong_header_adds_up(tmp_path):
    """A header without 指示: one file-level finding, and each of its rows rejected (a blank one skipped)."""
    p = tmp_path / "facility_link_overrides.csv"
    p.write_text("医療機関コード,医療情報ネットID,理由\n0310110309,03103100001,確認済\n\n0310110310,03103100002,\n",
                 encoding="utf-8")
    res = linking.read_overrides(p)
    assert res.status == "failed" and res.accepted.height == 0
    assert [(f["row"], f["rule"]) for f in res.findings] == [(None, "missing_column"), (2, "missing_column"),
                                                               (4, "missing_column")]
    assert res.balanced() and (res.rows_in, res.rejected, res.skipped_blank) == (3, 2, 1)


def test_block_filter_keeps_every_pair_that_can_matter(monkeypatch):
    """_plausible_pairs drops pairs by a whole-block upper bound; no pair scoring 0.3 or more may be dropped
    (links need 0.85, review 0.4 with competitors within 0.1). Checked against the exact pairwise scores on
    the real sample's facilities, every block, plus near-miss spellings made from them."""
    from annex.pipeline import select_prefectures
    from annex.reference import read_reference
    from tests.conftest import RAW
    ref = read_reference(RAW, {p.code for p in select_prefectures(RAW, None)})
    fac = ref.facilities()
    sides = linking.make_sides(fac, "facility_id", "kind", ref.index)
    # the other side: the same facilities renamed/moved slightly, as the 名簿 writes them
    def twist(s, n):
        name = s.name_key[:-1] if n % 3 == 0 else s.name_key + "分院" if n % 3 == 1 else s.name_key[1:]
        addr = s.address_key.rsplit("-", 1)[0] if n % 2 else s.address_key + "-1"
        return linking.Side(f"x{n}", s.name, name, "", addr, s.kind, s.block, s.pref_code)
    others = [twist(s, n) for n, s in enumerate(sides)]
    blocks: dict[str, tuple[list, list]] = {}
    for s in others:
        blocks.setdefault(s.block, ([], []))[0].append(s)
    for s in sides:
        blocks.setdefault(s.block, ([], []))[1].append(s)
    compared = kept_total = 0
    monkeypatch.setattr(linking, "FULL_PAIRS_UP_TO", 10**9)   # every block compared as a small one
    for insts, facs in blocks.values():
        ia, ib = linking.candidate_index(insts, facs)
        kept = {(insts[a].key, facs[b].key) for a, b in zip(ia.tolist(), ib.tolist())}
        kept_total += len(kept)
        for i in insts:
            for f in facs:
                compared += 1
                sc = linking.W_NAME * linking.name_score(i, f) + linking.W_ADDR * linking.address_score(i, f)
                if sc >= 0.3 and linking.compatible(i, f):
                    assert (i.key, f.key) in kept, (i, f, sc)
                if not linking.compatible(i, f):
                    assert (i.key, f.key) not in kept, (i, f)
    assert compared > 10_000 and kept_total < compared / 2   # the filter does filter
    # large blocks (a Tokyo ward) keep a shortlist: at least every pair with the same name or the same address
    monkeypatch.setattr(linking, "FULL_PAIRS_UP_TO", 0)
    for insts, facs in blocks.values():
        ia, ib = linking.candidate_index(insts, facs)
        kept = {(insts[a].key, facs[b].key) for a, b in zip(ia.tolist(), ib.tolist())}
        for i in insts:
            for f in facs:
                if linking.compatible(i, f) and ((i.name_key and i.name_key == f.name_key)
                                                 or (i.address_key and i.address_key == f.address_key)):
                    assert (i.key, f.key) in kept, (i, f)


def test_column_wise_scores_equal_the_pair_by_pair_functions():
    """score_pairs (rapidfuzz over arrays, rules as selections) must give exactly name_score/address_score and
    the rounded combination, on every pair of a block of real names and addresses and their near-misses."""
    import numpy as np
    from annex.pipeline import select_prefectures
    from annex.reference import read_reference
    from tests.conftest import RAW
    ref = read_reference(RAW, {p.code for p in select_prefectures(RAW, None)})
    fac = ref.facilities().filter(pl.col("municipality_code").is_in(["032018", "392014"]))
    sides = linking.make_sides(fac, "facility_id", "kind", ref.index)
    # the other side: renamed, moved and shortened versions (prefixes, dashes, towns without numbers)
    others = [linking.Side(f"x{n}", s.name, (s.name_key[:-2], s.name_key, "", s.name_key + "分院")[n % 4],
                           s.full_key if n % 5 == 0 else "",
                           (s.address_key.rsplit("-", 1)[0], s.address_key + "-7", s.address_key,
                            s.address_key.split("-")[0], "")[n % 5], s.kind, s.block, s.pref_code)
              for n, s in enumerate(sides)]
    ia = np.repeat(np.arange(len(others)), len(sides))
    ib = np.tile(np.arange(len(sides)), len(others))
    sc, ns, as_ = linking.score_pairs(others, sides, ia, ib)
    assert len(sc) > 20_000
    for k, (a, b) in enumerate(zip(ia.tolist(), ib.tolist())):
        i, f = others[a], sides[b]
        n, ad = linking.name_score(i, f), linking.address_score(i, f)
        assert (ns[k], as_[k], sc[k]) == (n, ad, round(linking.W_NAME * n + linking.W_ADDR * ad, 3)), (i, f)


def test_same_name_elsewhere_does_not_take_a_renamed_institutions_facility():
    """National synthetic data, 杉並区: 内田医院 (5-26-7) now appears in 医療情報ネット as 赤宿診療所 at 5-26-7,
    while the 名簿 also has a different 赤宿診療所 at 1-10-8 with no facility. The unique-name rule must not pair
    the two 赤宿診療所; the same-address rule pairs the renamed one."""
    inst = [side("1311518604", "内田医院", "赤宿五丁目26番7号", "131156"),
            side("1311520303", "赤宿診療所", "赤宿1丁目10-8", "131156")]
    facs = [side("1322134078340", "赤宿診療所", "赤宿5-26-7 上田ビル1階", "131156")]
    links, _ = linking.link(inst, facs)
    assert links.select("inst_code", "facility_id", "method").rows() == [("1311518604", "1322134078340", "address")]


def _mutual_best_pair_by_pair(pairs: dict, good) -> list:
    from annex.linking import MARGIN
    """The pass as it was first written, a list per institution and facility: the reference for mutual_best."""
    best_i: dict[str, list] = {}
    best_f: dict[str, list] = {}
    for (ik, fk), sc in pairs.items():
        best_i.setdefault(ik, []).append((sc[0], fk))
        best_f.setdefault(fk, []).append((sc[0], ik))
    for d in (best_i, best_f):
        for v in d.values():
            v.sort(reverse=True)
    out = []
    for (ik, fk), sc in pairs.items():
        if not good(sc):
            continue
        ci, cf = best_i[ik], best_f[fk]
        if ci[0][1] != fk or cf[0][1] != ik:
            continue
        if (len(ci) > 1 and ci[1][0] > sc[0] - MARGIN) or (len(cf) > 1 and cf[1][0] > sc[0] - MARGIN):
            continue
        out.append(((ik, fk), sc))
    return out


def test_mutual_best_equals_the_pair_by_pair_pass():
    """Random blocks with many equal scores (ties broken by key) and scores within the margin of each other."""
    import random
    import numpy as np
    from annex.linking import ACCEPT, Side, mutual_best
    rng = random.Random(7)
    for trial in range(300):
        n_i, n_f = rng.randint(1, 12), rng.randint(1, 12)
        insts = [Side(f"{rng.randint(0, 10**10):010d}", "", "", "", "", None, "b", "13") for _ in range(n_i)]
        facs = [Side(str(rng.randint(0, 10**6)), "", "", "", "", None, "b", "13") for _ in range(n_f)]
        if len({s.key for s in insts}) < n_i or len({s.key for s in facs}) < n_f:
            continue
        cells = [(a, b) for a in range(n_i) for b in range(n_f) if rng.random() < 0.6]
        ia, ib = np.array([c[0] for c in cells], dtype=np.int64), np.array([c[1] for c in cells], dtype=np.int64)
        sc = [rng.choice([0.85, 0.9, 0.95, 0.95, 1.0, 0.8, 0.905, round(rng.random(), 3)]) for _ in cells]
        ns = [rng.choice([0.5, 0.9, 1.0]) for _ in cells]
        as_ = [rng.choice([0.5, 0.85, 1.0]) for _ in cells]
        pairs = {(insts[a].key, facs[b].key): (s, n, d) for a, b, s, n, d in zip(ia.tolist(), ib.tolist(), sc, ns, as_)}
        expected = _mutual_best_pair_by_pair(pairs, lambda v: v[0] >= ACCEPT and (v[1] >= 0.9 or v[2] == 1.0))
        got = mutual_best(insts, facs, ia, ib, sc, ns, as_).tolist()
        assert [((insts[ia[k]].key, facs[ib[k]].key), (sc[k], ns[k], as_[k])) for k in got] == expected, trial


def test_linking_in_two_parts_equals_linking_at_once(tmp_path, monkeypatch):
    """Municipalities split between this process and the helper give the same links and review list, and an
    override pairing across two municipalities keeps both of them on one side (here)."""
    import shutil
    from annex import pipeline, workers
    from conftest import RAW
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    shutil.copytree(RAW / "39", tmp_path / "39")
    shutil.copytree(RAW / "reference", tmp_path / "reference")
    pref = pipeline.select_prefectures(tmp_path, ["39"])[0]
    ref = pipeline.load_reference(tmp_path, [pref])
    inst, _ = pipeline.pref_institutions(ref, pref)
    fac = ref.of_prefecture("facilities", "39")
    i = inst.filter(pl.col("municipality_code") == "392014").row(0, named=True)        # 高知市
    f = fac.filter(pl.col("municipality_code") == "392031").row(0, named=True)         # 安芸市
    # and a 紐付け禁止 for the old code of こいけクリニック (四万十市): the 名簿's 吉井クリニック nearby stays its
    # facility's candidate for review
    (pref.dir / "facility_link_overrides.csv").write_text(
        f"医療機関コード,医療情報ネットID,指示,理由\n{i['inst_code']},{f['facility_id']},紐付け,確認済\n"
        "3910711088,3922395412000,紐付け禁止,確認済\n", encoding="utf-8")
    whole = pipeline.link_prefecture(ref, pref)
    monkeypatch.setattr(pipeline, "SPLIT_FROM_RECORDS", 0)
    monkeypatch.setattr(pipeline, "HELPER_SHARE", 0.5)
    there = pipeline.split_blocks(inst, fac, whole.overrides.accepted)
    assert there and not {"392014", "392031"} & there and len(there) < inst["municipality_code"].n_unique()
    with workers.Helper() as helper:
        parts = pipeline.link_prefecture(ref, pref, helper=helper)
    assert (i["inst_code"], f["facility_id"], "override") in whole.links.select("inst_code", "facility_id", "method").rows()
    assert parts.links.rows() == whole.links.rows() and whole.links.height > 50
    assert parts.review.rows() == whole.review.rows() and whole.review.height > 0


def test_dental_clinics_are_matched_only_with_dental_institutions():
    """A renamed clinic (内田医院 -> 赤宿内科クリニック) shares its building with a dental clinic. Read from the 医科
    名簿 alone, dental clinics are not matched at all (pipeline.matchable, applied by link_prefecture): the
    same-address rule links the renamed clinic, where the dental clinic at that address used to make the
    address look shared. With a dental (点数表 3) institution in the prefecture, dental clinics are matched
    again, and a dental institution is never linked to the 医科 clinic."""
    from annex.pipeline import link_frames, matchable
    from annex.reference import read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {"03"}).index
    inst = pl.DataFrame({"inst_code": ["0311518604"], "name": ["内田医院"], "pref_code": ["03"],
                         "municipality_code": ["032018"], "address": ["岩手県盛岡市本町五丁目26番7号"],
                         "tensuhyo": ["1"], "in_meibo": [True]})
    fac = pl.DataFrame({"facility_id": ["0322134078340", "0332134078341"],
                        "name": ["赤宿内科クリニック", "あかしゅく歯科"], "pref_code": ["03", "03"],
                        "municipality_code": ["032018", "032018"],
                        "address": ["盛岡市本町5-26-7 上田ビル1階", "盛岡市本町5-26-7 上田ビル2階"],
                        "kind": ["clinic", "dental"]})
    assert matchable(inst, fac, None)["facility_id"].to_list() == ["0322134078340"]
    got = link_frames(inst, matchable(inst, fac, None), None, index)["links"]
    assert got.select("inst_code", "facility_id", "method").rows() == [("0311518604", "0322134078340", "address")]
    # every facility stays matchable once the prefecture has a dental institution; the dental one links dental
    dental = pl.DataFrame({"inst_code": ["0331518605"], "name": ["あかしゅく歯科"], "pref_code": ["03"],
                           "municipality_code": ["032018"], "address": ["岩手県盛岡市本町5-26-7"],
                           "tensuhyo": ["3"], "in_meibo": [True]})
    both = pl.concat([inst, dental])
    assert matchable(both, fac, None).height == 2
    links = link_frames(both, matchable(both, fac, None), None, index)["links"]
    assert ("0331518605", "0332134078341") in links.select("inst_code", "facility_id").rows()
    assert ("0331518605", "0322134078340") not in links.select("inst_code", "facility_id").rows()
    # a manual override may still name a dental clinic
    chosen = pl.DataFrame({"inst_code": ["0311518604"], "facility_id": ["0332134078341"], "action": ["link"]})
    assert matchable(inst, fac, chosen).height == 2


def test_institution_municipality_from_code_else_address_and_findings():
    """reference.institutions: the 名簿's 市町村コード wins where it is digits (花巻市 although the address says
    盛岡市), else the address decides; an address that names no municipality and a name with 外字 are findings."""
    import datetime as dt
    from annex.pipeline import select_prefectures
    from annex.reference import institutions, read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {p.code for p in select_prefectures(RAW, ["03"])}).index
    rows = [  # inst_code, name, address, city_code
        ("0310110309", "遠山病院", "岩手県盛岡市下ノ橋町6番14号", "205"),     # code: 花巻市 (032051)
        ("0310111240", "盛岡さんさ病院", "盛岡市本町通1丁目", ""),             # blank code: address
        ("0310112008", "つなぎ医院", "岩手県紫波郡紫波町桜町1", "２０１"),     # full-width code: address
        ("0310113997", "どこか医院", "どこか1-1", None),                      # no municipality: finding
        ("0310114003", "髙\ue001クリニック", "盛岡市中央通2丁目", None),       # 外字: finding
    ]
    notes = pl.DataFrame([{"inst_code": c, "pref_code": "03", "tensuhyo": "1", "name": n, "address": a,
                           "postcode": None, "beds": None, "city_code": cc, "as_of": dt.date(2026, 8, 1),
                           "source_file": "m.xlsx", "source_sheet": "岩手県", "source_row": i + 5}
                          for i, (c, n, a, cc) in enumerate(rows)],
                         schema_overrides={"beds": pl.Int32, "postcode": pl.String, "city_code": pl.String})
    inst, found = institutions(notes, index)
    assert inst["municipality_code"].to_list() == ["032051", "032018", "033219", None, "032018"]
    assert inst["has_gaiji"].to_list() == [False, False, False, False, True]
    assert [(f["rule"], f["row"]) for f in found] == [("municipality_from_address", 8), ("gaiji", 9)]


def test_all_municipalities_at_once_equal_each_municipality_alone():
    """link() pairs, scores and passes every block (municipality) in one set of arrays. What it gives must be
    what linking each block alone gives — the rules that count "unique" (a name, a street address) count within
    the block, and the review's competitors are pairs of the same institution or facility. The blocks here repeat
    each other's names and street addresses (the same 本町クリニック in 3 municipalities, renamed clinics at
    shared addresses), and one block is large enough for the shortlist path."""
    import random
    rng = random.Random(11)
    names = ["本町クリニック", "さくら内科", "中央病院", "駅前医院", "みどり診療所", "ひまわりクリニック", "山田医院"]
    streets = ["本町1-2-3", "本町1-2-4", "中央2-5", "駅前3-1-1", "緑町7", "桜木町4-4-2"]
    insts, facs = [], []
    for b, muni in enumerate(["032018", "032026", "032034", "032051"]):
        n = 90 if muni == "032051" else rng.randint(3, 9)   # 90 × 90 pairs: above FULL_PAIRS_UP_TO
        for k in range(n):
            # most names and addresses distinct in the block, every third shared with other blocks
            name = rng.choice(names) + ("" if k % 3 == 0 else "第一二三四五六七八九"[k % 9] + "号館" * (k % 2))
            street = rng.choice(streets) if k % 3 == 0 else f"{rng.choice('東西南北')}町{k % 7 + 1}-{k}"
            insts.append(side(f"03{b}{k:07d}", name, street, muni))
            fname = name if rng.random() < 0.7 else rng.choice(names)         # some renamed
            fstreet = street if rng.random() < 0.8 else rng.choice(streets)   # some moved
            facs.append(side(f"f{b}{k:05d}", fname, fstreet, muni))
    assert 90 * 90 > linking.FULL_PAIRS_UP_TO
    at_once_links, at_once_review = linking.link(insts, facs)
    parts = [linking.link([s for s in insts if s.block == m], [s for s in facs if s.block == m])
             for m in sorted({s.block for s in insts})]
    alone_links = pl.concat([p[0] for p in parts]).sort("inst_code")
    alone_review = pl.concat([p[1] for p in parts]).sort(**linking.REVIEW_ORDER)
    assert at_once_links.rows() == alone_links.rows() and at_once_links.height > 50
    assert at_once_review.rows() == alone_review.rows() and at_once_review.height > 100
    assert set(at_once_links["method"]) == {"name_address", "name", "address"}


def test_competitors_are_counted_as_one_by_one():
    """_count_at_least, asked for some pairs, counts what a loop over all pairs of the same group counts."""
    import random
    import numpy as np
    rng = random.Random(5)
    for trial in range(200):
        n = rng.randint(1, 60)
        group = np.array([rng.randint(0, 6) for _ in range(n)], dtype=np.int64)
        score = np.array([rng.choice([0.3, 0.4, 0.5, 0.55, round(rng.random(), 3)]) for _ in range(n)])
        threshold = score - linking.MARGIN
        at = np.array(sorted(rng.sample(range(n), rng.randint(0, n))), dtype=np.int64)
        got = linking._count_at_least(group, score, threshold, at).tolist()
        assert got == [sum(1 for j in range(n) if group[j] == group[k] and score[j] >= threshold[k])
                       for k in at.tolist()], trial


def _frames(inst_rows: list[tuple], fac_rows: list[tuple]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Institutions (code, name, address, in the 名簿) and facilities (id, name, address) of 盛岡市, as link_frames
    takes them."""
    inst = pl.DataFrame({"inst_code": [r[0] for r in inst_rows], "name": [r[1] for r in inst_rows],
                         "pref_code": "03", "municipality_code": "032018",
                         "address": [f"岩手県盛岡市{r[2]}" for r in inst_rows], "tensuhyo": "1",
                         "in_meibo": [r[3] for r in inst_rows]})
    fac = pl.DataFrame({"facility_id": [r[0] for r in fac_rows], "name": [r[1] for r in fac_rows],
                        "pref_code": "03", "municipality_code": "032018",
                        "address": [f"盛岡市{r[2]}" for r in fac_rows], "kind": "hospital"})
    return inst, fac


def test_override_to_an_old_code_wins_over_a_current_one():
    """The override file names a code known only from the code list; the matcher would give the facility to the
    名簿's code with the same name and address. The override is made first, whichever pass its code is in."""
    from annex.pipeline import link_frames
    from annex.reference import read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {"03"}).index
    inst, fac = _frames([("0310110001", "中央病院", "本町1-2-3", True), ("0310119999", "北病院", "北町9", False)],
                        [("03103100001", "中央病院", "本町1-2-3")])
    chosen = pl.DataFrame({"inst_code": ["0310119999"], "facility_id": ["03103100001"], "action": ["link"],
                           "note": ["旧コードで届出"]})
    got = link_frames(inst, fac, chosen, index)
    assert got["links"].select("inst_code", "facility_id", "method").rows() == [
        ("0310119999", "03103100001", "override")]
    assert got["review"].height == 0 and got["review_older"].height == 0


def test_old_code_does_not_take_a_facility_between_close_current_codes():
    """Two codes of the 名簿 are equally close to a facility (review); a code known only from the code list that
    matches it as well is a third close candidate: the pair goes to review, never to a link. An old code far
    ahead of the 名簿's candidate keeps its link, and the facility leaves the review list as a linked one does."""
    from annex.pipeline import link_frames
    from annex.reference import read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {"03"}).index
    inst, fac = _frames([("0310110001", "中央病院", "本町1-2-3", True), ("0310110002", "中央病院", "本町1-2-3", True),
                         ("0310119999", "中央病院", "本町1-2-3", False),
                         ("0310110003", "南町南病院", "南町8-8", True), ("0310119998", "南病院", "南町4-4", False)],
                        [("03103100001", "中央病院", "本町1-2-3"), ("03103100002", "南病院", "南町4-4")])
    got = link_frames(inst, fac, None, index)
    assert got["links"].select("inst_code", "facility_id").rows() == [("0310119998", "03103100002")]
    assert sorted(got["review"].select("inst_code", "facility_id").rows()) == [
        ("0310110001", "03103100001"), ("0310110002", "03103100001")]
    held = got["review_older"].row(0, named=True)
    assert got["review_older"].height == 1 and (held["inst_code"], held["facility_id"]) == ("0310119999", "03103100001")
    assert "近接" in held["reason"]


def test_a_space_ends_the_street_part_through_make_sides():
    """make_sides cuts the address after the municipality keeping its spaces, so address_key's rule applies: the
    floor after the space is not read as part of the house number (丸ノ内1丁目7-45 4階 is 丸ノ内1-7-45, not
    1-7-454), while a number after a unit and a space continues the street (1丁目 7-45)."""
    from annex.reference import read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {"39"}).index
    fac = pl.DataFrame({"facility_id": ["1", "2", "3", "4"], "name": ["高知県庁診療所"] * 4, "pref_code": "39",
                        "municipality_code": "392014",
                        "address": ["高知県高知市丸ノ内1丁目7-45 4階", "高知市　丸ノ内１丁目７－４５　４階",
                                    "高知市丸ノ内1丁目 7-45", "高知県 高知市 丸ノ内一丁目7番45号"], "kind": "clinic"})
    assert [s.address_key for s in linking.make_sides(fac, "facility_id", "kind", index)] == ["丸ノ内1-7-45"] * 4


def per_value_sides(df: pl.DataFrame, key: str, kind_col: str | None, index) -> list:
    """make_sides as the per-value functions define it: the remainder of index.resolve keyed by text.address_key,
    the name by text.name_key, full_name_key and kind_hint."""
    from annex import text
    def col(name):
        return df[name].to_list() if name and name in df.columns else [None] * df.height
    out = []
    for k, name, pref, muni, address, kind, tensuhyo in zip(
            col(key), col("name"), col("pref_code"), col("municipality_code"), col("address"), col(kind_col),
            col("tensuhyo")):
        street = address or ""
        if muni:
            _, street = index.resolve(pref, street)
        if kind != "dental" and tensuhyo == "3":
            kind = "dental"
        kind = kind if kind in ("hospital", "clinic", "dental") else text.kind_hint(name)
        out.append(linking.Side(k, name, text.name_key(name), text.full_name_key(name), text.address_key(street),
                                kind, muni or f"pref:{pref}", pref))
    return out


def test_make_sides_gives_what_the_per_value_functions_give():
    """make_sides keys names by text.name_keys and streets by MunicipalityIndex.street_key, which skip for plain text
    the steps that cannot apply to it: the same Sides, in the same order, as the per-value functions give — on the
    sample's institutions and facilities, on the hand-checked answers' names and addresses (each source's writing),
    and on every cell of the hostile-input corpus's CSV files taken as a name and as an address."""
    from annex import text
    from annex.csvio import decode, rows_with_line_numbers
    from annex.pipeline import pref_institutions, select_prefectures
    from annex.reference import read_reference
    from tests.conftest import RAW
    prefs = select_prefectures(RAW, None)
    ref = read_reference(RAW, {p.code for p in prefs})
    index = ref.index
    frames = []
    for p in prefs:
        r = ref.for_prefecture(p.code)
        frames += [(pref_institutions(r, p)[0], "inst_code", None), (r.of_prefecture("facilities", p.code), "facility_id", "kind")]
    rows = [(a["facility_id"], a[f"{side}_name"], a[f"{side}_address"]) for a in answers() for side in ("facility", "inst")]
    cells = sorted({c for path in sorted((DATA.parent / "corpus").glob("*.csv")) + sorted(DATA.glob("*.csv"))
                    for _, fields in rows_with_line_numbers(decode(path.read_bytes())[0]) for c in fields})
    rows += [(str(n), c, c) for n, c in enumerate(cells)]
    made = pl.DataFrame({"key": [r[0] for r in rows], "name": [r[1] for r in rows], "address": [r[2] for r in rows]})
    for pref in ("03", "39"):   # with the municipality known (cut by index.resolve) and without
        frames += [(made.with_columns(pref_code=pl.lit(pref), municipality_code=pl.lit(code)), "key", None)
                   for code in (f"{pref}2014", None)]
    records = plain = 0
    for df, key, kind_col in frames:
        assert linking.make_sides(df, key, kind_col, index) == per_value_sides(df, key, kind_col, index)
        records += df.height
        plain += sum(text.plain_basic(a or "") is not None for a in df["address"])
    # the fast paths are what is compared: most of these addresses take them
    assert records > 5000 and plain > records / 2, (records, plain)


def test_matrix_and_pair_by_pair_ratios_are_the_same_floats():
    """Small blocks are measured as matrices (cdist), the rest pair by pair (cpdist), and a large block's name
    ratios come from its matrix: a score must not depend on the path. The ratio is a function of the two
    lengths and the longest common subsequence, so every (la, lb, LCS) up to 100 characters is checked, in the
    8-bit and the 16-bit string kinds (rapidfuzz's SIMD matrix paths go up to 64)."""
    import numpy as np
    from rapidfuzz.process import cdist, cpdist
    for same, other in (("a", "b"), ("本", "町")):
        queries = [same * la for la in range(101)]
        # with the query same·la: LCS = min(la, k)
        choices = [same * k + other * (lb - k) for lb in range(101) for k in range(lb + 1)]
        matrix = cdist(queries, choices, scorer=linking._ratio, dtype=np.float64)
        rows = np.repeat(np.arange(len(queries)), len(choices)).tolist()
        cols = np.tile(np.arange(len(choices)), len(queries)).tolist()
        pairs = cpdist([queries[r] for r in rows], [choices[c] for c in cols], scorer=linking._ratio, dtype=np.float64)
        assert np.array_equal(matrix.ravel(), pairs)


def test_rounding_is_pythons_round_at_the_half_thousandths():
    """_round3 rounds column-wise; at x.xxx5 (where v·1000 is a hair off the half) it must still give what
    round(v, 3) gives: values at, just below and just above every half-thousandth of [0, 1], the weighted sums
    the scores are made of, and random values."""
    import random
    import numpy as np
    halves = [(k + 0.5) / 1000 for k in range(1000)]
    values = halves + [float(np.nextafter(v, to)) for to in (0.0, 1.0) for v in halves]   # Python floats
    rng = random.Random(3)
    grid = [k / 1000 for k in range(1001)]
    values += [linking.W_NAME * rng.choice(grid) + linking.W_ADDR * rng.choice(grid) for _ in range(20_000)]
    values += [0.8 * rng.random() for _ in range(20_000)]
    got = linking._round3(np.array(values, dtype=np.float64))
    assert got.tolist() == [round(v, 3) for v in values]
    # _select: the first condition that holds, else the rounded value
    otherwise = np.array(values[:3000])
    cond = [np.array([k % 3 == 0 for k in range(3000)]), np.array([k % 2 == 0 for k in range(3000)])]
    assert linking._select(cond, [1.0, 0.5], otherwise).tolist() == [
        1.0 if k % 3 == 0 else 0.5 if k % 2 == 0 else round(v, 3) for k, v in enumerate(values[:3000])]


def test_most_similar_takes_what_a_stable_sort_takes():
    """A large block's shortlist takes each institution's n most similar names, ties to the facility listed
    first: _most_similar (by partition) against the first n of a stable descending sort, with many ties."""
    import numpy as np
    rng = np.random.default_rng(2)
    for trial in range(2000):
        shape = (int(rng.integers(1, 12)), int(rng.integers(1, 40)))
        sim = rng.choice([0.0, 0.25, 0.5, 0.5, 0.8, 1.0], size=shape) if trial % 2 else rng.random(shape)
        n = int(rng.integers(1, 10))
        expected = np.zeros(shape, dtype=bool)
        np.put_along_axis(expected, np.argsort(-sim, axis=1, kind="stable")[:, :n], True, axis=1)
        assert np.array_equal(linking._most_similar(sim, n), expected), trial


def test_affixes_are_found_wherever_they_are():
    """_affix asks rapidfuzz only about pairs whose LCS (read off the ratio) is the shorter length; it must
    still find every key that starts (or ends) the other: against str.startswith/endswith on keys from a
    three-letter alphabet (many prefixes, suffixes and near-misses), empty keys included."""
    import random
    import numpy as np
    rng = random.Random(4)
    words = ["".join(rng.choice("あいう") for _ in range(rng.randint(0, 7))) for _ in range(400)]
    a = np.array(words[:200] + [""], dtype=object)[:-1]
    b = np.array(words[200:] + [w[:rng.randint(0, len(w))] for w in words[:200]] + [""], dtype=object)[:-1]
    ia = np.repeat(np.arange(len(a)), len(b))
    ib = np.tile(np.arange(len(b)), len(a))
    len_a = np.array([len(w) for w in a], dtype=np.int64)
    len_b = np.array([len(w) for w in b], dtype=np.int64)
    ratio = linking._cpdist(a[ia].tolist(), b[ib].tolist(), linking._ratio) / 100.0
    for or_ends in (False, True):
        got = linking._affix(a, b, len_a, len_b, ia, ib, ratio, or_ends).tolist()
        expected = []
        for x, y in zip(a[ia].tolist(), b[ib].tolist()):
            short, long_ = sorted((x, y), key=len)
            expected.append(bool(short) and (long_.startswith(short) or or_ends and long_.endswith(short)))
        assert got == expected
        assert sum(expected) > 1000


def test_key_ranks_follow_pythons_string_order():
    """Equal scores rank by key: _key_ranks must be the position in Python's sorted() order, keys of mixed
    lengths and repeated keys included (the first record first)."""
    import random
    from annex.linking import Side
    rng = random.Random(6)
    keys = [str(rng.randint(0, 10 ** rng.randint(0, 12))) for _ in range(3000)] + ["", "0", "00", "１", "9" * 13]
    keys += rng.sample(keys, 300)
    sides = [Side(k, "", "", "", "", None, "b", "13") for k in keys]
    order = sorted(range(len(keys)), key=lambda k: keys[k])
    assert linking._key_ranks(sides).tolist() == [order.index(k) for k in range(len(keys))]


def test_a_code_taken_by_name_is_taken_for_its_other_records():
    """One code on two records (two municipalities), each the only one with its name on both sides of its
    municipality: the unique-name pass links the first, and the code is then taken — the second record links
    nothing (nor goes to review as an open pair)."""
    inst = [side("0310110001", "岩手医科大学附属内丸メディカルセンター", "内丸19-1", "032018"),
            side("0310110001", "岩手医科大学附属内丸メディカルセンター", "内丸19-1", "032026")]
    facs = [side("F1", "岩手医科大学附属内丸メディカルセンター", "矢巾町西徳田2-1-1", "032018"),
            side("F2", "岩手医科大学附属内丸メディカルセンター", "南大通3-2-1", "032026")]
    links, review = linking.link(inst, facs)
    assert links.select("inst_code", "facility_id", "method").rows() == [("0310110001", "F1", "name")]
    assert review.height == 0


def test_counts_by_block_and_value_equal_a_counter():
    """_occurrences (passes 2 and 3: how many open records of a block have a name or an address) against a
    Counter over the same records."""
    from collections import Counter
    import random
    import numpy as np
    rng = random.Random(8)
    for trial in range(200):
        n = rng.randint(0, 50)
        block = np.array([rng.randint(0, 4) for _ in range(n)], dtype=np.int64)
        value = np.array([rng.randint(0, 6) for _ in range(n)], dtype=np.int64)
        among = np.array([rng.random() < 0.7 for _ in range(n)], dtype=bool)
        asked_block = np.array([rng.randint(0, 5) for _ in range(30)], dtype=np.int64)
        asked_value = np.array([rng.randint(0, 7) for _ in range(30)], dtype=np.int64)
        count = Counter((b, v) for b, v, m in zip(block.tolist(), value.tolist(), among.tolist()) if m)
        got = linking._occurrences(block, value, among, asked_block, asked_value).tolist()
        assert got == [count[(b, v)] for b, v in zip(asked_block.tolist(), asked_value.tolist())], trial


def test_banned_pairs_are_the_override_files_pairs():
    """_banned_pairs marks the pairs whose (inst_code, facility_id) the 紐付け禁止 rows name, every record of a
    repeated key included."""
    import random
    import numpy as np
    from annex.linking import Side
    rng = random.Random(9)
    insts = [Side(f"i{rng.randint(0, 30)}", "", "", "", "", None, "b", "13") for _ in range(40)]
    facs = [Side(f"f{rng.randint(0, 30)}", "", "", "", "", None, "b", "13") for _ in range(40)]
    ia = np.array([rng.randrange(40) for _ in range(500)], dtype=np.int64)
    ib = np.array([rng.randrange(40) for _ in range(500)], dtype=np.int64)
    banned = {(f"i{rng.randint(0, 30)}", f"f{rng.randint(0, 30)}") for _ in range(60)}
    got = linking._banned_pairs(insts, facs, ia, ib, banned).tolist()
    assert got == [(insts[a].key, facs[b].key) in banned for a, b in zip(ia.tolist(), ib.tolist())]
    assert any(got) and not all(got)


def test_candidates_carry_the_pair_by_pair_measures(monkeypatch):
    """_candidates measures small blocks as matrices (cdist) or pair by pair, large ones through a shortlist,
    and asks for prefixes and suffixes only where they can be: the measures it hands to score_pairs must be
    what each pair alone gives (rapidfuzz's ratio, str.startswith/endswith), on the real sample's blocks and
    their near-miss spellings, with blocks on every path (as they come, all small, all large)."""
    from annex.pipeline import select_prefectures
    from annex.reference import read_reference
    from tests.conftest import RAW
    ref = read_reference(RAW, {p.code for p in select_prefectures(RAW, None)})
    sides = linking.make_sides(ref.facilities(), "facility_id", "kind", ref.index)
    others = [linking.Side(f"x{n}", s.name, (s.name_key[:-1], s.name_key + "分院", s.name_key[1:], "")[n % 4], "",
                           (s.address_key.rsplit("-", 1)[0], s.address_key + "-1", "")[n % 3], s.kind, s.block,
                           s.pref_code)
              for n, s in enumerate(sides + sides)]
    sizes: dict[str, list[int]] = {}
    for k, records in enumerate((others, sides)):
        for s in records:
            sizes.setdefault(s.block, [0, 0])[k] += 1
    products = [a * b for a, b in sizes.values() if a and b]
    assert min(products) < linking.MATRIX_FROM < max(p for p in products if p <= linking.FULL_PAIRS_UP_TO)
    assert max(products) > linking.FULL_PAIRS_UP_TO

    def affix(a, b, ends):
        short, long_ = sorted((a, b), key=len)
        return bool(short) and (long_.startswith(short) or ends and long_.endswith(short))
    for full_pairs_up_to in (linking.FULL_PAIRS_UP_TO, 10**9, 0):
        monkeypatch.setattr(linking, "FULL_PAIRS_UP_TO", full_pairs_up_to)
        ia, ib, sims = linking._candidates(others, sides)
        pairs = [(others[a], sides[b]) for a, b in zip(ia.tolist(), ib.tolist())]
        assert len(pairs) > 2000
        names = [(i.name_key, f.name_key) for i, f in pairs]
        addrs = [(i.address_key, f.address_key) for i, f in pairs]
        assert sims.name_ratio.tolist() == [linking._ratio(a, b) / 100.0 for a, b in names]
        assert sims.addr_ratio.tolist() == [linking._ratio(a, b) / 100.0 for a, b in addrs]
        assert sims.name_contained.tolist() == [affix(a, b, True) for a, b in names]
        assert sims.addr_prefix.tolist() == [affix(a, b, False) for a, b in addrs]


def test_unique_name_links_a_pair_at_one_address_left_by_a_close_rival():
    """Pass 1 leaves 山田内科医院 ↔ 山田内科医院 (same address) for a rival within the margin (its 分院 at 大字本町,
    0.932); the name is unique on both sides, and the pair's own same-address match is no objection: the
    unique-name pass links it."""
    inst = [side("0310110001", "山田内科医院", "本町1-2-3"), side("0310110002", "山田内科医院分院", "大字本町1-2-3")]
    facs = [side("F1", "山田内科医院", "本町1-2-3")]
    assert linking.W_NAME * linking.name_score(inst[1], facs[0]) + \
        linking.W_ADDR * linking.address_score(inst[1], facs[0]) > 1.0 - linking.MARGIN
    links, review = linking.link(inst, facs)
    assert links.select("inst_code", "facility_id", "method").rows() == [("0310110001", "F1", "name")]
    assert review.height == 0


def test_a_link_row_names_the_last_record_of_its_facility_key():
    """One facility ID on two records: the link's place (pref_code, municipality_code) is that of the ID's last
    record, the one a lookup by ID finds (override_links looks it up so)."""
    inst = [side("0310110001", "中央病院", "本町1-2-3", "032018")]
    facs = [side("F1", "中央病院", "本町1-2-3", "032018"), side("F1", "中央病院", "本町1-2-3", "032026")]
    links, _ = linking.link(inst, facs)
    assert links.select("inst_code", "facility_id", "pref_code", "municipality_code").rows() == [
        ("0310110001", "F1", "03", "032026")]


def test_old_code_far_ahead_keeps_its_link_and_clears_the_review_list():
    """No rival within the margin at all (hold_contested's quick path): the code known only from the code list
    keeps its link, and its facility leaves the review list of the 名簿's codes, where it was a candidate."""
    from annex.pipeline import link_frames
    from annex.reference import read_reference
    from tests.conftest import RAW
    index = read_reference(RAW, {"03"}).index
    inst, fac = _frames([("0310110003", "南町南病院", "南町8-8", True), ("0310119998", "南病院", "南町4-4", False)],
                        [("03103100002", "南病院", "南町4-4")])
    current_only = link_frames(inst.filter(pl.col("in_meibo")), fac, None, index)
    assert current_only["review"].select("inst_code", "facility_id").rows() == [("0310110003", "03103100002")]
    got = link_frames(inst, fac, None, index)
    assert got["links"].select("inst_code", "facility_id").rows() == [("0310119998", "03103100002")]
    assert got["review"].height == 0 and got["review_older"].height == 0
