"""Linking 厚生局 institutions (10-digit 医療機関コード) to 医療情報ネット facilities (ID).

The two sources share no key. Candidates are compared only inside the same municipality (blocking), on a
normalised name and a normalised street address. A link is made only when the pair is each other's best
candidate with a clear margin; anything close goes to the review list. One facility is never linked to
two codes, nor one code to two facilities. A manual override file wins over the matcher.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from operator import attrgetter
from typing import NamedTuple
from pathlib import Path

import polars as pl

import numpy as np
from rapidfuzz.distance import Postfix, Prefix
from rapidfuzz.fuzz import ratio as _ratio
from rapidfuzz.process import cdist, cpdist

from annex import text
from annex.csvio import EncodingError, decode, rows_with_line_numbers
from annex.findings import ReadResult, failed_file, finding, reject_every_row

ACCEPT = 0.85        # minimum combined score for an automatic link
MARGIN = 0.10        # the runner-up (on either side) must be at least this far behind
REVIEW = 0.60        # pairs at or above this, not linked, are listed for review
W_NAME, W_ADDR = 0.6, 0.4

LINK_COLUMNS = {"inst_code": pl.String, "facility_id": pl.String, "method": pl.String, "score": pl.Float64,
                "name_score": pl.Float64, "address_score": pl.Float64, "why": pl.String,
                "pref_code": pl.String, "municipality_code": pl.String}
REVIEW_COLUMNS = {"inst_code": pl.String, "facility_id": pl.String, "score": pl.Float64,
                  "name_score": pl.Float64, "address_score": pl.Float64, "reason": pl.String}
# the review list's order: by institution, the closest candidate first (ties by facility, reproducibly)
REVIEW_ORDER = {"by": ["inst_code", "score", "facility_id"], "descending": [False, True, False]}
OVERRIDE_HEADER = {"医療機関コード": "inst_code", "医療情報ネットID": "facility_id", "指示": "action", "理由": "note"}
ACTIONS = {"紐付け": "link", "link": "link", "紐付け禁止": "reject", "reject": "reject"}


class Side(NamedTuple):
    """One record to match (a tuple: ~190,000 are made nationally, and a frozen dataclass costs 4 × to build)."""
    key: str            # inst_code or facility_id
    name: str
    name_key: str
    full_key: str
    address_key: str
    kind: str | None    # hospital / clinic / dental / None (unknown)
    block: str          # municipality code (or "pref:XX" when unknown)
    pref_code: str

    @property
    def municipality_code(self) -> str | None:
        """The block as a link row names it: None where the municipality is unknown (a "pref:XX" block)."""
        return None if self.block.startswith("pref:") else self.block


def similarity(a: str, b: str) -> float:
    """2·(matching characters)/(total characters), as difflib's SequenceMatcher.ratio measures it, computed by
    rapidfuzz (the longest-common-subsequence form, C speed: millions of pairs at national scale)."""
    return _ratio(a, b) / 100.0


def name_score(a: Side, b: Side) -> float:
    if not a.name_key or not b.name_key:
        return 0.0
    if a.name_key == b.name_key or (a.full_key and a.full_key == b.full_key):
        return 1.0
    short, long_ = sorted((a.name_key, b.name_key), key=len)
    if len(short) >= 3 and (long_.endswith(short) or long_.startswith(short)):
        return 0.92
    return round(similarity(a.name_key, b.name_key), 3)


def address_score(a: Side, b: Side) -> float:
    if not a.address_key or not b.address_key:
        return 0.0
    if a.address_key == b.address_key:
        return 1.0
    short, long_ = sorted((a.address_key, b.address_key), key=len)
    if long_.startswith(short + "-"):
        return 0.85  # one source stops at the block, the other gives the house number
    (town_a, num_a), (town_b, num_b) = text.address_parts(a.address_key), text.address_parts(b.address_key)
    if town_a and town_a == town_b:
        if num_a == num_b:
            return 0.95  # differs only in 大字/字 names
        if not num_a or not num_b:
            return 0.8   # one source gives the town only (医療情報ネット often does)
    if num_a and num_a == num_b and town_a[:1] == town_b[:1]:
        return 0.9       # same numbers, town written differently (大埇 / 大そね)
    return round(0.8 * similarity(a.address_key, b.address_key), 3)


def compatible(a: Side, b: Side) -> bool:
    """Hospital never with clinic; dental (歯科) only with dental — a 医科 clinic and the dental clinic in the
    same building share an address, and the same-address rule must not pair them."""
    if (a.kind == "dental") != (b.kind == "dental"):
        return False
    return a.kind is None or b.kind is None or a.kind == b.kind


def _why(ns: float, as_: float) -> str:
    n = "名称一致" if ns == 1.0 else "名称ほぼ一致" if ns >= 0.9 else f"名称類似度{ns:.2f}"
    a = "所在地一致" if as_ == 1.0 else "所在地ほぼ一致" if as_ >= 0.85 else f"所在地類似度{as_:.2f}"
    return f"{n}・{a}"


def make_sides(df: pl.DataFrame, key: str, kind_col: str | None, index) -> list[Side]:
    """Build comparable records. index is a MunicipalityIndex used to cut the address down to the street."""
    out = []
    n = df.height

    def col(name: str | None) -> list:
        return df[name].to_list() if name and name in df.columns else [None] * n
    # a name's keys once per name (a facility's name recurs, and branches share theirs)
    names: dict[str | None, tuple[str, str, str | None]] = {}
    street_key, address_key, name_keys = index.street_key, text.address_key, text.name_keys
    for k, name, pref, muni, address, kind, tensuhyo in zip(
            col(key), col("name"), col("pref_code"), col("municipality_code"), col("address"), col(kind_col),
            col("tensuhyo")):
        # the street: what follows the municipality (index.resolve), keyed (text.address_key)
        street = street_key(pref, address or "") if muni else address_key(address)
        keys = names.get(name)
        if keys is None:
            keys = names[name] = name_keys(name)
        if kind != "dental" and tensuhyo == "3":
            kind = "dental"  # a 歯科 code (点数表 3)
        kind = kind if kind in ("hospital", "clinic", "dental") else keys[2]
        out.append(Side(k, name, keys[0], keys[1], street, kind, muni or f"pref:{pref}", pref))
    return out


def read_overrides(path: str | Path) -> ReadResult:
    """raw/<pref>/facility_link_overrides.csv: 医療機関コード, 医療情報ネットID, 指示 (紐付け/紐付け禁止), 理由."""
    path = Path(path)
    schema = {"inst_code": pl.String, "facility_id": pl.String, "action": pl.String, "note": pl.String,
              "source_row": pl.Int64}
    try:
        txt, _ = decode(path.read_bytes())
    except (OSError, EncodingError) as exc:
        return failed_file("link_overrides", path, "unreadable", f"紐付け指定ファイルを読めません: {exc}",
                           empty_schema=schema)
    rows = list(rows_with_line_numbers(txt))
    res = ReadResult("link_overrides", str(path), pl.DataFrame(schema=schema))
    if not rows:
        return res
    header = [h.strip() for h in rows[0][1]]
    if any(h not in header for h in ("医療機関コード", "医療情報ネットID", "指示")):
        return reject_every_row(failed_file("link_overrides", path, "missing_column",
                                            "紐付け指定ファイルの見出しは 医療機関コード・医療情報ネットID・指示・理由 です。",
                                            empty_schema=schema), path, rows[1:])
    idx = {OVERRIDE_HEADER[h]: i for i, h in enumerate(header) if h in OVERRIDE_HEADER}
    recs = []
    for line, fields in rows[1:]:
        res.rows_in += 1
        if not any(f.strip() for f in fields):
            res.skipped_blank += 1
            continue
        rec = {c: (fields[i].strip() if i < len(fields) else "") for c, i in idx.items()}
        action = ACTIONS.get(rec.get("action", ""))
        if action is None or not rec["inst_code"].isdigit() or len(rec["inst_code"]) != 10 \
                or not rec["facility_id"].isdigit():
            res.findings.append(finding(path, None, line, "指示", rec.get("action"), "override_format",
                                        "医療機関コード（10桁）・医療情報ネットID（数字）・指示（紐付け／紐付け禁止）を確認してください。"))
            continue
        recs.append({"inst_code": rec["inst_code"], "facility_id": rec["facility_id"], "action": action,
                     "note": rec.get("note") or None, "source_row": line})
    res.accepted = pl.DataFrame(recs, schema=schema)
    return res


def override_links(institutions: list[Side], facilities: list[Side], overrides: pl.DataFrame | None) -> list[dict]:
    """The links the override file's 紐付け rows make among these records (LINK_COLUMNS rows, method override):
    in the file's order, a code or facility already linked by an earlier row is not linked again."""
    links: list[dict] = []
    if overrides is None or not (overrides["action"] == "link").any():
        return links
    inst_by, fac_by = {s.key: s for s in institutions}, {s.key: s for s in facilities}
    taken_i, taken_f = set(), set()
    for o in overrides.iter_rows(named=True):
        i, f = inst_by.get(o["inst_code"]), fac_by.get(o["facility_id"])
        if o["action"] != "link" or i is None or f is None or i.key in taken_i or f.key in taken_f:
            continue
        ns, as_ = name_score(i, f), address_score(i, f)
        links.append(_link_row(i, f, "override", 1.0, ns, as_,
                               f"手動指定（{o.get('note') or '理由なし'}）／{_why(ns, as_)}"))
        taken_i.add(i.key)
        taken_f.add(f.key)
    return links


def link(institutions: list[Side], facilities: list[Side],
         overrides: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (facility_links, link_review)."""
    overridden = override_links(institutions, facilities, overrides)
    taken_i, taken_f = {r["inst_code"] for r in overridden}, {r["facility_id"] for r in overridden}
    banned = set() if overrides is None or overrides.height == 0 else \
        set(overrides.filter(pl.col("action") == "reject").select("inst_code", "facility_id").rows())

    # every municipality at once: the pairs never cross a block (candidate_index), so each pass below gives what
    # it gives block by block — what one block takes is open to no other — in a few array operations instead of
    # ~6,300 small ones nationally
    insts = [s for s in institutions if s.key not in taken_i] if taken_i else institutions
    facs = [s for s in facilities if s.key not in taken_f] if taken_f else facilities
    keys = block_keys(insts, facs)
    ki, kf = keys
    ia, ib, sims = _candidates(insts, facs, keys)
    score, name, addr = score_pairs(insts, facs, ia, ib, keys, sims)
    if banned:
        keep = ~_banned_pairs(insts, facs, ia, ib, banned)
        ia, ib, score, name, addr = ia[keep], ib[keep], score[keep], name[keep], addr[keep]
    # a record is open until its key is taken: taking a record takes every record with its key (ki.record: the
    # key's first record)
    key_taken_i, key_taken_f = np.zeros(len(insts), dtype=bool), np.zeros(len(facs), dtype=bool)

    def take(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key_taken_i[ki.record[ia[at]]] = True
        key_taken_f[kf.record[ib[at]]] = True
        return ~key_taken_i[ki.record], ~key_taken_f[kf.record]
    # pass 1: mutual best with a clear margin
    first = mutual_best(insts, facs, ia, ib, score, name, addr)
    open_i, open_f = take(first)
    # pass 2: the same distinctive name, once on each side of the municipality: the address moved or is
    # written too differently to compare (岩手医科大学附属内丸メディカルセンター)
    second = _unique_exact_names(ki, kf, ia, ib, name, addr, open_i, open_f)
    open_i, open_f = take(second)
    # pass 3: same street address, unique on both sides of its municipality among what is left (a renamed
    # institution)
    third = _unique_same_streets(ki, kf, ia, ib, addr, open_i, open_f)
    open_i, open_f = take(third)
    # what is still open and close enough goes to review, with the number of pairs sharing its institution
    # or its facility with a score within the margin (itself not counted)
    listed = np.nonzero(open_i[ia] & open_f[ib] & ~((score < REVIEW) & (addr < 1.0) & (name < 0.9)))[0]
    within = score - MARGIN
    competing = _count_at_least(ia, score, within, listed) + _count_at_least(ib, score, within, listed) - 2
    ns, as_ = name[listed].tolist(), addr[listed].tolist()
    review = {"inst_code": [insts[a].key for a in ia[listed].tolist()],
              "facility_id": [facs[b].key for b in ib[listed].tolist()],
              "score": score[listed], "name_score": ns, "address_score": as_,
              "reason": [(f"候補が近接（差{MARGIN}未満の候補{n}件）" if n > 0 else "一致度が基準未満") + f"／{_why(n_, a_)}"
                         for n, n_, a_ in zip(competing.tolist(), ns, as_)]}
    links = _link_frame(insts, facs, overridden, ia, ib, kf, score, name, addr, first, second, third)
    return links.sort("inst_code"), pl.DataFrame(review, schema=REVIEW_COLUMNS).sort(**REVIEW_ORDER)


def _link_frame(insts: list[Side], facs: list[Side], overridden: list[dict], ia: np.ndarray, ib: np.ndarray,
                kf: _Keys, score: np.ndarray, name: np.ndarray, addr: np.ndarray, first: np.ndarray,
                second: np.ndarray, third: np.ndarray) -> pl.DataFrame:
    """The links as one frame of LINK_COLUMNS, column by column, in the order they were made: the override
    file's (rows of _link_row), then the pairs at positions `first`, `second` and `third` of passes 1 to 3."""
    at = np.concatenate([first, second, third])
    # pass 1 names its facility as the key's last record (as a lookup by key would)
    last_f = np.zeros(len(facs), dtype=np.int64)
    np.maximum.at(last_f, kf.record, np.arange(len(facs)))
    b = ib[at]
    b[:len(first)] = last_f[kf.record[b[:len(first)]]]
    ns, as_ = name[at].tolist(), addr[at].tolist()
    whys: dict[tuple[float, float], str] = {}   # pass 1 repeats few (name, address) scores over ~90,000 links
    why = [whys[p] if p in whys else whys.setdefault(p, _why(*p)) for p in zip(ns[:len(first)], as_[:len(first)])]
    method = ["name_address" if n >= 0.9 and a >= 0.85 else "name" if n >= 0.9 else "address_name"
              for n, a in zip(ns[:len(first)], as_[:len(first)])]
    method += ["name"] * len(second) + ["address"] * len(third)
    why += [f"名称一致（市区町村内で唯一）・所在地不一致（類似度{a:.2f}）" for a in as_[len(first):len(first) + len(second)]]
    why += [f"所在地一致・名称が異なる（名称変更の可能性、名称類似度{n:.2f}）" for n in ns[len(first) + len(second):]]
    fs = [facs[k] for k in b.tolist()]
    columns = {"inst_code": [insts[k].key for k in ia[at].tolist()], "facility_id": [f.key for f in fs],
               "method": method, "score": score[at].tolist(), "name_score": ns, "address_score": as_, "why": why,
               "pref_code": [f.pref_code for f in fs],
               "municipality_code": [f.municipality_code for f in fs]}
    if overridden:
        columns = {c: [r[c] for r in overridden] + v for c, v in columns.items()}
    return pl.DataFrame(columns, schema=LINK_COLUMNS)


def _banned_pairs(insts: list[Side], facs: list[Side], ia: np.ndarray, ib: np.ndarray,
                  banned: set[tuple[str, str]]) -> np.ndarray:
    """Which pairs (ia, ib) the override file forbids (its 紐付け禁止 (inst_code, facility_id) pairs)."""
    of_i, of_f = {}, {}
    for a, s in enumerate(insts):
        of_i.setdefault(s.key, []).append(a)
    for b, s in enumerate(facs):
        of_f.setdefault(s.key, []).append(b)
    codes = [a * len(facs) + b for ik, fk in banned for a in of_i.get(ik, ()) for b in of_f.get(fk, ())]
    return np.isin(ia * len(facs) + ib, np.array(codes, dtype=np.int64))


def hold_contested(older: pl.DataFrame, review: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The links of a later pass (older: codes only in the code list) against the review list of the pass before
    (codes in the current 名簿). A facility whose earlier candidates all score more than MARGIN below its link
    keeps the link, and leaves the review list as a linked facility does; one with an earlier candidate within the
    margin is a choice between close candidates: its link is withheld and the pair listed for review.
    Returns (links kept, review list, withheld pairs as review rows)."""
    rival_scores: dict[str, list[float]] = {}
    for facility, score in zip(review["facility_id"].to_list(), review["score"].to_list()):
        rival_scores.setdefault(facility, []).append(score)
    linked = zip(older["facility_id"].to_list(), older["score"].to_list())
    if not any(rival > score - MARGIN for facility, score in linked for rival in rival_scores.get(facility, ())):
        # no rival anywhere (the usual case): the joins below would keep every link (~1.5 ms a prefecture)
        return older, review.filter(~pl.col("facility_id").is_in(older["facility_id"].implode())), \
            pl.DataFrame(schema=REVIEW_COLUMNS)
    rivals = older.join(review.select("facility_id", pl.col("score").alias("rival")), on="facility_id") \
        .filter(pl.col("rival") > pl.col("score") - MARGIN) \
        .group_by("inst_code", "facility_id").agg(pl.len().alias("rivals"))
    withheld = older.join(rivals, on=["inst_code", "facility_id"]).select(
        "inst_code", "facility_id", "score", "name_score", "address_score",
        pl.format(f"現行の名簿の医療機関コードに近接する候補あり（差{MARGIN}未満の候補{{}}件）／{{}}",
                  "rivals", "why").alias("reason"))
    kept = older.join(rivals, on=["inst_code", "facility_id"], how="anti")
    return (kept, review.filter(~pl.col("facility_id").is_in(kept["facility_id"].implode())),
            withheld.select(list(REVIEW_COLUMNS)))


FULL_PAIRS_UP_TO = 4_000   # a block this small is compared pair by pair, as it always was
NAME_CANDIDATES = 8        # otherwise: per institution, the facilities with the most similar names
CHUNK_ROWS = 256           # institutions per matrix in a large block (memory: rows × facilities × 8 bytes)
KEEP_FROM = 0.28           # pairs surely scoring below 0.3 change nothing below (see _bounded)


class _Keys:
    """The match keys of one side of a block as arrays: an id per distinct string, shared with the other side of
    the block (equal ids ⇔ equal strings of the same kind), so that every equality test of the scoring is an
    array comparison; the name and address strings (object arrays, indexed by pair and handed to rapidfuzz) and
    their lengths; whether the other keys are empty. With them each record's block (an id shared with the other
    side, rising in order of first appearance) and the first record with its key (record: the key's id within
    the side)."""

    def __init__(self, sides: list[Side], ids: dict[str, dict[str, int]], fresh: Iterator[int]) -> None:
        def id_of(kind: str, values: list[str]) -> np.ndarray:
            # a string seen before keeps its id, a new one takes the next number of `fresh` (ids need only be
            # unique, not consecutive: setdefault with a counter does it in C); a dict per kind of key, as only
            # keys of one kind are compared (smaller dicts: faster)
            return np.fromiter(map(ids.setdefault(kind, {}).setdefault, values, fresh), dtype=np.int64,
                               count=len(values))

        def non_empty(kind: str, id_: np.ndarray) -> np.ndarray:
            return id_ != ids[kind].get("", -1)

        def strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
            return (np.array(values + [""], dtype=object)[:-1],   # [""]: never a 2-D array of characters
                    np.fromiter(map(len, values), dtype=np.int64, count=len(values)))

        def field(name: str) -> list:
            return list(map(attrgetter(name), sides))
        names, addresses = field("name_key"), field("address_key")
        towns, nums = map(list, zip(*map(text.address_parts, addresses))) if sides else ([], [])
        self.name, self.name_len = strings(names)
        self.addr, self.addr_len = strings(addresses)
        self.name_id, self.addr_id = id_of("name", names), id_of("address", addresses)
        self.full_id, self.town_id, self.nums_id = (id_of("full", field("full_key")), id_of("town", towns),
                                                    id_of("numbers", nums))
        # where only emptiness matters, the id says it (no lengths to count)
        self.has_full, self.has_town = non_empty("full", self.full_id), non_empty("town", self.town_id)
        self.has_nums = non_empty("numbers", self.nums_id)
        self.head_id = id_of("head", [t[:1] for t in towns])
        self.block = id_of("block", field("block"))
        self.kind = np.fromiter(map(_KIND_CODE.get, field("kind"), itertools.repeat(0)), dtype=np.int8,
                                count=len(sides))
        self.record = np.fromiter(map({}.setdefault, field("key"), itertools.count()), dtype=np.int64,
                                  count=len(sides))

    def take(self, idx: np.ndarray) -> _Keys:
        """The keys of the records idx (one block's facilities), ids unchanged."""
        out = object.__new__(_Keys)
        out.__dict__.update({k: v[idx] for k, v in vars(self).items()})
        return out


def block_keys(insts: list[Side], facs: list[Side]) -> tuple[_Keys, _Keys]:
    ids: dict[str, dict[str, int]] = {}
    fresh = itertools.count()
    return _Keys(insts, ids, fresh), _Keys(facs, ids, fresh)


_KIND_CODE = {None: 0, "hospital": 1, "clinic": 2, "dental": 3}


def candidate_index(insts: list[Side], facs: list[Side], keys: tuple[_Keys, _Keys] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(ia, ib) of _candidates."""
    ia, ib, _ = _candidates(insts, facs, keys)
    return ia, ib


def _candidates(insts: list[Side], facs: list[Side], keys: tuple[_Keys, _Keys] | None = None
                ) -> tuple[np.ndarray, np.ndarray, _Sims]:
    """Pairs worth scoring, each inside one municipality (the block), as index arrays into insts and facs,
    compatible kinds only. Small blocks: every pair that could score 0.3. Large ones (a Tokyo ward has thousands
    of clinics): of those, the pairs sharing the name key, the full name, the street address or its town part,
    plus each institution's facilities with the most similar names — every pair the passes could accept is
    among them (they need an equal name, an equal address, or a close name). The small blocks are paired and
    bounded all at once. keys: block_keys(insts, facs), when the caller has them. With the pairs, the
    similarities their bound was computed from (score_pairs needs the same ones)."""
    ki, kf = keys or block_keys(insts, facs)
    # the institutions' blocks numbered 0, 1, … in order of first appearance; -1: a block of facilities only
    number, bi = np.unique(ki.block, return_inverse=True)
    bf = np.minimum(np.searchsorted(number, kf.block), max(len(number) - 1, 0))
    bf = np.where(number[bf] == kf.block, bf, -1) if len(number) else np.full(len(facs), -1, dtype=np.int64)
    # each block's records, in their own order, as a range of the stably sorted indices
    oi, of = np.argsort(bi, kind="stable"), np.argsort(bf, kind="stable")
    n_i = np.bincount(bi, minlength=len(number))
    n_f = np.bincount(bf[bf >= 0], minlength=len(number))
    at_i = np.cumsum(n_i) - n_i
    at_f = np.cumsum(n_f) - n_f + np.count_nonzero(bf < 0)   # facilities of no institution's block sort first
    size = n_i * n_f
    large = size > FULL_PAIRS_UP_TO
    parts = []
    small = np.nonzero(~large & (size > 0))[0]
    if len(small):
        # every pair of every small block, by institution then facility (as a block alone lists them)
        sizes = size[small]
        block = np.repeat(small, sizes)
        k = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        ia, ib = oi[at_i[block] + k // n_f[block]], of[at_f[block] + k % n_f[block]]
        name_ratio, addr_ratio = _small_block_ratios(ki, kf, oi, of, at_i[small], at_f[small], n_i[small],
                                                     n_f[small], ia, ib)
        parts.append(_bounded(ki, kf, ia, ib, name_ratio, addr_ratio))
    for b in np.nonzero(large)[0].tolist():
        rows, cols = oi[at_i[b]:at_i[b] + n_i[b]], of[at_f[b]:at_f[b] + n_f[b]]
        block_f = kf.take(cols)
        for lo in range(0, len(rows), CHUNK_ROWS):
            a, f, sims = _plausible_pairs(ki, block_f, rows[lo:lo + CHUNK_ROWS])
            parts.append((a, cols[f], sims))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), _Sims(*[np.zeros(0)] * len(_Sims._fields))
    ia, ib = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return ia, ib, _Sims(*map(np.concatenate, zip(*(p[2] for p in parts))))


MATRIX_FROM = 24   # pairs: a small block this large is measured as a matrix (cdist), smaller ones pair by pair


def _small_block_ratios(ki: _Keys, kf: _Keys, oi: np.ndarray, of: np.ndarray, at_i: np.ndarray, at_f: np.ndarray,
                        n_i: np.ndarray, n_f: np.ndarray, ia: np.ndarray, ib: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The name and address ratios / 100 of the pairs (ia, ib) of the small blocks, listed block by block
    (institution, then facility; at_*, n_*: the blocks' ranges of the sorted records oi, of). A block's matrix
    costs a call (~3 µs) but ~20 ns a pair where a pair alone costs ~150 ns: the larger blocks are matrices, the
    rest one call pair by pair. cdist and cpdist give the same floats (tested), so the path changes no score."""
    sizes = n_i * n_f
    ends = np.cumsum(sizes)
    name, addr = np.empty(len(ia)), np.empty(len(ia))
    matrix = sizes >= MATRIX_FROM
    names_i, names_f, addrs_i, addrs_f = ki.name[oi].tolist(), kf.name[of].tolist(), ki.addr[oi].tolist(), \
        kf.addr[of].tolist()
    for i0, f0, ni, nf, hi in zip(*(v[matrix].tolist() for v in (at_i, at_f, n_i, n_f, ends))):
        lo = hi - ni * nf
        name[lo:hi] = _cdist(names_i[i0:i0 + ni], names_f[f0:f0 + nf], _ratio).ravel()
        addr[lo:hi] = _cdist(addrs_i[i0:i0 + ni], addrs_f[f0:f0 + nf], _ratio).ravel()
    alone = np.nonzero(np.repeat(~matrix, sizes))[0]
    a, b = ia[alone], ib[alone]
    name[alone] = _cpdist(ki.name[a].tolist(), kf.name[b].tolist(), _ratio)
    addr[alone] = _cpdist(ki.addr[a].tolist(), kf.addr[b].tolist(), _ratio)
    return name / 100.0, addr / 100.0


def _plausible_pairs(ki: _Keys, kf: _Keys, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, _Sims]:
    """Pairs of institutions `rows` (a chunk of a large block) with the facilities kf (the block's) that share a
    key or are among the institution's most similar names, and whose score could reach KEEP_FROM (_bounded). The
    name similarity is the one whole matrix computed here.
    """
    name_sim = _cdist(ki.name[rows].tolist(), kf.name.tolist(), _ratio) / 100.0

    def equal(ids_i: np.ndarray, non_empty_i: np.ndarray, ids_f: np.ndarray) -> np.ndarray:
        return (ids_i[rows][:, None] == ids_f[None, :]) & non_empty_i[rows][:, None]
    shared_key = (equal(ki.name_id, ki.name_len > 0, kf.name_id) | equal(ki.full_id, ki.has_full, kf.full_id)
                  | equal(ki.addr_id, ki.addr_len > 0, kf.addr_id) | equal(ki.town_id, ki.has_town, kf.town_id))
    r, ib = np.nonzero(shared_key | _most_similar(name_sim, NAME_CANDIDATES))
    return _bounded(ki, kf, rows[r], ib, name_sim[r, ib])


def _most_similar(sim: np.ndarray, n: int) -> np.ndarray:
    """Mask of each row's n largest values, ties going to the column listed first (reproducible): what the first
    n of a stable descending sort take, found by partition (a sort of every row cost more than the matrix)."""
    if sim.shape[1] <= n:
        return np.ones(sim.shape, dtype=bool)
    nth = np.partition(sim, sim.shape[1] - n, axis=1)[:, sim.shape[1] - n][:, None]   # the n-th largest
    top = sim > nth
    tied = sim == nth
    room = n - np.count_nonzero(top, axis=1)
    # rows with more values equal to the n-th largest than places left: the first ones
    crowded = np.nonzero(np.count_nonzero(tied, axis=1) > room)[0]
    tied[crowded] &= np.cumsum(tied[crowded], axis=1) <= room[crowded, None]
    return top | tied


class _Sims(NamedTuple):
    """rapidfuzz's measures of pairs (ia, ib), the raw material of both the bound and the scores."""
    name_ratio: np.ndarray       # ratio of the name keys / 100
    name_contained: np.ndarray   # the shorter name key starts or ends the longer one
    addr_ratio: np.ndarray       # ratio of the address keys / 100
    addr_prefix: np.ndarray      # the shorter address key starts the longer one


def _measure(ki: _Keys, kf: _Keys, ia: np.ndarray, ib: np.ndarray, name_ratio: np.ndarray | None = None,
             addr_ratio: np.ndarray | None = None) -> _Sims:
    """The _Sims of the pairs (ia, ib); name_ratio, addr_ratio when the caller measured them already."""
    if name_ratio is None:
        name_ratio = _cpdist(ki.name[ia].tolist(), kf.name[ib].tolist(), _ratio) / 100.0
    if addr_ratio is None:
        addr_ratio = _cpdist(ki.addr[ia].tolist(), kf.addr[ib].tolist(), _ratio) / 100.0
    return _Sims(name_ratio, _affix(ki.name, kf.name, ki.name_len, kf.name_len, ia, ib, name_ratio, True),
                 addr_ratio, _affix(ki.addr, kf.addr, ki.addr_len, kf.addr_len, ia, ib, addr_ratio, False))


def _affix(keys_i: np.ndarray, keys_f: np.ndarray, len_i: np.ndarray, len_f: np.ndarray, ia: np.ndarray,
           ib: np.ndarray, ratio: np.ndarray, or_ends: bool) -> np.ndarray:
    """Whether the shorter (non-empty) key of each pair starts the longer one (or_ends: or ends it). Asked of
    rapidfuzz only where it can be so: the ratio is 2·LCS/(la + lb), and a key that starts or ends the other is
    a common subsequence of both, so there the longest common subsequence, ratio·(la + lb)/2, is the shorter
    length (the float is that integer to far better than ±0.5)."""
    la, lb = len_i[ia], len_f[ib]
    short = np.minimum(la, lb)
    maybe = np.nonzero((short > 0) & (ratio * (la + lb) / 2 > short - 0.5))[0]
    out = np.zeros(len(ia), dtype=bool)
    if len(maybe):
        a, b, n = keys_i[ia[maybe]].tolist(), keys_f[ib[maybe]].tolist(), short[maybe]
        hit = _cpdist(a, b, Prefix.similarity) >= n
        if or_ends:
            hit |= _cpdist(a, b, Postfix.similarity) >= n
        out[maybe] = hit
    return out


def _bounded(ki: _Keys, kf: _Keys, ia: np.ndarray, ib: np.ndarray, name_ratio: np.ndarray,
             addr_ratio: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, _Sims]:
    """The pairs (ia, ib) of compatible kinds whose upper bound reaches KEEP_FROM, and their _Sims (name_ratio,
    addr_ratio: their ratios / 100, the latter measured here when not given).

    The bound is an over-estimate of W_NAME·name_score + W_ADDR·address_score (each rule at its highest), so no
    pair scoring 0.3 or more is dropped. Nothing below needs pairs under 0.3: a link needs 0.85 and a clear
    margin of 0.1, a review entry needs at least 0.4 and counts competitors within 0.1 of it."""
    a_kind, b_kind = ki.kind[ia], kf.kind[ib]
    # compatible(): hospital never with clinic, dental (3) only with dental
    ok = np.nonzero(((a_kind == 3) == (b_kind == 3)) & ((a_kind == 0) | (b_kind == 0) | (a_kind == b_kind)))[0]
    ia, ib, name_ratio = ia[ok], ib[ok], name_ratio[ok]
    m = _measure(ki, kf, ia, ib, name_ratio, None if addr_ratio is None else addr_ratio[ok])
    short = np.minimum(ki.name_len[ia], kf.name_len[ib])
    contained = (short >= 3) & m.name_contained
    name_ub = np.maximum(m.name_ratio, np.where(contained, 0.92, 0.0))
    full_eq = (ki.full_id[ia] == kf.full_id[ib]) & ki.has_full[ia]
    name_ub = np.maximum(name_ub, full_eq.astype(np.float64))
    addr_ub = m.addr_ratio * 0.8
    addr_ub = np.maximum(addr_ub, np.where(m.addr_prefix, 1.0, 0.0))
    town_eq = (ki.town_id[ia] == kf.town_id[ib]) & ki.has_town[ia]
    addr_ub = np.maximum(addr_ub, 0.95 * town_eq)
    nums_eq = (ki.nums_id[ia] == kf.nums_id[ib]) & ki.has_nums[ia]
    addr_ub = np.maximum(addr_ub, 0.9 * nums_eq)
    keep = W_NAME * name_ub + W_ADDR * addr_ub >= KEEP_FROM
    return ia[keep], ib[keep], _Sims(*(v[keep] for v in m))


def score_pairs(insts: list[Side], facs: list[Side], ia: np.ndarray, ib: np.ndarray,
                keys: tuple[_Keys, _Keys] | None = None, sims: _Sims | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, name_score, address_score) of the pairs (insts[ia[k]], facs[ib[k]]) — exactly what
    name_score() and address_score() give pair by pair (tested), computed column-wise: rapidfuzz over the
    pairs in C, the rules as array selections (equal strings as equal ids, see _Keys), and Python's own
    round() for the rounded values. keys: block_keys(insts, facs), and sims: the pairs' _Sims, when the caller
    has them (_candidates measured them for the bound)."""
    if len(ia) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    ki, kf = keys or block_keys(insts, facs)
    m = sims if sims is not None else _measure(ki, kf, ia, ib)
    # name_score
    la, lb = ki.name_len[ia], kf.name_len[ib]
    short = np.minimum(la, lb)
    contained = (short >= 3) & m.name_contained
    same = (ki.name_id[ia] == kf.name_id[ib]) | ((ki.full_id[ia] == kf.full_id[ib]) & ki.has_full[ia])
    ns = _select([(la == 0) | (lb == 0), same, contained], [0.0, 1.0, 0.92], m.name_ratio)
    # address_score
    la, lb = ki.addr_len[ia], kf.addr_len[ib]
    short = np.minimum(la, lb)
    # the longer one goes on with "-" right after the shorter one (one source stops at the block)
    dash = np.zeros(len(ia), dtype=bool)
    at = np.nonzero(m.addr_prefix & (la != lb))[0]
    longer = np.where(la[at] > lb[at], ki.addr[ia[at]], kf.addr[ib[at]])
    dash[at] = [a[n] == "-" for a, n in zip(longer.tolist(), short[at].tolist())]
    town_eq = (ki.town_id[ia] == kf.town_id[ib]) & ki.has_town[ia]
    nums_eq = ki.nums_id[ia] == kf.nums_id[ib]
    nums_missing = ~ki.has_nums[ia] | ~kf.has_nums[ib]
    head_eq = ki.head_id[ia] == kf.head_id[ib]
    as_ = _select([(la == 0) | (lb == 0), ki.addr_id[ia] == kf.addr_id[ib], dash, town_eq & nums_eq,
                   town_eq & nums_missing, ki.has_nums[ia] & nums_eq & head_eq],
                  [0.0, 1.0, 0.85, 0.95, 0.8, 0.9], 0.8 * m.addr_ratio)
    return _round3(W_NAME * ns + W_ADDR * as_), ns, as_


def _select(conditions: list[np.ndarray], values: list[float], otherwise: np.ndarray) -> np.ndarray:
    """The first condition that holds gives its value; otherwise round(otherwise, 3), as Python rounds."""
    return np.select(conditions, values, default=_round3(otherwise))


def _round3(values: np.ndarray) -> np.ndarray:
    """round(v, 3) of each value — Python's round, as the pair-by-pair functions round — column-wise:
    rint(v·1000)/1000 is the same float unless v·1000 lies within a hair of a half (where the product's own
    rounding could tip it); those few are rounded by Python."""
    scaled = values * 1000.0
    out = np.rint(scaled) / 1000.0
    near_half = np.nonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)[0]
    if len(near_half):
        out[near_half] = [round(v, 3) for v in values[near_half].tolist()]
    return out


def _cpdist(a: list[str], b: list[str], scorer) -> np.ndarray:
    return cpdist(a, b, scorer=scorer, dtype=np.float64, workers=-1 if len(a) > 50_000 else 1)


def _cdist(a: list[str], b: list[str], scorer) -> np.ndarray:
    # both cores for a large matrix (rapidfuzz releases the GIL); threads cost more than they save on a small one
    return cdist(a, b, scorer=scorer, dtype=np.float64, workers=-1 if len(a) * len(b) > 50_000 else 1)


def _count_at_least(group: np.ndarray, score: np.ndarray, threshold: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each pair k of `at`: how many pairs of its group (group[k]: its institution, or its facility) score at
    least threshold[k] — itself included when threshold[k] <= score[k]. Exact: the floats are compared only
    through their ranks among the scores and thresholds, and (group, rank) is one integer. Only the pairs of the
    groups asked about are ranked (the review list's few, among ~1.4 M pairs nationally)."""
    if len(at) == 0:
        return np.zeros(0, dtype=np.int64)
    asked = group[at].astype(np.int64)
    mine = np.isin(group, asked)
    g, s = group[mine].astype(np.int64), score[mine]
    _, rank = np.unique(np.concatenate([s, threshold[at]]), return_inverse=True)
    span = len(rank) + 1
    keys = np.sort(g * span + rank[:len(s)])
    ends = np.searchsorted(keys, asked * span + span, side="left")
    starts = np.searchsorted(keys, asked * span + rank[len(s):], side="left")
    return ends - starts


def _unique_exact_names(ki: _Keys, kf: _Keys, ia: np.ndarray, ib: np.ndarray, name: np.ndarray, addr: np.ndarray,
                        open_i: np.ndarray, open_f: np.ndarray) -> np.ndarray:
    """Positions k, in institution order, of the pairs of open records (open_i, open_f: masks of insts and facs)
    whose (distinctive) name key occurs once among the open institutions and once among the open facilities of
    their block."""
    open_pair = open_i[ia] & open_f[ib]
    # equal name keys score 1.0
    k = np.nonzero(open_pair & (name == 1.0) & (ki.name_id[ia] == kf.name_id[ib]) & (ki.name_len[ia] >= 4))[0]
    block, named = ki.block[ia[k]], ki.name_id[ia[k]]
    k = k[(_occurrences(ki.block, ki.name_id, open_i, block, named) == 1)
          & (_occurrences(kf.block, kf.name_id, open_f, block, named) == 1)]
    # an open pair at exactly the same street address is stronger evidence than the name: the facility may
    # be another institution renamed (内田医院 → 赤宿診療所 at 赤宿5-26-7, while a different 赤宿診療所 sits at 1-10-8)
    same_addr = open_pair & (addr == 1.0)
    itself = same_addr[k]
    k = k[(np.bincount(ia[same_addr], minlength=len(open_i))[ia[k]] == itself)
          & (np.bincount(ib[same_addr], minlength=len(open_f))[ib[k]] == itself)]
    k = k[np.argsort(ia[k], kind="stable")]
    # in institution order, a record whose key an earlier one of this pass took is no longer open
    _, first = np.unique(ki.record[ia[k]], return_index=True)
    return k[np.sort(first)]


def _unique_same_streets(ki: _Keys, kf: _Keys, ia: np.ndarray, ib: np.ndarray, addr: np.ndarray,
                         open_i: np.ndarray, open_f: np.ndarray) -> np.ndarray:
    """Positions k of the pairs of open records at the same street address (one with a number) that is the
    address of one open institution and one open facility of their block — so each record's only open pair at
    that address."""
    k = np.nonzero(open_i[ia] & open_f[ib] & (addr == 1.0))[0]
    block, street = ki.block[ia[k]], ki.addr_id[ia[k]]
    k = k[(_occurrences(ki.block, ki.addr_id, open_i, block, street) == 1)
          & (_occurrences(kf.block, kf.addr_id, open_f, block, street) == 1)]
    return k[np.array([any(c.isdigit() for c in address) for address in ki.addr[ia[k]].tolist()], dtype=bool)]


def _occurrences(block: np.ndarray, value: np.ndarray, among: np.ndarray, asked_block: np.ndarray,
                 asked_value: np.ndarray) -> np.ndarray:
    """How many of the records `among` (a mask) have the (block, value) ids (asked_block[k], asked_value[k])."""
    span = int(max(value.max(initial=0), asked_value.max(initial=0))) + 1
    have, count = np.unique(block[among] * span + value[among], return_counts=True)
    asked = asked_block * span + asked_value
    at = np.searchsorted(have, asked)
    found = at < len(have)
    found[found] = have[at[found]] == asked[found]
    out = np.zeros(len(asked), dtype=np.int64)
    out[found] = count[at[found]]
    return out


def mutual_best(insts: list[Side], facs: list[Side], ia: np.ndarray, ib: np.ndarray, sc: np.ndarray | list[float],
                ns: np.ndarray | list[float], as_: np.ndarray | list[float]) -> np.ndarray:
    """Pass 1 over the scored pairs (insts[ia[k]], facs[ib[k]]): the pairs that are good (score ≥ ACCEPT with a
    close name or the same address) and each side's best, with every other candidate of either side more than
    MARGIN below. Equal scores rank by the larger key (inst_code / facility_id), so the result does not depend on
    the order of the pairs. Their positions k, in the pairs' order.
    Column-wise: one sort per side instead of a list per institution and facility."""
    score = np.asarray(sc, dtype=np.float64)
    # a pair scoring under ACCEPT - MARGIN can neither be linked nor come within the margin of one that is (scores
    # are multiples of 0.001; the float ACCEPT - MARGIN is a hair under 0.75): only the rest are ranked
    near = np.nonzero(score > ACCEPT - MARGIN - 1e-9)[0]
    if len(near) == 0:
        return near
    ia, ib, score = ia[near], ib[near], score[near]
    name, addr = np.asarray(ns, dtype=np.float64)[near], np.asarray(as_, dtype=np.float64)[near]
    best_f, second_i = _best_per(ia, ib, score, _key_ranks(facs), len(insts))
    best_i, second_f = _best_per(ib, ia, score, _key_ranks(insts), len(facs))
    ok = ((score >= ACCEPT) & ((name >= 0.9) | (addr == 1.0)) & (best_f[ia] == ib) & (best_i[ib] == ia)
          & ~(second_i[ia] > score - MARGIN) & ~(second_f[ib] > score - MARGIN))
    return near[ok]


def _key_ranks(sides: list[Side]) -> np.ndarray:
    """Each side's position in key order (the tie-break between equal scores)."""
    ranks = np.empty(len(sides), dtype=np.int64)
    ranks[sorted(range(len(sides)), key=list(map(attrgetter("key"), sides)).__getitem__)] = np.arange(len(sides))
    return ranks


def _best_per(own: np.ndarray, other: np.ndarray, score: np.ndarray, other_rank: np.ndarray,
              n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per record of one side (index into `own`'s side, n of them): its best partner (the highest score, ties to
    the larger key; -1 without pairs) and the second-best score (-inf without a second)."""
    order = np.lexsort((-other_rank[other], -score, own))
    s_own, s_other, s_score = own[order], other[order], score[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = s_own[1:] != s_own[:-1]
    best = np.full(n, -1, dtype=np.int64)
    best[s_own[first]] = s_other[first]
    second = np.full(n, -np.inf)
    has_second = np.zeros(len(order), dtype=bool)
    has_second[:-1] = first[:-1] & ~first[1:]
    second[s_own[has_second]] = s_score[np.nonzero(has_second)[0] + 1]
    return best, second


def _link_row(i: Side, f: Side, method: str, score: float, ns: float, as_: float, why: str) -> dict:
    return {"inst_code": i.key, "facility_id": f.key, "method": method, "score": score, "name_score": ns,
            "address_score": as_, "why": why, "pref_code": f.pref_code,
            "municipality_code": f.municipality_code}
