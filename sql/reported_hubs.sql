-- One entry per hub (same normalised name in the prefecture) however many 市町村 reported it:
-- 事業区域 and 取組 are the union of the reports; the other fields come from the first report.
CREATE TABLE reported_hubs AS
WITH merged AS (
    SELECT pref_code, hub_id,
           first(name ORDER BY source_file, source_row) AS name,
           first(hub_kind ORDER BY source_file, source_row) FILTER (WHERE hub_kind IS NOT NULL) AS hub_kind,
           list_sort(list_distinct(flatten(list(area_codes)))) AS area_codes,
           first(operator ORDER BY source_file, source_row) FILTER (WHERE operator IS NOT NULL) AS operator,
           first(operator_kind ORDER BY source_file, source_row) FILTER (WHERE operator_kind IS NOT NULL) AS operator_kind,
           min(start_date) AS start_date,
           first(start_text ORDER BY start_date NULLS LAST) AS start_text,
           bool_or(same_as_program) AS same_as_program, bool_or(same_as_institution) AS same_as_institution,
           bool_or(torikumi_1) AS torikumi_1, bool_or(torikumi_2) AS torikumi_2, bool_or(torikumi_3) AS torikumi_3,
           bool_or(torikumi_4) AS torikumi_4, bool_or(torikumi_5) AS torikumi_5,
           list(DISTINCT sender ORDER BY sender) FILTER (WHERE sender IS NOT NULL) AS senders,
           count(*) AS report_count,
           list(source_file || '#' || coalesce(source_sheet, '') || '!' || source_row ORDER BY source_file, source_row)
               AS sources
    FROM hub_reports
    GROUP BY pref_code, hub_id
)
SELECT m.*,
       (SELECT string_agg(mu.name, '・' ORDER BY mu.code) FROM municipalities mu
        WHERE list_contains(m.area_codes, mu.code)) AS area_names
FROM merged m
ORDER BY m.pref_code, m.area_codes[1], m.name;
COMMENT ON TABLE reported_hubs IS '市町村から報告された「在宅医療に必要な連携を担う拠点」（拠点ごとに1行、複数市町村からの同じ拠点の報告はまとめる）';
COMMENT ON COLUMN reported_hubs.pref_code IS '都道府県コード';
COMMENT ON COLUMN reported_hubs.hub_id IS '拠点ID（都道府県コード＋正規化した名称のハッシュ）';
COMMENT ON COLUMN reported_hubs.name IS '拠点の名称（最初の報告の表記）';
COMMENT ON COLUMN reported_hubs.hub_kind IS '拠点の種別';
COMMENT ON COLUMN reported_hubs.area_codes IS '事業区域の市町村の団体コード（すべての報告の和）';
COMMENT ON COLUMN reported_hubs.operator IS '運営主体';
COMMENT ON COLUMN reported_hubs.operator_kind IS '運営主体の種別（指針の区分）';
COMMENT ON COLUMN reported_hubs.start_date IS '開始時期（報告のうち最も早いもの）';
COMMENT ON COLUMN reported_hubs.start_text IS '開始時期（報告のまま）';
COMMENT ON COLUMN reported_hubs.same_as_program IS '在宅医療・介護連携推進事業の実施主体と同一（いずれかの報告で○）';
COMMENT ON COLUMN reported_hubs.same_as_institution IS '積極的役割を担う医療機関と同一（いずれかの報告で○）';
COMMENT ON COLUMN reported_hubs.torikumi_1 IS '取組①：関係者の会議の定期開催、提供状況の把握・課題抽出・対応策の検討';
COMMENT ON COLUMN reported_hubs.torikumi_2 IS '取組②：地域資源の把握と、退院から看取りまでの支援のための関係機関の調整';
COMMENT ON COLUMN reported_hubs.torikumi_3 IS '取組③：関係機関の連携による急変時対応・24時間体制の構築、情報共有の促進';
COMMENT ON COLUMN reported_hubs.torikumi_4 IS '取組④：関係者への研修・情報共有';
COMMENT ON COLUMN reported_hubs.torikumi_5 IS '取組⑤：地域住民への普及啓発';
COMMENT ON COLUMN reported_hubs.senders IS '報告した市町村の団体コード';
COMMENT ON COLUMN reported_hubs.report_count IS '報告された回数（2以上は複数の市町村・行からの報告）';
COMMENT ON COLUMN reported_hubs.sources IS '報告の出所（ファイル#シート!行）';
COMMENT ON COLUMN reported_hubs.area_names IS '事業区域（読みやすい表記、例: 紫波町・矢巾町）';
