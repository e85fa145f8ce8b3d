"""郡市医師会の報告（在宅医療において積極的役割を担う医療機関）, one row per data row of a returned report,
as read: cell text cleaned (NFKC, trimmed) but not yet converted. Checks sit next to the column they guard;
their descriptions are the messages the sender gets back."""
import pandera.polars as pa

from annex import codes
from annex.report_layout import institution_type, torikumi_numbers, yes_no
from schemas._checks import each_distinct, not_longer_than

_YESNO = "○ か空欄で記入してください（○・〇・✓・1・はい・有 も○として読みます）。"


# what each check asks of one value (each_distinct keeps their answers from call to call)
def _type_readable(v: str) -> bool:
    return institution_type(v) is not None


def _yes_no_readable(v: str) -> bool:
    return yes_no(v) is not None


def _numbers_readable(v: str) -> bool:
    return torikumi_numbers(v, 6) is not None


def _numbers_in_range(v: str) -> bool:
    nums = torikumi_numbers(v, 6)
    return nums is None or all(1 <= n <= 6 for n in nums)


class ReportedInstitution(pa.DataFrameModel):
    source_row: int = pa.Field(ge=1)
    name: str = pa.Field(nullable=True, title="医療機関名")
    inst_code: str = pa.Field(nullable=True, title="医療機関コード")
    municipality: str = pa.Field(nullable=True, title="所在市町村")
    reported_type: str = pa.Field(nullable=True, title="種別")
    torikumi_1: str = pa.Field(nullable=True, title="取組①")
    torikumi_2: str = pa.Field(nullable=True, title="取組②")
    torikumi_3: str = pa.Field(nullable=True, title="取組③")
    torikumi_4: str = pa.Field(nullable=True, title="取組④")
    torikumi_5: str = pa.Field(nullable=True, title="取組⑤")
    torikumi_6: str = pa.Field(nullable=True, title="取組⑥")
    torikumi_list: str = pa.Field(nullable=True, title="取組事項（番号）")
    report: str = pa.Field(nullable=True, title="報告")

    @pa.check("name", name="name_required", description="医療機関名が空です。医療機関名を記入してください。")
    def _name_present(cls, data):
        import polars as pl
        return data.lazyframe.select(pl.col(data.key).is_not_null() & (pl.col(data.key).str.len_chars() > 0))

    @pa.check("name", name="name_length",
              description="医療機関名が200文字を超えています。正式名称だけを記入してください。")
    def _name_length(cls, data):
        return not_longer_than(data, 200)

    @pa.check("inst_code", name="inst_code_check_digit",
              description="医療機関コードは10桁（都道府県2桁＋点数表1桁＋医療機関番号7桁）で、最後の検査数字が合っている必要があります。"
                          "分からない場合は空欄にしてください（名称で照合します）。")
    def _inst_code(cls, data):
        return each_distinct(data, codes.inst_code_check_ok)

    @pa.check("reported_type", name="reported_type_vocabulary",
              description="種別は一覧から選んでください（支援病1〜3・支援診1〜3・届出なし）。")
    def _type(cls, data):
        return each_distinct(data, _type_readable)

    @pa.check("torikumi_1", "torikumi_2", "torikumi_3", "torikumi_4", "torikumi_5", "torikumi_6", "report",
              name="yes_or_blank", description=_YESNO)
    def _yes(cls, data):
        return each_distinct(data, _yes_no_readable)

    @pa.check("torikumi_list", name="torikumi_numbers",
              description="取組事項は番号で記入してください（例: 1,2,4 または ①②④）。")
    def _numbers(cls, data):
        return each_distinct(data, _numbers_readable)

    @pa.check("torikumi_list", name="torikumi_in_range",
              description="取組事項の番号は1〜6です。")
    def _range(cls, data):
        return each_distinct(data, _numbers_in_range)

    class Config:
        strict = False
