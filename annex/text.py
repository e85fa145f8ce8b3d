"""Text normalisation for matching names and addresses across sources that share no key.

Every function here is total (never raises on str input) and idempotent, so the same key can be
computed on either side of a join and again on its own output.
"""
from __future__ import annotations

import re
from functools import lru_cache
import unicodedata

# Variant kanji seen between 医療情報ネット, the 厚生局 lists and the municipality master.
# Map each to one canonical form; the direction does not matter as long as both sides use it.
_VARIANTS = str.maketrans({
    "﨑": "崎", "嵜": "崎", "髙": "高", "檮": "梼", "籠": "篭", "邉": "辺", "邊": "辺",
    "齋": "斎", "齊": "斉", "濵": "浜", "濱": "浜", "冨": "富", "德": "徳", "惠": "恵",
    "ヶ": "ケ", "ヵ": "カ", "𠮷": "吉", "塚": "塚", "舘": "館", "龍": "竜",
})

_VARIANT_CHARS = re.compile("[" + re.escape("".join(chr(c) for c in _VARIANTS)) + "]")

# Dashes used interchangeably in addresses (U+2010, U+2011, U+2012, U+2013, U+2014, U+2015, U+2212,
# U+FF0D, U+30FC and the half-width prolonged sound mark U+FF70).
_DASHES = "‐‑‒–—―−－ーｰ"
_DASH_AFTER_DIGIT = re.compile(r"(?<=\d)[" + _DASHES + r"-]+")
_SPACES = re.compile(r"[\s\u3000\u200b\u200c\u200d\ufeff]+")
_PUNCT = re.compile(r"[・･.,、，。'\"「」『』]")

_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                 "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_KANJI_NUM = "〇零一二三四五六七八九十百千"


# the private-use areas of is_private_use(), as one character class (finding 外字, removing them from a key)
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
PRIVATE_USE_CLASS = r"[\x{E000}-\x{F8FF}\x{F0000}-\x{10FFFF}]"   # the same, for polars (Rust regex syntax)


def is_private_use(ch: str) -> bool:
    """True for characters of the Unicode private-use areas (外字 in Japanese government data)."""
    cp = ord(ch)
    return 0xE000 <= cp <= 0xF8FF or 0xF0000 <= cp <= 0x10FFFF


def has_gaiji(text: str | None) -> bool:
    return bool(text) and _PRIVATE_USE.search(text) is not None


def kanji_to_int(s: str) -> int:
    """'三' -> 3, '十二' -> 12, '二十一' -> 21, '百五' -> 105, '一二' -> 12 (positional)."""
    if any(c in _KANJI_UNITS for c in s):
        total, cur = 0, 0
        for c in s:
            if c in _KANJI_DIGITS:
                cur = cur * 10 + _KANJI_DIGITS[c]
            else:
                total += (cur or 1) * _KANJI_UNITS[c]
                cur = 0
        return total + cur
    return int("".join(str(_KANJI_DIGITS[c]) for c in s))


_KANJI_BEFORE_UNIT = re.compile(r"([" + _KANJI_NUM + r"]+)(?=丁目|番地|番|号|地割|条|線)")


def kanji_numerals_in_address(text: str) -> str:
    """Turn kanji numerals into digits where they count a block: 一丁目 -> 1丁目, 第十二地割 -> 第12地割.

    Place names that merely contain numerals (八幡平, 一関, 九戸) are left alone.
    """
    return _KANJI_BEFORE_UNIT.sub(lambda m: str(kanji_to_int(m.group(1))), text)


_KANJI_RUN = re.compile("[" + _KANJI_NUM + "]+")


def _all_kanji_numerals(text: str) -> str:
    return _KANJI_RUN.sub(lambda m: str(kanji_to_int(m.group(0))), text)


# Called once per row on values that repeat heavily at national scale (a facility has dozens of 名簿 rows):
# cached, since they are pure and return immutable values.
@lru_cache(maxsize=262144)
def basic(text: str | None) -> str:
    """NFKC, variant kanji, unified dashes after digits, no spaces. Keeps 外字 as they are."""
    if not text:
        return ""
    # NFKC leaves private-use code points untouched, so 外字 survive normalisation.
    t = unicodedata.normalize("NFKC", str(text))
    if _VARIANT_CHARS.search(t):   # translate() looks every character up: only where there is one to replace
        t = t.translate(_VARIANTS)
    t = _SPACES.sub("", t)
    t = _DASH_AFTER_DIGIT.sub("-", t)
    # removing a space can bring a combining mark next to a letter: normalise once more so the key is stable
    return unicodedata.normalize("NFKC", t)


def tail_as_written(original: str | None, tail: str) -> str:
    """The part of original that ends basic(original) in tail (a suffix of it), as written: NFKC'd, its spaces
    kept — address_key ends the street part at a space (丸ノ内1丁目7-45 4階), which basic() would remove.
    tail itself when the original has no space, or when the end cannot be found character for character."""
    t = unicodedata.normalize("NFKC", original or "")
    if not _SPACES.search(t):
        return tail
    # basic() keeps every other character one for one before the tail (a prefecture or municipality name
    # holds no digits, so no dash after a digit is merged there): count them off
    want, seen = len(basic(t)) - len(tail), 0
    for at, ch in enumerate(t):
        if seen == want:
            break
        seen += not _SPACES.fullmatch(ch)
    else:
        at = len(t)
    written = t[at:].strip()
    return written if basic(t[:at]) + basic(written) == basic(t) and basic(written) == tail else tail


# 法人格 and public-owner prefixes that one source writes and the other omits.
_CORP_TYPES = (
    "社会福祉法人恩賜財団済生会", "独立行政法人国立病院機構", "独立行政法人地域医療機能推進機構",
    "独立行政法人労働者健康安全機構", "地方独立行政法人", "独立行政法人", "国立大学法人", "公立大学法人",
    "社会医療法人社団", "社会医療法人財団", "社会医療法人", "社団医療法人", "財団医療法人", "医療法人社団", "医療法人財団", "特定医療法人",
    "医療法人", "一般社団法人", "一般財団法人", "公益社団法人", "公益財団法人", "社会福祉法人",
    "学校法人", "宗教法人", "医療生活協同組合", "生活協同組合", "厚生農業協同組合連合会",
    "国家公務員共済組合連合会", "日本赤十字社", "株式会社", "有限会社", "合同会社",
)
_CORP_RE = re.compile(
    "^(?:" + "|".join(map(re.escape, _CORP_TYPES)) + ")"
    r"(?:[^\s]{1,14}?(?:会|団|機構|組合|連合会|協会|社|センター)(?:\([^)]*\))?)?"
)
# the 法人格 alone, for a name that is nothing but the corporation (一般社団法人会津坂下地区医師会)
_CORP_TYPE_ONLY = re.compile("^(?:" + "|".join(map(re.escape, _CORP_TYPES)) + ")")
# "(財団)" / "(社団)" annotations and similar legal remarks in brackets.
_LEGAL_PAREN = re.compile(r"\((?:財団|社団|医療法人|社会医療法人|一般|公益)[^)]*\)")
_BODY_END = re.compile(r"(?:会|団|法人)$")   # the first word names a corporate body
_PUBLIC_OWNER = re.compile(r"^(?:.{0,16}?(?:企業団|組合)立|.{0,6}?[都道府県市町村]立|国民健康保険|国保|公立)")


def strip_corporate(name: str) -> str:
    """Remove a leading 法人格 (with the corporation's own name) and public-owner prefixes.

    Works on the raw name so that a space separating the corporation from the facility can be used;
    returns a `basic`-normalised string.
    """
    if not name:
        return ""
    t = unicodedata.normalize("NFKC", str(name))
    if _VARIANT_CHARS.search(t):   # translate() looks every character up: only where there is one to replace
        t = t.translate(_VARIANTS)
    t = t.strip()
    if "(" in t:
        t = _LEGAL_PAREN.sub("", t)
    return basic(_without_owner([p for p in _SPACES.split(t) if p]))


def _without_owner(parts: list[str]) -> str:
    """strip_corporate's work on the words of a name: the name without its 法人格 and public owner, joined."""
    if len(parts) > 1 and (parts[0].startswith(_CORP_TYPES) or _BODY_END.search(parts[0])):
        # "医療法人 博愛会 横浜病院", "社会医療法人近森会 近森病院": the facility is the last word
        t = parts[-1] if len(parts[-1]) >= 2 else "".join(parts[1:])
    else:
        t = "".join(parts)
        if t.startswith(_CORP_TYPES):   # what both patterns start with
            stripped = _CORP_RE.sub("", t, count=1)
            if len(stripped) < 2:
                stripped = _CORP_TYPE_ONLY.sub("", t, count=1)
            # never strip a name down to nothing or to a bare kind word
            if len(stripped) >= 2:
                t = stripped
    for _ in range(2):
        # every _PUBLIC_OWNER holds 立 but 国民健康保険 and 国保, which start with 国
        if "立" in t or t.startswith("国"):
            stripped = _PUBLIC_OWNER.sub("", t, count=1)
            if len(stripped) >= 2:
                t = stripped
    return t


@lru_cache(maxsize=262144)
def name_key(name: str | None) -> str:
    """Matching key for an institution name: no 法人格, no punctuation, digits for kanji numerals,
    外字 removed (they are flagged separately and cannot be compared)."""
    if not name:
        return ""
    t = _PRIVATE_USE.sub("", _PUNCT.sub("", strip_corporate(name)))
    # basic once more: a digit from a kanji numeral can precede a dash (一ー -> 1-), a removed mark can bring a
    # combining mark next to its letter; the key must be stable when computed again on itself
    return basic(_all_kanji_numerals(t))


@lru_cache(maxsize=262144)
def full_name_key(name: str | None) -> str:
    """Like name_key but keeps the 法人格: used when the corporation is what tells two apart."""
    t = unicodedata.normalize("NFKC", name or "")
    t = _PUNCT.sub("", basic(_LEGAL_PAREN.sub("", t) if "(" in t else t))
    return basic(_all_kanji_numerals(_PRIVATE_USE.sub("", t)))


# a unit between numbers is a separator, also across a space (1丁目 7-45: the space marked "|", see below)
_BLOCK_SEP = re.compile(r"(?<=\d)(?:丁目|番地の|番地|番の|番|地割|の)\|?(?=\d)")
_TRAILING = re.compile(r"(?<=\d)(?:番地|番|号|丁目)")
_SPACE_RUN = re.compile(r"[\s\u3000]+")
_DAI_CHIWARI = re.compile(r"第(\d+)地割")
_DASH_RUN = re.compile(r"-+")
_OTHER_DASH = re.compile("[" + _DASHES + "]")   # the dashes that are not "-"
_STREET_NUMBER = re.compile(r"\d+(?:-\d+)*")
_KANJI_NUM_CHARS = frozenset(_KANJI_NUM)


@lru_cache(maxsize=262144)
def address_key(address: str | None) -> str:
    """Matching key for the street part of an address (prefecture and municipality already removed).

    永井12地割10番地 and 永井12-10 give the same key; 一丁目16番32号 becomes 1-16-32. Text after the
    house number (building names, floors) is dropped because sources disagree on it.
    """
    if not address:
        return ""
    key, gaps = _address_key_once(str(address))
    # removing spaces or punctuation can bring a numeral next to its unit (一　番 -> 一番, which a second pass
    # makes 1): once more, so that the key is stable when computed again on itself
    return _address_key_once(key)[0] if gaps else key


def _address_key_once(address: str) -> tuple[str, bool]:
    """address_key's steps, once; and whether spaces or punctuation were removed on the way.
    Each step is skipped when the text cannot contain what it rewrites (~200 k addresses nationally)."""
    # a space ends the street part ("館向町4番8号 2F", "丸ノ内1-7-45 4階") unless a unit before it awaits the next
    # number ("1丁目 7-45"): mark it before spaces are removed
    t = basic(_SPACE_RUN.sub("|", unicodedata.normalize("NFKC", address).strip()))
    gaps = "|" in t or _PUNCT.search(t) is not None
    return _street_part(t, gaps), gaps


def _street_part(t: str, gaps: bool, plain: bool = False) -> str:
    """address_key's steps after the first basic(): t with its spaces marked "|" (gaps: it had spaces or
    punctuation). plain: t is plain text (PLAIN_CHARS), which these steps keep plain."""
    if not _KANJI_NUM_CHARS.isdisjoint(t):
        t = kanji_numerals_in_address(t)
    if "第" in t:
        t = _DAI_CHIWARI.sub(r"\1地割", t)
    if "番" in t or "丁" in t or "地" in t or "の" in t:   # what every unit of _BLOCK_SEP starts with
        t = _BLOCK_SEP.sub("-", t)
    if "番" in t or "号" in t or "丁" in t:                # of _TRAILING
        t = _TRAILING.sub("", t)
    if "-" in t:
        t = _DASH_RUN.sub("-", t)
    if "|" in t:
        # keep space-separated parts up to the first one that carries a number
        kept = []
        for part in t.split("|"):
            kept.append(part)
            if any(c.isdigit() for c in part):
                break
        t = "".join(kept)
    if not plain:
        t = basic(_PUNCT.sub("", t) if gaps else t)
    elif _OTHER_DASH.search(t):
        # basic() of plain text merges the dashes after digits, and nothing else; runs of "-" alone are single
        # ones by now, so only where another dash is left
        t = _DASH_AFTER_DIGIT.sub("-", t)
    # the street part ends with the first run of numbers (12-3-4); what follows is a building, a floor …
    m = _STREET_NUMBER.search(t)
    if m:
        t = t[:m.end()]
    return t.rstrip("-")


@lru_cache(maxsize=262144)
def address_parts(key: str) -> tuple[str, str]:
    """Split an address_key into (town, numbers): the place name with 大字/字 removed, and the number blocks.

    南畑32地割字南桝沢265 -> ('南畑', '32地割265'); 渋民字大前田53-2 -> ('渋民', '53-2'); 潮見台 -> ('潮見台', '').
    """
    m = _DIGIT.search(key)
    head, nums = (key[:m.start()], key[m.start():]) if m else (key, "")
    head = _OAZA_START.sub("", head)
    head = _AZA.split(head, maxsplit=1)[0]
    nums = _AZA_NAME.sub("", nums)
    return head, nums


_DIGIT = re.compile(r"\d")
_OAZA_START = re.compile(r"^大字")
_AZA = re.compile(r"大字|字")
_AZA_NAME = re.compile(r"(?:大字|字)[^\d-]*")
# the words that make a name a clinic or a hospital (str methods: kind_hint runs on ~90 k names nationally)
_CLINIC_WORDS = ("診療所", "クリニック", "医院", "クリニーク")
_CLINIC_ENDS = tuple(w + end for w in _CLINIC_WORDS for end in ("", "分院", "本院"))
_HOSPITAL_ENDS = ("病院", "病院分院", "病院本院")


def kind_hint(name: str | None) -> str | None:
    """'hospital' / 'clinic' when the name says so, else None. Used to refuse cross-kind links."""
    return _kind_of(basic(name))


def _kind_of(t: str) -> str | None:
    # what the name ends with decides: 竹本病院附属富山クリニック is a clinic, 〇〇医院 is a clinic,
    # 〇〇クリニック病院 a hospital; only then whatever it contains
    if t.endswith(_CLINIC_ENDS):
        return "clinic"
    if t.endswith(_HOSPITAL_ENDS) or "病院" in t and not ("診療所" in t or "クリニック" in t or "医院" in t):
        return "hospital"
    if "診療所" in t or "クリニック" in t or "医院" in t or "クリニーク" in t:
        return "clinic"
    return None


# Plain text, and make_sides' keys of it. Plain: kanji, kana, ASCII letters and digits, and the dashes NFKC keeps.
# Each of these characters is its own NFKC and combines with no neighbour, so any string of them, and any part of
# one, is NFKC already; none is a space, punctuation, a bracket, 外字 or a variant kanji, and the only digits are
# 0-9. On plain text basic() merges the dashes after digits and does nothing else, and the steps of the keys that
# look for spaces, punctuation or 外字 find none: nearly all names and addresses are plain once NFKC'd, their
# variant kanji replaced (and a name's spaces aside), and for them make_sides skips those steps, a regular-expression
# pass each (~180 k records nationally). tests/test_properties.py checks these facts character by character, and the keys against
# the functions above.
_PLAIN_RANGES = ((0x2D, 0x2D), (0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0x2010, 0x2010), (0x2012, 0x2015),
                 (0x2212, 0x2212), (0x3005, 0x3005), (0x3007, 0x3007), (0x3041, 0x3096), (0x30A1, 0x30FA),
                 (0x30FC, 0x30FC), (0x4E00, 0x9FFF))
VARIANT_CHARS = frozenset(chr(c) for c, to in _VARIANTS.items() if chr(c) != to)   # what translate() changes
PLAIN_CHARS = frozenset(chr(c) for lo, hi in _PLAIN_RANGES for c in range(lo, hi + 1)) - VARIANT_CHARS


def _not_in(chars: frozenset[str]) -> re.Pattern:
    """A pattern finding a character that is not one of chars (a class of code-point ranges)."""
    ranges: list[list[int]] = []
    for c in sorted(map(ord, chars)):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return re.compile("[^" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]")


_NOT_PLAIN = _not_in(PLAIN_CHARS)
_NOT_PLAIN_NOR_VARIANT = _not_in(PLAIN_CHARS | VARIANT_CHARS)
_NOT_PLAIN_OR_DASH = _not_in(PLAIN_CHARS - set(_DASHES))   # also a dash other than "-"
_NOT_PLAIN_NAME = _not_in(PLAIN_CHARS | VARIANT_CHARS | {" "})   # a name's spaces are NFKC'd to " "
_NUMBERS_START = re.compile("[0-9第" + _KANJI_NUM + "]")   # where the first number of a street can start


def plain_basic(text: str) -> str | None:
    """basic(text) when text is plain once NFKC'd and its variant kanji replaced, else None."""
    t = unicodedata.normalize("NFKC", text)
    m = _NOT_PLAIN_OR_DASH.search(t)
    if m is None:   # most addresses: plain, "-" their only dash and never two in a row, so basic() changes nothing
        return t if "--" not in t else _DASH_AFTER_DIGIT.sub("-", t)
    m = _NOT_PLAIN.search(t, m.start())
    if m is not None:
        if _NOT_PLAIN_NOR_VARIANT.search(t, m.start()):
            return None
        t = t.translate(_VARIANTS)   # each by a plain character
    return _DASH_AFTER_DIGIT.sub("-", t)


def plain_street_key(street: str) -> str:
    """address_key(street) for a street that is plain_basic()'s output or the end of one (what
    MunicipalityIndex.street_key leaves after the municipality): address_key's steps without normalising again.

    Those steps act on numbers — digits, kanji numerals, 第…地割 — and what follows them; before the first, they
    only make runs of "-" single. So the town (春日塚) is kept as it is, and the numbers (5丁目3番25号), which many
    streets share, are keyed once."""
    m = _NUMBERS_START.search(street)
    if m is None:
        return _street_part(street, gaps=False, plain=True)
    town = street[:m.start()]
    if "-" in town:
        town = _DASH_RUN.sub("-", town)
    # the numbers' key keeps at least their first character, so its rstrip("-") never reaches into the town
    return town + _plain_numbers_key(street[m.start():])


@lru_cache(maxsize=262144)
def _plain_numbers_key(numbers: str) -> str:
    # cached: house numbers repeat across streets (~180 k streets nationally, ~50 k distinct numbers)
    return _street_part(numbers, gaps=False, plain=True)


@lru_cache(maxsize=262144)
def name_keys(name: str | None) -> tuple[str, str, str | None]:
    """(name_key(name), full_name_key(name), kind_hint(name)), the keys make_sides needs of a name (~65 k distinct
    names nationally). A name that is plain once NFKC'd but for its variant kanji and spaces is keyed by the same
    steps without those that cannot apply to it; any other name by those functions themselves."""
    t = unicodedata.normalize("NFKC", name or "")
    if _NOT_PLAIN_NAME.search(t):
        return name_key(name), full_name_key(name), kind_hint(name)
    if _VARIANT_CHARS.search(t):
        t = t.translate(_VARIANTS)
    # no bracket, punctuation or 外字 for the keys to remove; strip_corporate's words are those between spaces
    words = t.split()
    joined = "".join(words)
    whole = _DASH_AFTER_DIGIT.sub("-", joined)   # basic(name), and full_name_key(name) but for kanji numerals
    own = _without_owner(words)
    own = whole if own == joined else _DASH_AFTER_DIGIT.sub("-", own)   # strip_corporate(name)
    if _KANJI_RUN.search(whole):
        # a numeral's digits can come before a dash (一ー -> 1-): merged as basic() does
        return (_DASH_AFTER_DIGIT.sub("-", _all_kanji_numerals(own)),
                _DASH_AFTER_DIGIT.sub("-", _all_kanji_numerals(whole)), _kind_of(whole))
    return own, whole, _kind_of(whole)
