"""市町村の報告（在宅医療に必要な連携を担う拠点）, one row per data row of a returned report, as read."""
import datetime as dt

import pandera.polars as pa

from annex import codes
from annex.report_layout import hub_kind, operator_kind, torikumi_numbers, yes_no
from schemas._checks import each_distinct, not_longer_than

_YESNO = "○ か空欄で記入してください（○・〇・✓・1・はい・有 も○として読みます）。"
EARLIEST_START = dt.date(1989, 1, 8)   # 平成元年: 在宅医療の連携拠点はこれより前にはない
LATEST_START = dt.date(2040, 3, 31)    # 計画期間を十分に超える先の年度まで


def _date_or_none(v: str) -> dt.date | None:
    try:
        return codes.parse_date(v)
    except codes.DateParseError:
        return None


# what each check asks of one value (each_distinct keeps their answers from call to call)
def _hub_kind_readable(v: str) -> bool:
    return hub_kind(v) is not None


def _operator_kind_readable(v: str) -> bool:
    return operator_kind(v) is not None


def _date_readable(v: str) -> bool:
    return _date_or_none(v) is not None


def _date_in_range(v: str) -> bool:
    d = _date_or_none(v)
    return d is None or EARLIEST_START <= d <= LATEST_START


def _yes_no_readable(v: str) -> bool:
    return yes_no(v) is not None


def _numbers_readable(v: str) -> bool:
    return torikumi_numbers(v, 5) is not None


def _numbers_in_range(v: str) -> bool:
    nums = torikumi_numbers(v, 5)
    return nums is None or all(1 <= n <= 5 for n in nums)


class ReportedHub(pa.DataFrameModel):
    source_row: int = pa.Field(ge=1)
    name: str = pa.Field(nullable=True, title="拠点の名称")
    hub_kind: str = pa.Field(nullable=True, title="拠点の種別")
    area: str = pa.Field(nullable=True, title="事業区域（市町村）")
    operator: str = pa.Field(nullable=True, title="運営主体")
    operator_kind: str = pa.Field(nullable=True, title="運営主体の種別")
    start: str = pa.Field(nullable=True, title="開始時期")
    same_as_program: str = pa.Field(nullable=True, title="推進事業の実施主体と同一")
    same_as_institution: str = pa.Field(nullable=True, title="積極的役割を担う医療機関と同一")
    torikumi_1: str = pa.Field(nullable=True, title="取組①")
    torikumi_2: str = pa.Field(nullable=True, title="取組②")
    torikumi_3: str = pa.Field(nullable=True, title="取組③")
    torikumi_4: str = pa.Field(nullable=True, title="取組④")
    torikumi_5: str = pa.Field(nullable=True, title="取組⑤")
    torikumi_list: str = pa.Field(nullable=True, title="取組事項（番号）")

    @pa.check("name", name="name_required", description="拠点の名称が空です。名称を記入してください。")
    def _name_present(cls, data):
        import polars as pl
        return data.lazyframe.select(pl.col(data.key).is_not_null() & (pl.col(data.key).str.len_chars() > 0))

    @pa.check("name", name="name_length",
              description="拠点の名称が200文字を超えています。正式名称だけを記入してください。")
    def _name_length(cls, data):
        return not_longer_than(data, 200)

    @pa.check("area", name="area_required",
              description="事業区域が空です。拠点が受け持つ市町村を「・」で区切って記入してください（例: 紫波町・矢巾町）。")
    def _area_present(cls, data):
        import polars as pl
        return data.lazyframe.select(pl.col(data.key).is_not_null() & (pl.col(data.key).str.len_chars() > 0))

    @pa.check("hub_kind", name="hub_kind_vocabulary",
              description="拠点の種別は 病院・診療所・訪問看護事業所・地域医師会等関係団体・保健所・市町村・地域包括支援センター"
                          " から選んでください。")
    def _hub_kind(cls, data):
        return each_distinct(data, _hub_kind_readable)

    @pa.check("operator_kind", name="operator_kind_allowed",
              description="運営主体の種別は、指針が定める 病院・診療所・訪問看護事業所・地域医師会等関係団体・保健所・市町村"
                          "（地域包括支援センターを含む）のいずれかです。")
    def _operator_kind(cls, data):
        return each_distinct(data, _operator_kind_readable)

    @pa.check("start", name="start_date_readable",
              description="開始時期は 令和6年4月・R6.4・H28年度・2016/4 のように記入してください。")
    def _start(cls, data):
        return each_distinct(data, _date_readable)

    @pa.check("start", name="start_date_in_range",
              description="開始時期が平成元年より前か、2040年より後になっています。年を確認してください。")
    def _start_range(cls, data):
        return each_distinct(data, _date_in_range)

    @pa.check("same_as_program", "same_as_institution", "torikumi_1", "torikumi_2", "torikumi_3", "torikumi_4",
              "torikumi_5", name="yes_or_blank", description=_YESNO)
    def _yes(cls, data):
        return each_distinct(data, _yes_no_readable)

    @pa.check("torikumi_list", name="torikumi_numbers",
              description="取組事項は番号で記入してください（例: 1,2,4 または ①②④）。")
    def _numbers(cls, data):
        return each_distinct(data, _numbers_readable)

    @pa.check("torikumi_list", name="torikumi_in_range",
              description="取組事項の番号は1〜5です。")
    def _range(cls, data):
        return each_distinct(data, _numbers_in_range)

    class Config:
        strict = False
