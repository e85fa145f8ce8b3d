CREATE TABLE institutions AS
SELECT inst_code, pref_code, tensuhyo, name, address, postcode, beds, municipality_code, has_gaiji, in_meibo,
       as_of, source_file, source_row
FROM stg_institutions
ORDER BY inst_code;
COMMENT ON TABLE institutions IS '厚生局の届出受理医療機関名簿・医療機関コード一覧に載る保険医療機関（医療機関コードごとに1行）';
COMMENT ON COLUMN institutions.inst_code IS '医療機関コード（10桁：都道府県2＋点数表1＋郡市区2＋機関番号4＋検査数字1）';
COMMENT ON COLUMN institutions.pref_code IS '都道府県コード';
COMMENT ON COLUMN institutions.tensuhyo IS '点数表（1＝医科、3＝歯科、4＝調剤）';
COMMENT ON COLUMN institutions.name IS '医療機関名称（厚生局の表記のまま。外字を含むことがある）';
COMMENT ON COLUMN institutions.address IS '所在地（厚生局の表記、都道府県名なし）';
COMMENT ON COLUMN institutions.postcode IS '郵便番号';
COMMENT ON COLUMN institutions.beds IS '病床数（名簿に記載がある場合）';
COMMENT ON COLUMN institutions.municipality_code IS '所在市区町村の団体コード（住所から判定。判定できない場合は空）';
COMMENT ON COLUMN institutions.has_gaiji IS '名称に外字（私用領域の文字）を含むか';
COMMENT ON COLUMN institutions.in_meibo IS '届出受理医療機関名簿に載っているか（偽＝医療機関コード一覧のみ）';
COMMENT ON COLUMN institutions.as_of IS '出典ファイルの時点';
COMMENT ON COLUMN institutions.source_file IS '読み込んだファイル';
COMMENT ON COLUMN institutions.source_row IS 'ファイル内の行番号（Excelの行番号）';
