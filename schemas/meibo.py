"""地方厚生局 届出受理医療機関名簿 (施設基準の届出受理状況), one row per facility × notification after the
reader has carried facility columns down onto continuation rows."""
import pandera.polars as pa


class NotificationList(pa.DataFrameModel):
    pref_code: str = pa.Field(str_matches=r"^(0[1-9]|[1-3]\d|4[0-7])$", title="都道府県コード",
                              description="都道府県コード（01〜47）が読み取れません。都道府県コード列か都道府県名列を確認してください。")
    inst_number: str = pa.Field(str_matches=r"^\d{7}$", title="医療機関番号",
                                description="医療機関番号は7桁です（例: 01,1047,8 / 01-1857-5）。")
    tensuhyo: str = pa.Field(isin=["1", "3", "4", "6"], title="区分",
                             description="区分は 医科・歯科・薬局 のいずれかです。")
    name: str = pa.Field(str_length={"min_value": 1, "max_value": 200}, title="医療機関名称",
                         description="医療機関名称が空か長すぎます。")
    symbol: str = pa.Field(str_length={"min_value": 1, "max_value": 40}, title="受理記号",
                           description="受理記号が空です（例: 支援診１、在医総管１）。")
    source_row: int = pa.Field(ge=1)

    class Config:
        strict = False
