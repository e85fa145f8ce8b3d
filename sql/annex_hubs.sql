-- The hubs the plan names. 開始年度 in 西暦 and 和暦 (年度: April to March).
CREATE TABLE annex_hubs AS
WITH h AS (
    SELECT *, CASE WHEN start_date IS NULL THEN NULL
                   WHEN month(start_date) >= 4 THEN year(start_date) ELSE year(start_date) - 1 END AS start_fy
    FROM reported_hubs
)
SELECT h.pref_code, h.hub_id, h.name, h.hub_kind, h.area_codes, h.area_names,
       (SELECT list(a.home_care_area ORDER BY a.area_order) FROM (SELECT DISTINCT home_care_area, area_order FROM areas a
        WHERE list_contains(h.area_codes, a.municipality_code)) a) AS home_care_areas,
       h.operator, h.operator_kind, h.start_date, h.start_fy,
       CASE WHEN h.start_fy IS NULL THEN NULL
            WHEN h.start_fy >= 2019 THEN '令和' || CASE WHEN h.start_fy = 2019 THEN '元' ELSE (h.start_fy - 2018)::VARCHAR END || '年度'
            WHEN h.start_fy >= 1989 THEN '平成' || CASE WHEN h.start_fy = 1989 THEN '元' ELSE (h.start_fy - 1988)::VARCHAR END || '年度'
            ELSE '昭和' || (h.start_fy - 1925)::VARCHAR || '年度' END AS start_fy_wareki,
       h.start_text, h.same_as_program, h.same_as_institution,
       h.torikumi_1, h.torikumi_2, h.torikumi_3, h.torikumi_4, h.torikumi_5,
       h.senders, (SELECT string_agg(m.name, '・' ORDER BY m.code) FROM municipalities m
                   WHERE list_contains(h.senders, m.code)) AS senders_text,
       h.report_count, h.sources
FROM h
-- by the first 圏域 (areas.csv order) the 事業区域 touches
ORDER BY h.pref_code, (SELECT min(a.area_order) FROM areas a WHERE list_contains(h.area_codes, a.municipality_code)),
         h.area_codes[1], h.name;
COMMENT ON TABLE annex_hubs IS '別表：在宅医療に必要な連携を担う拠点（拠点ごとに1行）';
COMMENT ON COLUMN annex_hubs.pref_code IS '都道府県コード';
COMMENT ON COLUMN annex_hubs.hub_id IS '拠点ID（都道府県コード＋正規化した名称のハッシュ）';
COMMENT ON COLUMN annex_hubs.name IS '拠点の名称';
COMMENT ON COLUMN annex_hubs.hub_kind IS '拠点の種別';
COMMENT ON COLUMN annex_hubs.area_codes IS '事業区域の市町村の団体コード';
COMMENT ON COLUMN annex_hubs.area_names IS '事業区域（例：紫波町・矢巾町）';
COMMENT ON COLUMN annex_hubs.home_care_areas IS '事業区域が含まれる在宅医療圏（areas.csv の順）';
COMMENT ON COLUMN annex_hubs.operator IS '運営主体';
COMMENT ON COLUMN annex_hubs.operator_kind IS '運営主体の種別（指針の区分）';
COMMENT ON COLUMN annex_hubs.start_date IS '開始時期（日付。年度だけの報告は4月1日）';
COMMENT ON COLUMN annex_hubs.start_fy IS '開始年度（西暦）';
COMMENT ON COLUMN annex_hubs.start_fy_wareki IS '開始年度（和暦、例：平成28年度）';
COMMENT ON COLUMN annex_hubs.start_text IS '開始時期（報告のまま）';
COMMENT ON COLUMN annex_hubs.same_as_program IS '在宅医療・介護連携推進事業の実施主体と同一';
COMMENT ON COLUMN annex_hubs.same_as_institution IS '積極的役割を担う医療機関と同一';
COMMENT ON COLUMN annex_hubs.torikumi_1 IS '取組①：関係者の会議の定期開催、提供状況の把握・課題抽出・対応策の検討';
COMMENT ON COLUMN annex_hubs.torikumi_2 IS '取組②：地域資源の把握と、退院から看取りまでの支援のための関係機関の調整';
COMMENT ON COLUMN annex_hubs.torikumi_3 IS '取組③：関係機関の連携による急変時対応・24時間体制の構築、情報共有の促進';
COMMENT ON COLUMN annex_hubs.torikumi_4 IS '取組④：関係者への研修・情報共有';
COMMENT ON COLUMN annex_hubs.torikumi_5 IS '取組⑤：地域住民への普及啓発';
COMMENT ON COLUMN annex_hubs.senders IS '報告した市町村の団体コード';
COMMENT ON COLUMN annex_hubs.senders_text IS '報告した市町村（「・」区切り）';
COMMENT ON COLUMN annex_hubs.report_count IS '報告された回数';
COMMENT ON COLUMN annex_hubs.sources IS '報告の出所（ファイル#シート!行）';
