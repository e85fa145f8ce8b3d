-- Iwate's 参考３: per municipality the number of institutions with each notification, then per 在宅医療圏 and
-- per prefecture (level = municipality / area / prefecture). 支援診2 counts 2ア, 2イ and the old undivided 2.
CREATE TABLE resource_counts AS
WITH per_inst AS (
    SELECT a.pref_code, a.home_care_area, a.area_order, a.municipality_code, a.municipality_name, h.inst_code,
           h.shien_kind, substr(h.shien_type, 1, 1) AS t, h.zaiisoukan, h.kouhou_byoin
    FROM areas a
    LEFT JOIN home_care_status h ON h.municipality_code = a.municipality_code
), counts AS (
    SELECT pref_code, home_care_area, area_order, municipality_code, municipality_name,
           count(*) FILTER (WHERE shien_kind = '支援病' AND t = '1') AS shien_byo_1,
           count(*) FILTER (WHERE shien_kind = '支援病' AND t = '2') AS shien_byo_2,
           count(*) FILTER (WHERE shien_kind = '支援病' AND t = '3') AS shien_byo_3,
           count(*) FILTER (WHERE shien_kind = '支援診' AND t = '1') AS shien_shin_1,
           count(*) FILTER (WHERE shien_kind = '支援診' AND t = '2') AS shien_shin_2,
           count(*) FILTER (WHERE shien_kind = '支援診' AND t = '3') AS shien_shin_3,
           count(*) FILTER (WHERE zaiisoukan) AS zaiisoukan,
           count(*) FILTER (WHERE kouhou_byoin) AS kouhou_byoin
    FROM per_inst
    GROUP BY GROUPING SETS ((pref_code, home_care_area, area_order, municipality_code, municipality_name),
                            (pref_code, home_care_area, area_order), (pref_code))
)
SELECT CASE WHEN municipality_code IS NOT NULL THEN 'municipality'
            WHEN home_care_area IS NOT NULL THEN 'area' ELSE 'prefecture' END AS level,
       pref_code, home_care_area, area_order, municipality_code,
       coalesce(municipality_name, CASE WHEN home_care_area IS NOT NULL THEN home_care_area || ' 計' ELSE '計' END)
           AS label,
       shien_byo_1, shien_byo_2, shien_byo_3, shien_shin_1, shien_shin_2, shien_shin_3, zaiisoukan, kouhou_byoin
FROM counts
-- 圏域 in the order of areas.csv, each closed by its 計 row; the prefecture 計 last
ORDER BY pref_code, home_care_area IS NULL, area_order, municipality_code NULLS LAST;
COMMENT ON TABLE resource_counts IS '在宅療養支援病院・診療所等の状況（岩手県 参考３の形）：市町村ごと、在宅医療圏計、都道府県計の届出医療機関数（厚生局の名簿から集計）';
COMMENT ON COLUMN resource_counts.level IS '集計の単位（municipality＝市町村、area＝在宅医療圏の計、prefecture＝都道府県の計）';
COMMENT ON COLUMN resource_counts.pref_code IS '都道府県コード';
COMMENT ON COLUMN resource_counts.home_care_area IS '在宅医療圏（都道府県計の行は空）';
COMMENT ON COLUMN resource_counts.area_order IS '在宅医療圏の並び順（areas.area_order：areas.csv の順。都道府県計の行は空）';
COMMENT ON COLUMN resource_counts.municipality_code IS '市町村の団体コード（計の行は空）';
COMMENT ON COLUMN resource_counts.label IS '表に出す名前（市町村名、「〇〇 計」、「計」）';
COMMENT ON COLUMN resource_counts.shien_byo_1 IS '支援病1（機能強化型・単独型）の医療機関数';
COMMENT ON COLUMN resource_counts.shien_byo_2 IS '支援病2（機能強化型・連携型）の医療機関数';
COMMENT ON COLUMN resource_counts.shien_byo_3 IS '支援病3（従来型）の医療機関数';
COMMENT ON COLUMN resource_counts.shien_shin_1 IS '支援診1（機能強化型・単独型）の医療機関数';
COMMENT ON COLUMN resource_counts.shien_shin_2 IS '支援診2（機能強化型・連携型、2ア・2イを含む）の医療機関数';
COMMENT ON COLUMN resource_counts.shien_shin_3 IS '支援診3（従来型）の医療機関数';
COMMENT ON COLUMN resource_counts.zaiisoukan IS '在宅時医学総合管理料（在医総管）の届出医療機関数';
COMMENT ON COLUMN resource_counts.kouhou_byoin IS '在宅療養後方支援病院（在後病）の医療機関数';
