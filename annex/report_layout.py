"""What the 医師会 and 市町村 reports contain: columns, header aliases, vocabularies.

One place shared by the survey templates (which write these headers and dropdowns) and the ingestion
(which recognises them, and the many ways officials rewrite them, in returned files).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# 取組事項 texts, quoted from the 在宅医療の体制構築に係る指針 (2023-03-31) as summarised in domain.md
INSTITUTION_TORIKUMI = [
    "夜間や医師不在時、患者の病状の急変時等における診療の支援（特に一人の医師が開業している診療所への支援）",
    "在宅療養に移行する患者にとって必要な医療及び介護、障害福祉サービスが十分に確保できるよう、関係機関への働きかけ",
    "臨床研修制度における地域医療研修において、在宅医療の現場での研修を受ける機会等の確保",
    "災害時等にも適切な医療を提供するための計画（人工呼吸器等の医療機器を使用している患者の搬送等に係る計画を含む。）の策定と、他の医療機関等の計画策定等の支援",
    "地域包括支援センター等と協働しつつ、療養に必要な医療及び介護、障害福祉サービスや家族等の負担軽減につながるサービスを適切に紹介",
    "入院機能を有する医療機関においては、患者の病状が急変した際の受入れを行う",
]
HUB_TORIKUMI = [
    "地域の医療及び介護、障害福祉の関係者による会議を定期的に開催し、在宅医療における提供状況の把握、災害時対応を含む課題の抽出、対応策の検討等を実施",
    "地域の医療及び介護、障害福祉サービスについて、所在地や機能等を把握し、地域包括支援センターや障害者相談支援事業所等と連携しながら、退院時から看取りまでの医療や介護、障害福祉サービスにまたがる様々な支援を包括的かつ継続的に提供するよう、関係機関との調整を行う",
    "質の高い在宅医療をより効率的に提供するため、関係機関の連携による急変時の対応や24時間体制の構築、多職種による情報共有の促進を図る",
    "在宅医療に関する人材育成及び普及啓発を実施する（関係者への研修・情報共有）",
    "在宅医療に関する地域住民への普及啓発を実施する",
]
CIRCLED = "①②③④⑤⑥⑦⑧⑨"
FONT = "ＭＳ Ｐゴシック"  # the Windows family name as Japanese Excel writes it (MS PGothic); templates and returns

# 拠点の種別 and 運営主体の種別 the 指針 names (地域包括支援センター counts as 市町村)
HUB_KINDS = ["病院", "診療所", "訪問看護事業所", "地域医師会等関係団体", "保健所", "市町村", "地域包括支援センター"]
OPERATOR_KINDS = ["病院", "診療所", "訪問看護事業所", "地域医師会等関係団体", "保健所", "市町村"]
_KIND_ALIASES = {
    "病院": "病院", "診療所": "診療所", "クリニック": "診療所", "医院": "診療所",
    "訪問看護事業所": "訪問看護事業所", "訪問看護ステーション": "訪問看護事業所", "訪問看護": "訪問看護事業所",
    "地域医師会等関係団体": "地域医師会等関係団体", "医師会": "地域医師会等関係団体", "郡市医師会": "地域医師会等関係団体",
    "地区医師会": "地域医師会等関係団体", "関係団体": "地域医師会等関係団体", "地域医師会": "地域医師会等関係団体",
    "保健所": "保健所", "市町村": "市町村", "市": "市町村", "町": "市町村", "村": "市町村", "区": "市町村",
    "市町村直営": "市町村", "直営": "市町村", "地域包括支援センター": "地域包括支援センター",
}

# 種別 of an institution as reported (the 厚生局 symbols, and the labels of our dropdown)
INSTITUTION_TYPES = [
    "支援病1（機能強化型・単独型）", "支援病2（機能強化型・連携型）", "支援病3（従来型）",
    "支援診1（機能強化型・単独型）", "支援診2（機能強化型・連携型）", "支援診3（従来型）",
    "届出なし（病院）", "届出なし（診療所）",
]

YES = {"○", "〇", "◯", "●", "◎", "⭕", "✓", "✔", "☑", "✅", "レ", "1", "はい", "有", "あり", "有り", "該当", "yes", "y",
       "true", "済", "実施", "実施中", "する"}
NO = {"", "×", "✕", "✗", "-", "ー", "―", "－", "無", "なし", "無し", "いいえ", "0", "非該当", "no", "n", "false",
      "しない", "未実施"}


def clean(value: object) -> str:
    """Cell text as compared: NFKC (full-width digits and letters to half-width), trimmed, no inner
    line breaks, no invisible characters (INVISIBLE). Circled digits are kept (NFKC would turn ① into 1)."""
    if value.__class__ is str:
        return _clean_text(value)   # the common case: labels and values repeat across 1,851 reports
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _clean_text(str(value))


@lru_cache(maxsize=1 << 17)
def _clean_text(t: str) -> str:
    if t.isascii() and t.isprintable():
        return " ".join(t.split())
    # NFKC character by character (circled digits kept); a text already in NFKC as a whole (most Japanese
    # text: kanji, kana) holds no character that NFKC changes alone, nor a circled digit, so is left as it is
    if not unicodedata.is_normalized("NFKC", t):
        t = "".join(ch if ch in CIRCLED else unicodedata.normalize("NFKC", ch) for ch in t)
    t = INVISIBLE.sub("", t)
    return _SPACES.sub(" ", t).strip()


_SPACES = re.compile(r"\s+")


# characters nobody means to type in a name: C0/C1 controls other than whitespace, soft hyphen, zero-width
# and direction marks, word joiners, BOM, and the variation selectors Mac and phone keyboards put after a
# symbol (✔️ is ✔ U+FE0F, ✓︎ is ✓ U+FE0E). clean() removes them (the reader warns where it did, except for
# the variation selectors: they are printable, what a keyboard types, not a defect).
INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufe00-\ufe0f"
                       "\ufeff]")


# yes_no, hub_kind and institution_type are asked of every cell of their columns (~15,000 report rows
# nationally, each with up to seven ○ cells) and the cells repeat: their answers are kept
@lru_cache(maxsize=1 << 12)
def yes_no(value: str) -> bool | None:
    """○/〇/◯/✓/1/はい/有 → True, blank/×/0/なし → False, anything else → None (not readable)."""
    t = clean(value).lower()
    if t in YES:
        return True
    if t in NO:
        return False
    return None


@lru_cache(maxsize=1 << 12)
def hub_kind(value: str) -> str | None:
    t = re.sub(r"[（(].*?[)）]", "", clean(value)).replace(" ", "")
    if t in _KIND_ALIASES:
        return _KIND_ALIASES[t]
    for alias in sorted(_KIND_ALIASES, key=len, reverse=True):
        if len(alias) >= 2 and alias in t:
            return _KIND_ALIASES[alias]
    return None


def operator_kind(value: str) -> str | None:
    """運営主体の種別 in the 指針's terms; 地域包括支援センター is run under the 市町村."""
    k = hub_kind(value)
    return "市町村" if k == "地域包括支援センター" else k


@lru_cache(maxsize=1 << 12)
def institution_type(value: str) -> str | None:
    """Reported 種別 -> 支援病1..3 / 支援診1..3 / なし; None if not readable.

    Accepts the 厚生局 symbols in any width (支援診２ア → 支援診2), the dropdown labels, 在支診/在支病 and
    spelled-out names (在宅療養支援診療所（機能強化型・単独型）).
    """
    t = clean(value).replace(" ", "")
    if not t:
        return None
    if t.startswith("届出なし") or t in ("なし", "その他", "該当なし", "無", "病院", "診療所"):
        return "なし"
    kind = None
    if re.match(r"^(支援病|在支病|在宅療養支援病院)", t):
        kind = "支援病"
    elif re.match(r"^(支援診|在支診|在宅療養支援診療所)", t):
        kind = "支援診"
    if kind is None:
        return None
    rest = re.sub(r"^(支援病|在支病|在宅療養支援病院|支援診|在支診|在宅療養支援診療所)", "", t)
    m = re.match(r"^[(（]?([123])", rest)
    if m:
        return kind + m.group(1)
    if "単独" in rest:
        return kind + "1"
    if "連携" in rest:
        return kind + "2"
    if "従来" in rest:
        return kind + "3"
    if rest in ("", "()"):
        return kind  # kind given, type not: compared on the kind only
    return None


def torikumi_numbers(value: str, top: int) -> list[int] | None:
    """A single 取組事項 cell listing numbers: '1,2,4', '①②④', '1・3', '1．2．4', '1〜3', '①～③'. None if
    unreadable; numbers outside 1..top are returned as they are so that the range check can name them."""
    nums = _torikumi_numbers(value)
    return None if nums is None else list(nums)


@lru_cache(maxsize=1 << 12)
def _torikumi_numbers(value: str) -> tuple[int, ...] | None:
    """torikumi_numbers, kept per cell text (asked of every row's cell, blank on most)."""
    t = clean(value)
    if not t:
        return ()
    t = "".join(str(CIRCLED.index(c) + 1) + "," if c in CIRCLED else c for c in t)
    t = re.sub(r"[,\s]*([~〜～\-])\s*", r"\1", t)   # ①～③ became '1,~3,': a range stays one part
    nums: list[int] = []
    for part in re.split(r"[,、，・.。/／\s]+", t):
        if not part:
            continue
        m = re.fullmatch(r"(\d{1,2})[~〜～\-](\d{1,2})", part)
        if m:
            nums.extend(range(int(m.group(1)), int(m.group(2)) + 1))
        elif re.fullmatch(r"\d{1,2}", part):
            nums.append(int(part))
        else:
            return None
    return tuple(sorted(set(nums)))


def split_municipalities(value: str) -> list[str]:
    """事業区域 as written: '紫波町・矢巾町', '紫波町、矢巾町', one per line, or codes."""
    t = clean(value) if value is not None else ""
    return [p for p in re.split(r"[、,，・/／;；\s]+|及び|および", t) if p]


# --- columns -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    field: str                       # canonical name in the parsed frame
    label: str                       # header written by our template
    aliases: tuple[str, ...] = ()    # other headers seen in returned files (compared after normalise)
    width: float = 12                # template column width (characters)
    personal: bool = False           # 記入者・電話・メール: read for return letters only
    ignore: bool = False             # No. and the like: not data
    dropdown: str | None = None      # name of the list offered in the template
    comment: str = field(default="", compare=False)


def header_key(label: object) -> str:
    return _header_key(clean(label))


@lru_cache(maxsize=1 << 15)
def _header_key(cleaned: str) -> str:
    """Header text compared across layouts: NFKC, no spaces/line breaks, no ※notes, circled digits kept."""
    t = cleaned.replace(" ", "")
    t = _NOTE.sub("", t)
    t = _MARKING_HINT.sub("", t)
    return t


_NOTE = re.compile(r"※.*$")
_MARKING_HINT = re.compile(r"[(（](必須|任意|○|○印|〇|○または空欄|○か空欄|該当に○|該当するものに○)[)）]$")


_TORI_ALIASES = lambda n: (f"取組事項{CIRCLED[n - 1]}", f"取組{n}", f"取組事項{n}", f"取組事項({n})", f"({n})",
                           CIRCLED[n - 1], f"取組事項の{CIRCLED[n - 1]}", f"取組事項{CIRCLED[n - 1]}の実施")

_NO = Column("no", "No.", ("No", "NO", "番号", "通し番号", "№", "項番", "連番"), 5, ignore=True)
# the last columns of both reports: 取組 as a list (foreign layouts), 備考, and the personal contact columns
_TAIL = [
    Column("torikumi_list", "取組事項（番号）", ("取組事項", "取組", "取組事項番号", "実施する取組事項", "取組事項(番号)",
                                          "該当する取組事項"), 14),
    Column("note", "備考", ("その他", "特記事項", "コメント"), 20),
    Column("contact_person", "担当者", ("記入者", "担当", "担当者名", "記入者名", "連絡担当者"), 12, personal=True),
    Column("contact_phone", "電話", ("電話番号", "TEL", "Tel", "連絡先", "連絡先電話番号", "FAX"), 14, personal=True),
    Column("contact_email", "メール", ("メールアドレス", "E-mail", "Email", "e-mail", "mail", "Eメール"), 20, personal=True),
]

INSTITUTION_COLUMNS = [
    _NO,
    Column("report", "報告（○）", ("報告", "報告する", "選定", "指定", "積極的役割", "積極的役割を担う医療機関",
                                "積極的役割を担う医療機関として報告"), 8, dropdown="yesno",
           comment="積極的役割を担う医療機関として報告する行に ○"),
    Column("inst_code", "医療機関コード", ("医療機関コード(10桁)", "医療機関コード（10桁）", "コード", "医療機関番号",
                                        "医療機関CD", "機関コード"), 14),
    Column("name", "医療機関名", ("医療機関名称", "医療機関の名称", "名称", "機関名", "施設名", "医療機関", "病院・診療所名",
                             "病院名・診療所名"), 34),
    Column("municipality", "所在市町村", ("市町村", "市町村名", "所在地(市町村)", "所在地（市町村）", "所在市区町村",
                                     "市区町村", "市区町村名", "所在市町村名"), 12, dropdown="municipalities"),
    Column("address", "所在地", ("住所", "所在地(住所)", "所在地（住所）", "医療機関所在地"), 30),
    Column("reported_type", "種別", ("届出区分", "届出種別", "支援病・支援診の種別", "在宅療養支援病院・診療所の別", "類型",
                                  "種別(支援病・支援診)", "種別（支援病・支援診）", "届出状況"), 22,
           dropdown="institution_types"),
    *[Column(f"torikumi_{n}", f"取組{CIRCLED[n - 1]}", _TORI_ALIASES(n), 7, dropdown="yesno") for n in range(1, 7)],
    *_TAIL,
]

HUB_COLUMNS = [
    _NO,
    Column("name", "拠点の名称", ("名称", "拠点名", "拠点名称", "拠点", "連携拠点", "連携を担う拠点", "連携拠点名",
                              "在宅医療に必要な連携を担う拠点", "拠点の名前"), 34),
    Column("hub_kind", "拠点の種別", ("種別", "拠点種別", "拠点の区分", "区分"), 18, dropdown="hub_kinds"),
    Column("area", "事業区域（市町村）", ("事業区域", "区域", "対象区域", "対象市町村", "事業区域(市町村)", "事業区域の市町村",
                                   "担当区域"), 24, dropdown="municipalities"),
    Column("operator", "運営主体", ("運営主体名", "運営主体(名称)", "運営主体（名称）", "設置主体", "運営法人", "運営者"), 26),
    Column("operator_kind", "運営主体の種別", ("運営主体種別", "運営主体の区分", "運営主体区分", "設置主体の種別"), 18,
           dropdown="operator_kinds"),
    Column("start", "開始時期", ("開始年度", "設置年度", "開始年月", "開始", "設置時期", "開始時期(和暦)", "開始時期（和暦）",
                             "開始年月日", "指定年度", "設置年月日"), 14),
    Column("same_as_program", "推進事業の実施主体と同一（○）",
           ("推進事業の実施主体と同一", "在宅医療・介護連携推進事業の実施主体", "在宅医療・介護連携推進事業の実施主体と同一",
            "推進事業実施主体", "連携推進事業の実施主体"), 12, dropdown="yesno"),
    Column("same_as_institution", "積極的役割を担う医療機関と同一（○）",
           ("積極的役割を担う医療機関と同一", "積極的役割を担う医療機関", "積極的医療機関と同一"), 12, dropdown="yesno"),
    *[Column(f"torikumi_{n}", f"取組{CIRCLED[n - 1]}", _TORI_ALIASES(n), 7, dropdown="yesno") for n in range(1, 6)],
    *_TAIL,
]


@dataclass(frozen=True)
class ReportKind:
    kind: str                 # ishikai / shichoson (the folder name under raw/<pref>/reports/)
    title: str                # 調査票 title
    sender_label: str         # label of the sender cell in the sender block
    columns: list[Column]
    torikumi: list[str]
    required: tuple[str, ...]  # fields a header must have to be recognised

    @property
    def n_torikumi(self) -> int:
        return len(self.torikumi)

    def template_columns(self) -> list[Column]:
        """Columns our template writes (the one-cell 取組事項 list is for foreign layouts only)."""
        return [c for c in self.columns if c.field != "torikumi_list"]


ISHIKAI = ReportKind("ishikai", "在宅医療において積極的役割を担う医療機関 調査票", "医師会名", INSTITUTION_COLUMNS,
                     INSTITUTION_TORIKUMI, ("name",))
SHICHOSON = ReportKind("shichoson", "在宅医療に必要な連携を担う拠点 調査票", "市町村名", HUB_COLUMNS, HUB_TORIKUMI,
                       ("name",))
REPORT_KINDS = {k.kind: k for k in (ISHIKAI, SHICHOSON)}

# Sender block above the table (our template writes these labels in column A, the value in column B), and
# contact lines written under (or between) the rows. 報告者 is a person, not the sending body.
SENDER_LABELS = {
    "sender": ("医師会名", "市町村名", "提出元", "団体名", "郡市医師会名", "市町村", "医師会"),
    "contact_person": ("記入者", "担当者", "担当者名", "記入者名", "担当", "報告者", "報告者名", "連絡担当者"),
    "contact_section": ("所属", "担当課", "部署", "所属・職名", "担当部署"),
    "contact_phone": ("電話", "電話番号", "TEL", "Tel", "tel", "FAX", "連絡先", "連絡先電話番号"),
    "contact_email": ("メール", "メールアドレス", "E-mail", "Email", "e-mail", "mail", "Eメール"),
}
PERSONAL_FIELDS = ("contact_person", "contact_section", "contact_phone", "contact_email")
INSTRUCTION_SHEET = "記入要領"
INPUT_SHEET = "入力"
LIST_SHEET = "選択肢"
TEMPLATE_SHEETS = {INSTRUCTION_SHEET, INPUT_SHEET, LIST_SHEET}
# where our template puts things (1-based Excel rows)
TEMPLATE_SENDER_ROWS = {"sender": 2, "contact_section": 3, "contact_person": 4, "contact_phone": 5, "contact_email": 6}
TEMPLATE_HEADER_ROW = 8
TEMPLATE_DATA_ROWS = 300
