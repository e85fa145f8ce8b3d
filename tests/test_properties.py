"""Properties of the normalisers and code systems (hypothesis): they never raise on any input, a normaliser
applied to its own output changes nothing, and check digits round-trip. tests/test_codes.py already covers
text.basic / text.address_key on arbitrary text and the plain check-digit round trips; this module adds the
rest."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

from hypothesis import example, given, settings, strategies as st
import polars as pl

from annex import codes, text
from annex.meibo import normalise_symbol
from annex.report_layout import clean

SETTINGS = settings(max_examples=200, deadline=None)
# text as it comes from Japanese files: kana, kanji, full-width forms, digits, dashes, spaces, invisible marks
JAPANESE = st.lists(st.one_of(
    st.characters(min_codepoint=0x3000, max_codepoint=0x30FF), st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF9F),
    st.sampled_from(list("0123456789-‐−ー－・ 　\u200b\t\n丁目番地号法人会医療社団")),
    st.sampled_from(["医療法人", "社会医療法人", "県立", "町立", "国保", "一丁目", "十二番", "①", "㈱", "ｶﾞ", "\ue1d1"]),
), max_size=12).map("".join)
ANY_TEXT = st.one_of(st.text(), JAPANESE)


@SETTINGS
@given(ANY_TEXT)
def test_name_keys_never_raise_and_are_idempotent(s):
    for f in (text.full_name_key, text.basic, text.address_key):
        once = f(s)
        assert isinstance(once, str) and f(once) == once, (f.__name__, s, once, f(once))


@SETTINGS
@given(ANY_TEXT)
def test_name_key_idempotent_once_no_corporation_is_left(s):
    """name_key removes one leading 法人格 (with the corporation's own name) and up to two public-owner prefixes.
    Its output starts with another one only when the name repeats them (医療法人医療法人…, 町立町立町立…), which
    no real name does; stripping until nothing is left would change the keys of real names (the hand-checked
    link answers). So: idempotent whenever the key does not itself start with a 法人格 or owner prefix."""
    key = text.name_key(s)
    if key.startswith(text._CORP_TYPES) or text._PUBLIC_OWNER.match(key):
        return
    assert text.name_key(key) == key, (s, key, text.name_key(key))


@SETTINGS
@given(st.one_of(ANY_TEXT, st.none(), st.integers(), st.floats(allow_nan=True), st.booleans()))
def test_clean_never_raises_and_is_idempotent(v):
    once = clean(v)
    assert clean(once) == once
    assert once == once.strip() and "  " not in once and "\n" not in once
    assert not any(c in once for c in "\u200b\ufeff\x00\x07")


@SETTINGS
@given(st.one_of(ANY_TEXT, st.lists(st.characters(), max_size=6).map("".join)))
def test_clean_is_nfkc_character_by_character(s):
    """clean() leaves a text already in NFKC as it is instead of normalising it character by character: the same
    result (circled digits kept, invisible characters removed, spaces collapsed) as doing it every time."""
    import re
    import unicodedata
    from annex.report_layout import CIRCLED, INVISIBLE
    by_character = "".join(ch if ch in CIRCLED else unicodedata.normalize("NFKC", ch) for ch in s)
    expected = re.sub(r"\s+", " ", INVISIBLE.sub("", by_character)).strip()
    if s.isascii() and s.isprintable():
        expected = " ".join(s.split())
    assert clean(s) == expected

@SETTINGS
@given(ANY_TEXT)
def test_normalise_symbol_idempotent(s):
    once = normalise_symbol(s)
    assert normalise_symbol(once) == once and not any(c.isspace() for c in once)


@SETTINGS
@given(st.one_of(ANY_TEXT, st.from_regex(r"[0-9０-９]{1,2}[,.\-ー－]?[0-9０-９]{4}[,.\-ー－]?[0-9０-９]", fullmatch=True),
                 st.integers(), st.floats(allow_nan=True), st.none()))
def test_parse_inst_number_total(v):
    n = codes.parse_inst_number(v)
    assert n is None or (len(n) == 7 and n.isdigit())
    if n is not None:
        assert codes.parse_inst_number(n) == n


ERA_NAMES = ["令和", "平成", "昭和", "大正", "R", "H", "S", "T", "r", "Ｒ", "明治"]


@st.composite
def wareki(draw):
    """和暦 as officials write it, from valid and invalid parts (令和0年, 平成32年, 13月, 32日…):
    (text, era as written, year in era, month, day)."""
    era = draw(st.sampled_from(ERA_NAMES))
    year = draw(st.one_of(st.just("元"), st.integers(0, 99).map(str), st.integers(0, 9).map(lambda y: f"0{y}")))
    month, day = draw(st.integers(0, 14)), draw(st.integers(0, 33))
    form = draw(st.sampled_from(["{e}{y}年{m}月{d}日", "{e}{y}.{m}.{d}", "{e}{y}年{m}月", "{e}{y}年度", "{e}{y}年度～",
                                 "{e} {y}年 {m}月 {d}日", "{e}{y}/{m}/{d}", "{e}{y}年{m}月{d}日から"]))
    s = form.format(e=era, y=year, m=month, d=day)
    if draw(st.booleans()):
        s = s.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return s, era, 1 if year == "元" else int(year), month if "{m}" in form else None, day if "{d}" in form else None


@SETTINGS
@given(st.one_of(wareki().map(lambda w: w[0]), ANY_TEXT, st.integers(-10, 3_000_000),
                 st.floats(allow_nan=True, allow_infinity=True)))
def test_parse_date_returns_a_date_or_a_japanese_error(v):
    try:
        d = codes.parse_date(v)
    except codes.DateParseError as exc:
        assert any("\u3040" <= c <= "\u9fff" for c in str(exc))
    else:
        assert isinstance(d, dt.date)


INITIALS = {"R": "令和", "H": "平成", "S": "昭和", "T": "大正", "r": "令和", "Ｒ": "令和"}


@SETTINGS
@given(wareki())
def test_parsed_wareki_is_a_real_date_of_its_era(w):
    """Whatever parses is 令和1年 or later within its era's years, with the month and day as written; 令和0年,
    平成32年, 13月, 2月30日 never parse."""
    s, era, year, month, day = w
    try:
        d = codes.parse_date(s)
    except codes.DateParseError:
        return
    era = INITIALS.get(era, era)
    start, end = codes.ERAS[era][1], codes._ERA_END[era]
    assert year >= 1 and d.year == start.year + year - 1
    assert end is None or d.year <= end.year
    if month is not None:
        assert d.month == month and d.day == (day if day is not None else 1)
        if day is not None:   # a full date lies inside the era
            assert start <= d and (end is None or d <= end)
    else:
        assert (d.month, d.day) == (4, 1)


@SETTINGS
@given(st.dates(min_value=dt.date(1927, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_wareki_round_trip(d):
    assert codes.parse_date(codes.to_wareki(d)) == d
    fy = d.year if d.month >= 4 else d.year - 1
    assert codes.parse_date(codes.to_wareki(d, nendo=True)) == dt.date(fy, 4, 1)


@SETTINGS
@given(st.from_regex(r"[0-4][0-9]\d{3}", fullmatch=True), st.integers(0, 9))
def test_muni_check_digit_wrong_digit_fails(code5, digit):
    good = codes.muni_code6(code5)
    assert codes.muni_code6_ok(good)
    assert codes.muni_code6_ok(code5 + str(digit)) == (str(digit) == good[5])


@SETTINGS
@given(st.from_regex(r"(0[1-9]|[1-3]\d|4[0-7])[13]\d{6}", fullmatch=True), st.integers(0, 9))
def test_inst_code_wrong_check_digit_fails(body, digit):
    digits = body[3:] if body[:2] in ("11", "12", "13", "14") else body
    good = body + str(codes.luhn_check_digit(digits))
    assert codes.inst_code_check_ok(good)
    assert codes.inst_code_check_ok(body + str(digit)) == (str(digit) == good[9])


@SETTINGS
@given(ANY_TEXT)
def test_check_digit_functions_total(s):
    assert codes.inst_code_check_ok(s) in (True, False)
    assert codes.muni_code6_ok(s) in (True, False)


@SETTINGS
@given(st.lists(st.one_of(st.from_regex(r"(0[1-9]|[1-4]\d)[0-9]\d{7}", fullmatch=True),    # ASCII: column-wise
                          st.from_regex(r"[0-9０-９]{10}", fullmatch=True),                  # full-width: per value
                          ANY_TEXT, st.none()), max_size=60))
def test_column_wise_check_digit_equals_the_per_value_one(values):
    """codes.inst_codes_check_ok (the 名簿 reader's, over 1.5 M rows) gives what inst_code_check_ok gives."""
    got = codes.inst_codes_check_ok(pl.Series("inst_code", values, dtype=pl.String))
    assert got.name == "inst_code" and got.dtype == pl.Boolean
    assert got.to_list() == [codes.inst_code_check_ok(v) for v in values]


# 医療情報ネット facility files: the column-wise reader (facility_files._plain_records) against the row-by-row one
_FIELD_TEXT = st.lists(st.one_of(
    st.sampled_from(list('",  　\t\x1c\u3000\u00a0xX0１２-') + ["", "中央クリニック", "岩手県盛岡市内丸１−１", '""']),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),
), max_size=4).map("".join)
_FIELD_MESS = ["\r\n", "\n", "\r", "\ufeff", "\x00", "x" * 131073]   # line breaks, a stray BOM, NUL, an over-long field


@st.composite
def facility_csv(draw) -> bytes:
    """A facility file as a publisher or a hand edit could leave it: the required header (and extra columns),
    fields quoted or not, quotes, commas and line breaks inside them, blank lines, ragged rows, repeated IDs,
    prefectures in and out of scope, CRLF or LF, a BOM or not."""
    header = ["ID", "正式名称", "都道府県コード", "市区町村コード", "所在地"] + draw(st.sampled_from([[], ["合計病床数"], ["備考", "所在地座標（緯度）"]]))
    rows = []
    for k in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 19)) == 0:
            rows.append([])                                                    # a blank line
            continue
        fields = [draw(st.sampled_from(["0110", "0121", " 0110 ", "", "　"])),   # IDs that repeat, or none
                  draw(_FIELD_TEXT), draw(st.sampled_from(["03", "39", "13", " 03", ""])),
                  draw(st.sampled_from(["201", "2O1", ""])), draw(_FIELD_TEXT)]
        fields += [draw(_FIELD_TEXT) for _ in header[5:]]
        if draw(st.integers(0, 9)) == 0:   # nothing but spaces: blank to str.strip() (\x1c too, unlike Unicode)
            fields = [draw(st.sampled_from(["", " ", "\x1c", "　", "\t"])) for _ in fields]
        if draw(st.integers(0, 14)) == 0:
            fields[draw(st.integers(0, len(fields) - 1))] += draw(st.sampled_from(_FIELD_MESS))
        if draw(st.integers(0, 19)) == 0:
            fields = fields[:draw(st.integers(0, len(fields) + 1))] + [""] * draw(st.integers(0, 1))   # ragged
        rows.append(fields)

    def cell(v: str) -> str:
        quoted = draw(st.booleans()) or any(c in v for c in '",\r\n')
        return '"' + v.replace('"', '""') + '"' if quoted and not draw(st.integers(0, 39)) == 0 else v
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    text = eol.join(",".join(cell(v) for v in r) for r in [header, *rows]) + draw(st.sampled_from([eol, ""]))
    data = draw(st.sampled_from([b"\xef\xbb\xbf", b""])) + text.encode("utf-8")
    return data.replace("中央".encode(), "中央".encode("cp932")) if draw(st.integers(0, 9)) == 0 else data   # not UTF-8


@settings(max_examples=300, deadline=None)
@given(facility_csv(), st.sampled_from([None, {"03", "39"}]))
def test_facility_file_read_column_wise_as_row_by_row(tmp_path_factory, data, prefs):
    """Whatever the file holds, the column-wise path gives exactly what the row-by-row reader gives (rows,
    counts, findings) — or declines and leaves the file to it."""
    from annex import facility_files
    path = tmp_path_factory.mktemp("fac") / "01-1_hospital_facility_info_20260601.csv"
    path.write_bytes(data)
    column_wise = facility_files.read_facility_file(path, prefs)
    plain = facility_files._plain_records
    facility_files._plain_records = lambda payload: None
    try:
        row_by_row = facility_files.read_facility_file(path, prefs)
    finally:
        facility_files._plain_records = plain
    assert column_wise.accepted.schema == row_by_row.accepted.schema
    assert column_wise.accepted.equals(row_by_row.accepted), (column_wise.accepted, row_by_row.accepted)
    assert column_wise.findings == row_by_row.findings
    assert (column_wise.rows_in, column_wise.skipped_blank, column_wise.out_of_scope, column_wise.status) == \
        (row_by_row.rows_in, row_by_row.skipped_blank, row_by_row.out_of_scope, row_by_row.status)


# make_sides' keys (text.name_keys, MunicipalityIndex.street_key) skip, for plain text, the steps that cannot
# apply to it. They must give what the per-value functions give, on any text.
@lru_cache(maxsize=1)
def _index():
    from annex.reference import read_reference
    from tests.conftest import RAW
    return read_reference(RAW, {"03", "39"}).index   # the shipped master is national


UNITS = ["丁目", "番地", "番", "号", "地割", "字", "大字", "第", "の", "条", "線", "番地の", "番の", "ノ", "丁", "地"]
WORDS = [*text._CORP_TYPES, "県立", "町立", "市立", "国保", "国民健康保険", "組合立", "企業団立", "公立", "会", "社団",
         "病院", "クリニック", "診療所", "医院", "クリニーク", "分院", "本院", "センター", "1丁目", "二十三番", "第十二地割",
         "一般", "第一", "三井", "八幡平", "郡", "病院会", "クリニック会", "1--2", "3--", "--", "5ーー6", "7‐−8", "番‐",
         "号−", "丁目ー", "一ー"]
# what names and addresses are made of, plain (text.PLAIN_CHARS once NFKC'd, but for variant kanji and spaces) …
PLAIN_PIECES = st.one_of(
    st.characters(min_codepoint=0x3041, max_codepoint=0x3096), st.characters(min_codepoint=0x30A1, max_codepoint=0x30FA),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.sampled_from(list("0123456789０１２３４５６７８９AZaz-ー々〇零一二三四五六七八九十百千市区町村郡")
                    + list("‐‒–—―−－ｰ") + [" ", "　", "  "]),
    st.sampled_from(sorted(text.VARIANT_CHARS)), st.sampled_from(UNITS), st.sampled_from(WORDS),
)
# … and anything else that comes in Japanese files
OTHER_PIECES = st.one_of(
    st.characters(min_codepoint=0x3000, max_codepoint=0x30FF), st.characters(min_codepoint=0xFF01, max_codepoint=0xFF9F),
    st.sampled_from(list(text._DASHES + "\u2011・･.,、，。'\"「」『』()（）|\t\n\u200b\ufeff\u3099\u309a\u0301\ue000①²㈱")
                    + ["ｶﾞ", "か\u3099", "\U000f0001", "(財団)", "（医療法人）", "(社団)"]),
)
PLAIN_TEXT = st.lists(PLAIN_PIECES, max_size=14).map("".join)
# the numbers of a street: digits, kanji numerals, units and dashes in any order
STREET_TEXT = st.lists(st.one_of(st.sampled_from(list("0123456789０１２３")), st.sampled_from(list("〇一二三十百千第")),
                                 st.sampled_from(UNITS), st.sampled_from(list(text._DASHES + "-")),
                                 st.sampled_from([u + d for u in ("番", "号", "丁目", "番地") for d in text._DASHES]),
                                 st.sampled_from(["ビル", "2F", "ー", "字", "大字"])), max_size=12).map("".join)
SOME_TEXT = st.lists(st.one_of(PLAIN_PIECES, PLAIN_PIECES, OTHER_PIECES), max_size=14).map("".join)
MANY = settings(max_examples=600, deadline=None)


@st.composite
def addresses(draw):
    """(prefecture code, address): a municipality of the master, with or without its prefecture and 郡, spaces
    between, then a street; now and then in another prefecture or with no municipality at all."""
    index = _index()
    rows = draw(st.sampled_from(_master_rows()))
    pref = rows["code"][:2] if draw(st.integers(0, 5)) else draw(st.sampled_from(sorted(index._names)))
    space = st.sampled_from(["", "", " ", "　"])
    head = draw(st.sampled_from(["", rows["pref_name"], rows["pref_name"] + draw(space)]))
    district = draw(st.sampled_from(["", "", "岩手郡", "上閉伊郡", "幡多郡", "高岡郡", "郡"]))
    town = draw(st.sampled_from([rows["name"], rows["name"], "", draw(PLAIN_TEXT)]))
    return pref, head + district + town + draw(space) + draw(st.one_of(PLAIN_TEXT, SOME_TEXT, STREET_TEXT))


@lru_cache(maxsize=1)
def _master_rows() -> list[dict]:
    return [r for r in _index().master.iter_rows(named=True) if r["name"]]


def test_plain_characters_need_none_of_the_steps_the_fast_keys_skip():
    """What text.PLAIN_CHARS promises, character by character: its own NFKC, combining with no neighbour (not a
    combining mark, not the second of any composition), no space, punctuation, bracket, 外字, "|" or other digit
    than 0-9; the variant kanji are replaced by plain characters."""
    import re
    import unicodedata
    seconds = set()
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<") and len(d.split()) == 2:
            seconds.add(chr(int(d.split()[1], 16)))
    assert len(text.PLAIN_CHARS) > 20000
    for c in text.PLAIN_CHARS:
        assert unicodedata.normalize("NFKC", c) == c and unicodedata.combining(c) == 0, c
        assert c not in seconds and not 0x1100 <= ord(c) <= 0x11FF, c     # nor a Hangul jamo
        assert not c.isspace() and c not in "()|\n", c
        for pattern in (text._SPACES, text._SPACE_RUN, text._PUNCT, text._PRIVATE_USE):
            assert not pattern.search(c), (pattern.pattern, c)
        assert bool(re.match(r"\d", c)) == (c in "0123456789") and c.translate(text._VARIANTS) == c, c
    assert all(v in text.PLAIN_CHARS for v in text._VARIANTS.values())
    assert set("-0123456789") <= text.PLAIN_CHARS and not text.VARIANT_CHARS & text.PLAIN_CHARS


@MANY
@given(PLAIN_TEXT)
def test_plain_text_is_its_own_nfkc_and_plain_basic_is_basic(s):
    import unicodedata
    n = unicodedata.normalize("NFKC", s)
    plain = "".join(c for c in n.translate(text._VARIANTS) if c != " ")
    assert unicodedata.normalize("NFKC", plain) == plain and all(c in text.PLAIN_CHARS for c in plain)
    assert text.plain_basic(s) == (text.basic(s) if " " not in n else None)


@MANY
@given(st.one_of(SOME_TEXT, st.tuples(PLAIN_TEXT, SOME_TEXT).map("".join)))
@example("本町1--2ー3")
@example("髙田１－２")
def test_plain_basic_is_basic_or_nothing(s):
    got = text.plain_basic(s)
    assert got is None or got == text.basic(s), (s, got, text.basic(s))


@st.composite
def names(draw):
    """A facility's name after a corporation's, or a public owner, or neither; a space between or not."""
    owner = draw(st.sampled_from(["", "", *text._CORP_TYPES[:6], "医療法人社団", "県立", "国保", "町立"]))
    body = draw(st.sampled_from(["", "", "博愛会", "病院会", "クリニック会", "一二三会"]))
    space = draw(st.sampled_from(["", " ", "　", "  "]))
    return owner + body + space + draw(PLAIN_TEXT) + draw(st.sampled_from(["", "病院", "クリニック", "医院", "分院"]))


@MANY
@given(st.one_of(PLAIN_TEXT, SOME_TEXT, names(), st.none()))
def test_name_keys_are_the_per_value_keys(name):
    assert text.name_keys(name) == (text.name_key(name), text.full_name_key(name), text.kind_hint(name)), name


@MANY
@given(addresses())
def test_street_key_is_the_address_key_after_the_municipality(case):
    pref, address = case
    index = _index()
    assert index.street_key(pref, address) == text.address_key(index.resolve(pref, address)[1]), case


@MANY
@given(st.one_of(PLAIN_TEXT, SOME_TEXT, STREET_TEXT, st.tuples(PLAIN_TEXT, STREET_TEXT).map("".join)))
@example("ニュー--タウン1番‐2")   # a run of dashes in the town; a dash a removed unit brings next to a digit
@example("大町十二番地の三ー4号--5")
def test_plain_street_key_is_address_key(s):
    """On what is left of a plain address after any cut (its basic() form, or any end of that)."""
    t = text.plain_basic(s)
    if t is None:
        return
    for street in {t, t[1:], t[len(t) // 2:], t[-3:]}:
        assert text.plain_street_key(street) == text.address_key(street), (s, street)
