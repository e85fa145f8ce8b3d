"""医療情報ネット facility files (01-1 hospitals, 02-1 clinics, 03-1 dental), after the reader has mapped the
publisher's Japanese headers to these names. Values are still text here: they are checked before casting
so that a bad value is reported as written."""
import pandera.polars as pa
import polars as pl

_DECIMAL = r"^-?\d+(\.\d+)?$"


class FacilityFile(pa.DataFrameModel):
    facility_id: str = pa.Field(
        str_matches=r"^\d{9,15}$", title="ID",
        description="IDは数字だけの文字列です（先頭2桁が都道府県コード。桁数は都道府県により11桁・13桁など）。")
    kind_code: str = pa.Field(nullable=True, isin=["1", "2", "3", ""], title="機関区分",
                              description="機関区分は 1（病院）・2（診療所）・3（歯科診療所）のいずれかです。")
    name: str = pa.Field(str_length={"min_value": 1, "max_value": 200}, title="正式名称",
                         description="正式名称が空か長すぎます（200文字まで）。")
    name_kana: str = pa.Field(nullable=True, title="正式名称（フリガナ）")
    pref_code: str = pa.Field(str_matches=r"^(0[1-9]|[1-3]\d|4[0-7])$", title="都道府県コード",
                              description="都道府県コードは01〜47の2桁です。")
    city_code: str = pa.Field(str_matches=r"^\d{3}$", title="市区町村コード",
                              description="市区町村コードは3桁の数字です（政令市は区のコード）。")
    address: str = pa.Field(str_length={"min_value": 1}, title="所在地", description="所在地が空です。")
    lat_raw: str = pa.Field(nullable=True, str_matches=_DECIMAL, title="所在地座標（緯度）",
                            description="緯度は小数で書きます（不明は 0.0）。")
    lon_raw: str = pa.Field(nullable=True, str_matches=_DECIMAL, title="所在地座標（経度）",
                            description="経度は小数で書きます（不明は 0.0）。")
    beds_raw: str = pa.Field(nullable=True, str_matches=r"^\d{0,5}$", title="合計病床数",
                             description="合計病床数は0以上の整数です。")
    source_row: int = pa.Field(ge=1)

    @pa.dataframe_check(error="IDの先頭2桁が都道府県コードと一致しません。")
    def id_starts_with_pref(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("facility_id").str.slice(0, 2) == pl.col("pref_code"))

    class Config:
        strict = False
        coerce = False
