"""全国地方公共団体コード master (raw/reference/municipalities/municipalities.csv)."""
import pandera.polars as pa
import polars as pl


class MunicipalityMaster(pa.DataFrameModel):
    code: str = pa.Field(str_matches=r"^\d{6}$", unique=True, title="団体コード",
                         description="団体コードは6桁（5桁＋検査数字）で、重複できません。")
    pref_name: str = pa.Field(str_matches=r"^.{2,3}[都道府県]$", title="都道府県名",
                              description="都道府県名が正しくありません。")
    name: str = pa.Field(nullable=True, title="市区町村名")
    kind: str = pa.Field(isin=["都道府県", "市", "町", "村", "特別区", "政令市", "区"], title="区分",
                         description="区分は 都道府県・市・町・村・特別区・政令市・区 のいずれかです。")
    parent_code: str = pa.Field(nullable=True, str_matches=r"^(\d{6})?$", title="所属政令市コード")
    valid_to: str = pa.Field(nullable=True, str_matches=r"^(\d{4}-\d{2}-\d{2})?$", title="廃止日",
                             description="廃止日は YYYY-MM-DD で書きます。")
    successor_code: str = pa.Field(nullable=True, str_matches=r"^(\d{6})?$", title="後継団体コード")
    source_row: int = pa.Field(ge=1)

    @pa.check("code", error="団体コードの検査数字（6桁目）が合いません。")
    def check_digit(cls, data) -> pl.LazyFrame:
        c = pl.col("code")
        s = sum(c.str.slice(i, 1).cast(pl.Int64) * w for i, w in enumerate((6, 5, 4, 3, 2)))
        return data.lazyframe.select(((11 - s % 11) % 10) == c.str.slice(5, 1).cast(pl.Int64, strict=False))

    class Config:
        strict = False
