-- The institutions the plan names: every institution a 医師会 reported (rows that passed the checks), with the
-- 支援病/支援診 type from the 厚生局 list (not the reported one), grouped by 在宅医療圏 then municipality.
CREATE TABLE annex_institutions AS
SELECT r.pref_code, coalesce(r.home_care_area, '（圏域未設定）') AS home_care_area, r.municipality_code,
       m.name AS municipality_name, r.inst_code, r.name, r.address,
       r.shien_symbol,
       CASE WHEN r.shien_kind IS NULL THEN NULL
            ELSE r.shien_kind || CASE substr(r.shien_type, 1, 1) WHEN '1' THEN '（機能強化型・単独型）'
                                                          WHEN '2' THEN '（機能強化型・連携型）'
                                                          ELSE '（従来型）' END END AS shien_label,
       r.kouhou_byoin,
       CASE WHEN r.shien_kind = '支援病' OR f.kind = 'hospital' OR coalesce(f.beds, 0) > 0 OR r.name LIKE '%病院%'
            THEN true WHEN f.facility_id IS NOT NULL THEN false END AS inpatient,
       r.torikumi_1, r.torikumi_2, r.torikumi_3, r.torikumi_4, r.torikumi_5, r.torikumi_6,
       r.senders, array_to_string(r.senders, '・') AS senders_text, r.report_count, r.sources,
       regexp_extract(r.sources[1], '^[^#]+') AS source_file
FROM reported_institutions r
LEFT JOIN municipalities m ON m.code = r.municipality_code
LEFT JOIN facility_links l ON l.inst_code = r.inst_code
LEFT JOIN facilities f ON f.facility_id = l.facility_id
LEFT JOIN (SELECT DISTINCT pref_code, home_care_area, area_order FROM areas) o
       ON o.pref_code = r.pref_code AND o.home_care_area = r.home_care_area
-- 圏域 in the order of areas.csv (as coverage and the plan list them; unplaced last); 支援病 before 支援診
ORDER BY r.pref_code, o.area_order NULLS LAST, r.municipality_code,
         CASE r.shien_kind WHEN '支援病' THEN 1 WHEN '支援診' THEN 2 ELSE 3 END, r.shien_type, r.inst_code;
COMMENT ON TABLE annex_institutions IS '別表：在宅医療において積極的役割を担う医療機関（医療機関ごとに1行、圏域・市町村順）';
COMMENT ON COLUMN annex_institutions.pref_code IS '都道府県コード';
COMMENT ON COLUMN annex_institutions.home_care_area IS '在宅医療圏';
COMMENT ON COLUMN annex_institutions.municipality_code IS '所在市町村の団体コード';
COMMENT ON COLUMN annex_institutions.municipality_name IS '所在市町村';
COMMENT ON COLUMN annex_institutions.inst_code IS '医療機関コード（10桁）';
COMMENT ON COLUMN annex_institutions.name IS '医療機関名称（厚生局の名簿の表記）';
COMMENT ON COLUMN annex_institutions.address IS '所在地（厚生局の名簿の表記）';
COMMENT ON COLUMN annex_institutions.shien_symbol IS '支援病・支援診の受理記号（厚生局の名簿による。例：支援診2ア）';
COMMENT ON COLUMN annex_institutions.shien_label IS '在宅療養支援病院・診療所の種別（例：支援診（機能強化型・連携型））。届出がなければ空';
COMMENT ON COLUMN annex_institutions.kouhou_byoin IS '在宅療養後方支援病院（在後病）の届出あり';
COMMENT ON COLUMN annex_institutions.inpatient IS '入院機能あり（病院、または病床のある診療所。医療情報ネットと紐付かない診療所は不明＝空）';
COMMENT ON COLUMN annex_institutions.torikumi_1 IS '取組①：夜間・医師不在時・急変時等の診療の支援';
COMMENT ON COLUMN annex_institutions.torikumi_2 IS '取組②：在宅療養移行患者に必要なサービス確保への働きかけ';
COMMENT ON COLUMN annex_institutions.torikumi_3 IS '取組③：地域医療研修での在宅医療の現場研修の機会確保';
COMMENT ON COLUMN annex_institutions.torikumi_4 IS '取組④：災害時等の医療提供計画の策定と他機関の計画策定支援';
COMMENT ON COLUMN annex_institutions.torikumi_5 IS '取組⑤：地域包括支援センター等と協働したサービスの紹介';
COMMENT ON COLUMN annex_institutions.torikumi_6 IS '取組⑥：入院機能を有する医療機関での急変時の受入れ';
COMMENT ON COLUMN annex_institutions.senders IS '報告した郡市医師会';
COMMENT ON COLUMN annex_institutions.senders_text IS '報告した郡市医師会（「・」区切り）';
COMMENT ON COLUMN annex_institutions.report_count IS '報告された回数';
COMMENT ON COLUMN annex_institutions.sources IS '報告の出所（ファイル#シート!行）';
COMMENT ON COLUMN annex_institutions.source_file IS '最初の報告のファイル（raw からの相対パス）';
