CREATE TABLE facilities AS
SELECT facility_id, kind, name, nullif(name_kana, '') AS name_kana, pref_code, municipality_code, address,
       lat, lon, beds, snapshot, source_file, source_row
FROM stg_facilities
ORDER BY facility_id;
COMMENT ON TABLE facilities IS '医療情報ネット（医療機能情報提供制度）オープンデータの施設（病院・診療所・歯科診療所）。出典：「医療情報ネットのオープンデータ」（厚生労働省）';
COMMENT ON COLUMN facilities.facility_id IS '医療情報ネットのID（数字の文字列。桁数は都道府県により異なる。医療機関コードではない）';
COMMENT ON COLUMN facilities.kind IS '種別（hospital＝病院、clinic＝診療所、dental＝歯科診療所）';
COMMENT ON COLUMN facilities.name IS '正式名称';
COMMENT ON COLUMN facilities.name_kana IS '正式名称（フリガナ）';
COMMENT ON COLUMN facilities.pref_code IS '都道府県コード';
COMMENT ON COLUMN facilities.municipality_code IS '所在市区町村の団体コード（6桁、政令市は区。廃止コードは後継に置換済み）';
COMMENT ON COLUMN facilities.address IS '所在地（公表のまま）';
COMMENT ON COLUMN facilities.lat IS '緯度（公表値が 0.0,0.0 の場合は空）';
COMMENT ON COLUMN facilities.lon IS '経度（公表値が 0.0,0.0 の場合は空）';
COMMENT ON COLUMN facilities.beds IS '合計病床数';
COMMENT ON COLUMN facilities.snapshot IS 'オープンデータの時点（ファイル名の日付）';
COMMENT ON COLUMN facilities.source_file IS '読み込んだファイル';
COMMENT ON COLUMN facilities.source_row IS 'ファイル内の行番号（見出しが1行目）';
