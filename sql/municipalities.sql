CREATE TABLE municipalities AS
SELECT code, substr(code, 1, 2) AS pref_code, pref_name, nullif(name, '') AS name, nullif(name_kana, '') AS name_kana,
       kind, nullif(parent_code, '') AS parent_code, TRY_CAST(nullif(valid_from, '') AS DATE) AS valid_from,
       TRY_CAST(nullif(valid_to, '') AS DATE) AS valid_to, nullif(successor_code, '') AS successor_code,
       (nullif(valid_to, '') IS NULL) AS is_current, source
FROM stg_municipalities
ORDER BY code;
COMMENT ON TABLE municipalities IS '全国地方公共団体コード（都道府県・市区町村・政令市の区）。廃止コードは後継コードを持つ';
COMMENT ON COLUMN municipalities.code IS '団体コード（6桁、5桁目までに検査数字を付けたもの）';
COMMENT ON COLUMN municipalities.pref_code IS '都道府県コード（2桁）';
COMMENT ON COLUMN municipalities.pref_name IS '都道府県名';
COMMENT ON COLUMN municipalities.name IS '市区町村名（政令市の区は「市名＋区名」、都道府県の行は空）';
COMMENT ON COLUMN municipalities.name_kana IS '市区町村名のカナ';
COMMENT ON COLUMN municipalities.kind IS '区分（都道府県・市・町・村・特別区・政令市・区）';
COMMENT ON COLUMN municipalities.parent_code IS '区の場合、所属する政令市の団体コード';
COMMENT ON COLUMN municipalities.valid_from IS '有効開始日（分かる場合）';
COMMENT ON COLUMN municipalities.valid_to IS '廃止日（この日から無効）';
COMMENT ON COLUMN municipalities.successor_code IS '廃止された場合の後継団体コード';
COMMENT ON COLUMN municipalities.is_current IS '現行コードか';
COMMENT ON COLUMN municipalities.source IS '出典';
