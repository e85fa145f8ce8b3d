"""raw/<pref>/areas.csv: which 在宅医療圏, 二次医療圏 and 郡市医師会 each municipality belongs to
(prefecture configuration, edited by officials)."""
import pandera.polars as pa


class AreaConfig(pa.DataFrameModel):
    municipality_code: str = pa.Field(str_matches=r"^\d{6}$", title="団体コード",
                                      description="団体コードは6桁（検査数字つき、例: 032018）で書いてください。")
    municipality_name: str = pa.Field(nullable=True, title="市町村名")
    secondary_area: str = pa.Field(str_length={"min_value": 1, "max_value": 60}, title="二次医療圏",
                                   description="二次医療圏の名前を書いてください。")
    home_care_area: str = pa.Field(str_length={"min_value": 1, "max_value": 60}, title="在宅医療圏",
                                   description="在宅医療圏の名前を書いてください（二次医療圏と同じでも構いません）。")
    ishikai: str = pa.Field(str_length={"min_value": 1, "max_value": 60}, title="郡市医師会",
                            description="その市町村を受け持つ郡市医師会の名前を書いてください。")
    source_row: int = pa.Field(ge=1)

    @pa.dataframe_check(name="unique_municipality", description="同じ市町村が2回書かれています。1行にしてください。")
    def _unique(cls, data) -> bool:
        import polars as pl
        from annex.findings import PART
        dup = pl.col("municipality_code").is_duplicated()
        # several prefectures' files validated at once (findings.validate_each): within each file
        return data.lazyframe.select(~(dup.over(PART) if PART in data.lazyframe.collect_schema().names() else dup))

    class Config:
        strict = False
