-- One row per institution. The strongest 支援病/支援診 type wins when a list carries two
-- (1 機能強化型単独 < 2 機能強化型連携 < 3 従来型); all of them stay visible in shien_symbols.
-- Read from the staged 名簿 rows (the notifications table holds the same rows): the table is still being
-- inserted beside the other tables while this one is built (warehouse.build).
CREATE TABLE home_care_status AS
WITH shien AS (
    SELECT inst_code,
           arg_min(symbol, substr(symbol, 4) || symbol) AS shien_symbol,
           arg_min(start_date, substr(symbol, 4) || symbol) AS shien_start,
           list(DISTINCT symbol ORDER BY symbol) AS shien_symbols
    FROM stg_notifications
    WHERE symbol SIMILAR TO '支援(病|診)[123](ア|イ)?'
    GROUP BY inst_code
), other AS (
    SELECT inst_code,
           bool_or(symbol = '在後病') AS kouhou_byoin,
           bool_or(symbol LIKE '在医総管%') AS zaiisoukan,
           list(DISTINCT symbol ORDER BY symbol) FILTER (WHERE symbol LIKE '在医総管%') AS zaiisoukan_symbols,
           list(DISTINCT symbol ORDER BY symbol) FILTER (
               WHERE symbol IN ('在充診', '在充病', '在緩診実', '在緩診病', '在診実1', '在診実2', '在病実1', '在病実2')
           ) AS addons
    FROM stg_notifications
    GROUP BY inst_code
)
SELECT i.inst_code, i.pref_code, i.municipality_code, i.name,
       substr(s.shien_symbol, 1, 3) AS shien_kind,
       substr(s.shien_symbol, 4) AS shien_type,
       s.shien_symbol, s.shien_start, coalesce(s.shien_symbols, []) AS shien_symbols,
       coalesce(o.kouhou_byoin, false) AS kouhou_byoin,
       coalesce(o.zaiisoukan, false) AS zaiisoukan,
       coalesce(o.zaiisoukan_symbols, []) AS zaiisoukan_symbols,
       coalesce(o.addons, []) AS addons,
       i.in_meibo
FROM institutions i
LEFT JOIN shien s USING (inst_code)
LEFT JOIN other o USING (inst_code)
ORDER BY i.inst_code;
COMMENT ON TABLE home_care_status IS '医療機関ごとの在宅医療関係の届出状況（厚生局 名簿から集計、医療機関ごとに1行）';
COMMENT ON COLUMN home_care_status.inst_code IS '医療機関コード（10桁）';
COMMENT ON COLUMN home_care_status.pref_code IS '都道府県コード';
COMMENT ON COLUMN home_care_status.municipality_code IS '所在市区町村の団体コード';
COMMENT ON COLUMN home_care_status.name IS '医療機関名称';
COMMENT ON COLUMN home_care_status.shien_kind IS '在宅療養支援病院（支援病）・在宅療養支援診療所（支援診）の別。届出がなければ空';
COMMENT ON COLUMN home_care_status.shien_type IS '類型：1＝機能強化型（単独型）、2ア・2イ＝機能強化型（連携型）、2＝旧様式で連携型の区分なし、3＝従来型';
COMMENT ON COLUMN home_care_status.shien_symbol IS '採用した受理記号（例：支援診2ア）';
COMMENT ON COLUMN home_care_status.shien_start IS 'その届出の算定開始年月日';
COMMENT ON COLUMN home_care_status.shien_symbols IS '名簿にある支援病・支援診の受理記号すべて';
COMMENT ON COLUMN home_care_status.kouhou_byoin IS '在宅療養後方支援病院（在後病）の届出あり';
COMMENT ON COLUMN home_care_status.zaiisoukan IS '在宅時医学総合管理料（在医総管）の届出あり';
COMMENT ON COLUMN home_care_status.zaiisoukan_symbols IS '在医総管の受理記号（在医総管1〜3、旧様式は「在医総管」）';
COMMENT ON COLUMN home_care_status.addons IS '在宅関係の加算の受理記号（在充診・在充病・在緩診実・在緩診病・在診実・在病実）';
COMMENT ON COLUMN home_care_status.in_meibo IS '届出受理医療機関名簿に載っているか（偽なら届出の情報はない）';
