-- area_order: the 圏域 in the order raw/<pref>/areas.csv first names them (the plan's own order, e.g. 岩手:
-- 盛岡, 岩手中部, 胆江, …), which no code or name sorts into; every table and sheet by 圏域 follows it.
CREATE TABLE areas AS
SELECT pref_code, municipality_code, municipality_name, secondary_area, home_care_area,
       dense_rank() OVER (PARTITION BY pref_code ORDER BY first_row) AS area_order, ishikai
FROM (SELECT *, min(source_row) OVER (PARTITION BY pref_code, home_care_area) AS first_row FROM stg_areas)
ORDER BY pref_code, area_order, municipality_code;
COMMENT ON TABLE areas IS '圏域の設定（raw/<都道府県コード>/areas.csv）：市町村ごとの二次医療圏・在宅医療圏・郡市医師会';
COMMENT ON COLUMN areas.pref_code IS '都道府県コード';
COMMENT ON COLUMN areas.municipality_code IS '市町村の団体コード（6桁）';
COMMENT ON COLUMN areas.municipality_name IS '市町村名（市区町村マスタの表記）';
COMMENT ON COLUMN areas.secondary_area IS '二次医療圏';
COMMENT ON COLUMN areas.home_care_area IS '在宅医療圏（「積極的役割を担う医療機関」と「連携を担う拠点」を各1以上置く単位）';
COMMENT ON COLUMN areas.area_order IS '在宅医療圏の並び順（1から。areas.csv で最初に出てくる順＝計画の順。圏域ごとの表はこの順に並べる）';
COMMENT ON COLUMN areas.ishikai IS 'その市町村を受け持つ郡市医師会';
