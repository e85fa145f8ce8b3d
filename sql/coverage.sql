-- The 指針's rule: every 在宅医療圏 holds at least one institution and at least one hub.
CREATE TABLE coverage AS
WITH area_list AS (
    SELECT pref_code, home_care_area, min(area_order) AS area_order,
           list(municipality_code ORDER BY municipality_code) AS municipality_codes,
           string_agg(municipality_name, '・' ORDER BY municipality_code) AS municipality_names
    FROM areas GROUP BY pref_code, home_care_area
), counted AS (
    SELECT a.pref_code, a.home_care_area, a.area_order, a.municipality_codes, a.municipality_names,
           (SELECT count(*) FROM annex_institutions i
            WHERE i.pref_code = a.pref_code AND i.home_care_area = a.home_care_area) AS institutions,
           (SELECT count(*) FROM annex_hubs h
            WHERE h.pref_code = a.pref_code AND len(list_intersect(h.area_codes, a.municipality_codes)) > 0) AS hubs
    FROM area_list a
)
SELECT *, institutions >= 1 AND hubs >= 1 AS meets_rule,
       concat_ws('・', CASE WHEN institutions = 0 THEN '積極的役割を担う医療機関がない' END,
                       CASE WHEN hubs = 0 THEN '連携を担う拠点がない' END) AS gap
FROM counted
ORDER BY pref_code, area_order;
COMMENT ON TABLE coverage IS '圏域別の配置状況：在宅医療圏ごとに積極的役割を担う医療機関と連携を担う拠点の数、指針の「各1以上」を満たすか';
COMMENT ON COLUMN coverage.pref_code IS '都道府県コード';
COMMENT ON COLUMN coverage.home_care_area IS '在宅医療圏';
COMMENT ON COLUMN coverage.area_order IS '在宅医療圏の並び順（areas.area_order：areas.csv の順）';
COMMENT ON COLUMN coverage.municipality_codes IS '圏域の市町村の団体コード';
COMMENT ON COLUMN coverage.municipality_names IS '圏域の市町村（「・」区切り）';
COMMENT ON COLUMN coverage.institutions IS '圏域内の積極的役割を担う医療機関の数';
COMMENT ON COLUMN coverage.hubs IS '事業区域が圏域に掛かる連携を担う拠点の数';
COMMENT ON COLUMN coverage.meets_rule IS '医療機関・拠点とも1以上あるか（指針の要件）';
COMMENT ON COLUMN coverage.gap IS '足りないもの（満たしていれば空）';
