"""Code systems and dates: check digits verified on real codes, and the 和暦 forms officials write."""
import datetime as dt

import pytest
from hypothesis import given, strategies as st

from annex import codes, text


def test_inst_code_check_digit_on_real_codes():
    # real codes from the 東北/四国 lists (0310110309 遠山病院, 3918010012 国立病院機構高知病院 …)
    for c in ["0310110309", "0310110457", "0310111240", "3918010012", "3910114812", "0310910096"]:
        assert codes.inst_code_check_ok(c), c
    assert not codes.inst_code_check_ok("0310110308")   # last digit altered
    assert not codes.inst_code_check_ok("031011030")    # 9 digits


def test_tokyo_area_codes_use_six_digit_body():
    # 11–14 compute the Luhn digit over the 6 digits after prefecture + 点数表
    body = "123456"
    code = "131" + body + str(codes.luhn_check_digit(body))
    assert codes.inst_code_check_ok(code)


@pytest.mark.parametrize("raw,expected", [
    ("01,1047,8", "0110478"), ("01-1857-5", "0118575"), ("01.1857.5", "0118575"),
    ("０１，１０４７，８", "0110478"), ("01-15202", "0115202"), ("0118575", "0118575"),
    (118575.0, "0118575"), ("1-1857-5", "0118575"), ("abc", None), ("01-185-5", None), (None, None),
])
def test_parse_inst_number(raw, expected):
    assert codes.parse_inst_number(raw) == expected


def test_municipality_check_digit():
    assert codes.muni_code6("03201") == "032018"    # 盛岡市
    assert codes.muni_code6("39201") == "392014"    # 高知市
    assert codes.muni_code6("01101") == "011011"    # 札幌市中央区
    assert codes.muni_code6_ok("221384") and not codes.muni_code6_ok("221385")


@pytest.mark.parametrize("raw,expected", [
    ("令和6年4月1日", dt.date(2024, 4, 1)), ("R6.4", dt.date(2024, 4, 1)), ("R08.03.01", dt.date(2026, 3, 1)),
    ("H28年度～", dt.date(2016, 4, 1)), ("2016/4", dt.date(2016, 4, 1)), ("令和 8年 3月 1日", dt.date(2026, 3, 1)),
    ("平成31年4月30日", dt.date(2019, 4, 30)), ("令和元年5月1日", dt.date(2019, 5, 1)),
    ("2026-03-01", dt.date(2026, 3, 1)), (45000, dt.date(2023, 3, 15)), ("Ｒ６．４．１", dt.date(2024, 4, 1)),
    ("20240401", dt.date(2024, 4, 1)),
])
def test_parse_date(raw, expected):
    assert codes.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["令和0年4月1日", "平成32年4月1日", "平成31年5月1日", "2024/2/30", "来年度", ""])
def test_impossible_dates_raise_with_japanese_message(raw):
    with pytest.raises(codes.DateParseError) as e:
        codes.parse_date(raw)
    assert any("\u3040" <= c <= "\u9fff" for c in str(e.value))


def test_to_wareki():
    assert codes.to_wareki(dt.date(2016, 4, 1), nendo=True) == "平成28年度"
    assert codes.to_wareki(dt.date(2019, 5, 1)) == "令和元年5月1日"


# --- normalisers: properties -------------------------------------------------------------------
@given(st.text())
def test_normalisers_never_raise_and_are_idempotent(s):
    for f in (text.basic, text.address_key):
        once = f(s)
        assert f(once) == once
    text.name_key(s)
    text.full_name_key(s)
    text.kind_hint(s)


@given(st.from_regex(r"\d{5}", fullmatch=True))
def test_muni_check_digit_round_trip(code5):
    assert codes.muni_code6_ok(codes.muni_code6(code5))


@given(st.from_regex(r"(0[1-9]|[1-3]\d|4[0-7])1\d{6}", fullmatch=True))
def test_inst_code_round_trip(body):
    digits = body[3:] if body[:2] in ("11", "12", "13", "14") else body
    assert codes.inst_code_check_ok(body + str(codes.luhn_check_digit(digits)))


@pytest.mark.parametrize("a,b", [
    ("山﨑病院", "山崎病院"), ("檮原町", "梼原町"), ("小籠", "小篭"), ("聖ヶ丘", "聖ケ丘"),
    ("医療法人 博愛会 横浜病院", "横浜病院"), ("社団医療法人　赤坂病院", "赤坂病院"),
    ("独立行政法人国立病院機構高知病院", "高知病院"), ("医療法人仁医会（財団）釜石厚生病院", "釜石厚生病院"),
    # a body whose own name starts with 会: only the 法人格 goes (it used to lose the 会 too)
    ("一般社団法人会津坂下地区医師会", "会津坂下地区医師会"),
])
def test_name_key_equal(a, b):
    assert text.name_key(a) == text.name_key(b)


@pytest.mark.parametrize("a,b", [
    ("永井１２地割１０番地", "永井１２−１０"), ("野田町一丁目１６番３２号", "野田町1-16-32"),
    ("館向町4番8号 2F", "館向町４ー８"), ("大船渡町字山馬越10番地1", "大船渡町字山馬越１０‐１"),
])
def test_address_key_equal(a, b):
    assert text.address_key(a) == text.address_key(b)


def test_gaiji_kept_and_flagged():
    name = "\ue1d1坂医院"       # real: 0310112826 starts with a private-use character
    assert text.has_gaiji(name)
    assert text.basic(name).startswith("\ue1d1")
    assert text.name_key(name) == "坂医院"
