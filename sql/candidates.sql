-- The selection rule of domain.md (潮来保健所's タタキ台), per municipality:
--   1 its 支援病; else 2a its 機能強化型 支援診 (1, 2); else 2b its 従来型 支援診 (3);
--   else 3 the 支援病 (else the 支援診) of the other municipalities of the same 二次医療圏.
-- No adjacency data is shipped, so step 3 proposes the whole 二次医療圏 rather than touching neighbours.
CREATE TABLE candidates AS
WITH s AS (
    SELECT h.inst_code, h.name, h.municipality_code, h.shien_kind, h.shien_symbol, substr(h.shien_type, 1, 1) AS t,
           a.secondary_area, a.pref_code
    FROM home_care_status h JOIN areas a ON a.municipality_code = h.municipality_code
    WHERE h.shien_kind IS NOT NULL
), own AS (
    SELECT a.pref_code, a.municipality_code, a.municipality_name, a.secondary_area, a.home_care_area,
           s.inst_code, s.name, s.municipality_code AS inst_municipality_code, s.shien_symbol,
           CASE WHEN s.shien_kind = '支援病' THEN 1 WHEN s.t IN ('1', '2') THEN 2 ELSE 3 END AS rank
    FROM areas a JOIN s ON s.municipality_code = a.municipality_code
), own_best AS (
    SELECT * FROM own QUALIFY rank = min(rank) OVER (PARTITION BY municipality_code)
), neighbour AS (
    SELECT a.pref_code, a.municipality_code, a.municipality_name, a.secondary_area, a.home_care_area,
           s.inst_code, s.name, s.municipality_code AS inst_municipality_code, s.shien_symbol,
           CASE WHEN s.shien_kind = '支援病' THEN 4 WHEN s.t IN ('1', '2') THEN 5 ELSE 6 END AS rank
    FROM areas a JOIN s ON s.secondary_area = a.secondary_area AND s.pref_code = a.pref_code
                      AND s.municipality_code <> a.municipality_code
    WHERE a.municipality_code NOT IN (SELECT municipality_code FROM own)
), neighbour_best AS (
    SELECT * FROM neighbour QUALIFY rank = min(rank) OVER (PARTITION BY municipality_code)
), picked AS (
    SELECT * FROM own_best UNION ALL SELECT * FROM neighbour_best
), listed AS (
SELECT p.pref_code, p.home_care_area, p.secondary_area, p.municipality_code, p.municipality_name,
       CASE p.rank WHEN 1 THEN '1' WHEN 2 THEN '2a' WHEN 3 THEN '2b' ELSE '3' END AS rule_step,
       CASE p.rank WHEN 1 THEN '市町村内の在宅療養支援病院'
                   WHEN 2 THEN '市町村内の機能強化型在宅療養支援診療所'
                   WHEN 3 THEN '市町村内の在宅療養支援診療所（従来型）'
                   WHEN 4 THEN '同じ二次医療圏の他市町村の在宅療養支援病院'
                   WHEN 5 THEN '同じ二次医療圏の他市町村の機能強化型在宅療養支援診療所'
                   ELSE '同じ二次医療圏の他市町村の在宅療養支援診療所（従来型）' END AS rule,
       p.inst_code, p.name, p.inst_municipality_code, m.name AS inst_municipality_name, p.shien_symbol,
       p.inst_code IN (SELECT inst_code FROM annex_institutions) AS reported
FROM picked p LEFT JOIN municipalities m ON m.code = p.inst_municipality_code
UNION ALL
-- a municipality with no candidate at all in its 二次医療圏: listed so that the gap is visible
SELECT a.pref_code, a.home_care_area, a.secondary_area, a.municipality_code, a.municipality_name, '-',
       '候補なし（二次医療圏内に在宅療養支援病院・診療所がない）', NULL, NULL, NULL, NULL, NULL, false
FROM areas a
WHERE a.municipality_code NOT IN (SELECT municipality_code FROM own)
  AND a.municipality_code NOT IN (SELECT municipality_code FROM neighbour)
)
SELECT l.* FROM listed l
LEFT JOIN (SELECT DISTINCT pref_code, home_care_area, area_order FROM areas) o
       ON o.pref_code = l.pref_code AND o.home_care_area = l.home_care_area
-- 圏域 in the order of areas.csv, then municipality, step, institution
ORDER BY l.pref_code, o.area_order, l.municipality_code, l.rule_step, l.inst_code;
COMMENT ON TABLE candidates IS '選定候補：市町村ごとに、選定の考え方（支援病→機能強化型支援診→支援診→同じ二次医療圏の他市町村）で候補となる医療機関';
COMMENT ON COLUMN candidates.pref_code IS '都道府県コード';
COMMENT ON COLUMN candidates.home_care_area IS '在宅医療圏';
COMMENT ON COLUMN candidates.secondary_area IS '二次医療圏';
COMMENT ON COLUMN candidates.municipality_code IS '候補を求める市町村の団体コード';
COMMENT ON COLUMN candidates.municipality_name IS '候補を求める市町村';
COMMENT ON COLUMN candidates.rule_step IS '選んだ段階（1＝支援病、2a＝機能強化型支援診、2b＝従来型支援診、3＝同じ二次医療圏の他市町村、-＝候補なし）';
COMMENT ON COLUMN candidates.rule IS '選んだ理由（日本語）';
COMMENT ON COLUMN candidates.inst_code IS '候補の医療機関コード';
COMMENT ON COLUMN candidates.name IS '候補の医療機関名称';
COMMENT ON COLUMN candidates.inst_municipality_code IS '候補の所在市町村の団体コード';
COMMENT ON COLUMN candidates.inst_municipality_name IS '候補の所在市町村';
COMMENT ON COLUMN candidates.shien_symbol IS '候補の受理記号（支援病・支援診）';
COMMENT ON COLUMN candidates.reported IS '医師会から積極的役割を担う医療機関として報告されているか';
