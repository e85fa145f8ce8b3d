-- One entry per institution however many times it was reported: 取組 ○ if any report has it.
CREATE TABLE reported_institutions AS
SELECT r.pref_code, r.inst_code, h.name, i.address, h.municipality_code, a.home_care_area, a.ishikai AS area_ishikai,
       h.shien_symbol, h.shien_kind, h.shien_type, h.kouhou_byoin, h.zaiisoukan,
       bool_or(r.torikumi_1) AS torikumi_1, bool_or(r.torikumi_2) AS torikumi_2, bool_or(r.torikumi_3) AS torikumi_3,
       bool_or(r.torikumi_4) AS torikumi_4, bool_or(r.torikumi_5) AS torikumi_5, bool_or(r.torikumi_6) AS torikumi_6,
       first(r.reported_type ORDER BY r.source_file, r.source_row) FILTER (WHERE r.reported_type IS NOT NULL)
           AS reported_type,
       list(DISTINCT r.sender ORDER BY r.sender) FILTER (WHERE r.sender IS NOT NULL) AS senders,
       count(*) AS report_count,
       list(r.source_file || '#' || coalesce(r.source_sheet, '') || '!' || r.source_row
            ORDER BY r.source_file, r.source_row) AS sources
FROM institution_reports r
JOIN home_care_status h USING (inst_code)
JOIN institutions i USING (inst_code)
LEFT JOIN areas a ON a.municipality_code = h.municipality_code
GROUP BY ALL
ORDER BY r.pref_code, h.municipality_code, r.inst_code;
COMMENT ON TABLE reported_institutions IS '医師会から報告された「在宅医療において積極的役割を担う医療機関」（医療機関ごとに1行、重複報告はまとめる）';
COMMENT ON COLUMN reported_institutions.pref_code IS '都道府県コード';
COMMENT ON COLUMN reported_institutions.inst_code IS '医療機関コード（10桁）';
COMMENT ON COLUMN reported_institutions.name IS '医療機関名称（厚生局の名簿の表記）';
COMMENT ON COLUMN reported_institutions.address IS '所在地（厚生局の名簿の表記）';
COMMENT ON COLUMN reported_institutions.municipality_code IS '所在市町村の団体コード';
COMMENT ON COLUMN reported_institutions.home_care_area IS '在宅医療圏（areas.csv による）';
COMMENT ON COLUMN reported_institutions.area_ishikai IS '所在市町村を受け持つ郡市医師会（areas.csv による）';
COMMENT ON COLUMN reported_institutions.shien_symbol IS '名簿の支援病・支援診の受理記号（別表にはこちらを載せる）';
COMMENT ON COLUMN reported_institutions.shien_kind IS '支援病・支援診の別（名簿による）';
COMMENT ON COLUMN reported_institutions.shien_type IS '類型（1・2ア・2イ・2・3、名簿による）';
COMMENT ON COLUMN reported_institutions.kouhou_byoin IS '在宅療養後方支援病院（在後病）の届出あり';
COMMENT ON COLUMN reported_institutions.zaiisoukan IS '在宅時医学総合管理料（在医総管）の届出あり';
COMMENT ON COLUMN reported_institutions.torikumi_1 IS '取組①：夜間・医師不在時・急変時等の診療の支援（いずれかの報告で○）';
COMMENT ON COLUMN reported_institutions.torikumi_2 IS '取組②：在宅療養移行患者に必要なサービス確保への働きかけ';
COMMENT ON COLUMN reported_institutions.torikumi_3 IS '取組③：地域医療研修での在宅医療の現場研修の機会確保';
COMMENT ON COLUMN reported_institutions.torikumi_4 IS '取組④：災害時等の医療提供計画の策定と他機関の計画策定支援';
COMMENT ON COLUMN reported_institutions.torikumi_5 IS '取組⑤：地域包括支援センター等と協働したサービスの紹介';
COMMENT ON COLUMN reported_institutions.torikumi_6 IS '取組⑥：入院機能を有する医療機関での急変時の受入れ';
COMMENT ON COLUMN reported_institutions.reported_type IS '報告された種別（最初の報告のもの。名簿と違えば findings に status_differs）';
COMMENT ON COLUMN reported_institutions.senders IS '報告した郡市医師会';
COMMENT ON COLUMN reported_institutions.report_count IS '報告された回数（2以上は重複報告）';
COMMENT ON COLUMN reported_institutions.sources IS '報告の出所（ファイル#シート!行）';
