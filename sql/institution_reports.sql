CREATE TABLE institution_reports AS
SELECT pref_code, inst_code, reported_name, reported_code, reported_municipality, reported_type, sender,
       torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, torikumi_6, note,
       source_file, source_sheet, source_row, is_first
FROM stg_institution_reports
ORDER BY pref_code, source_file, source_sheet, source_row;
COMMENT ON TABLE institution_reports IS '医師会の報告のうち採用した行（報告1行につき1行。同じ医療機関の重複報告も残す）';
COMMENT ON COLUMN institution_reports.pref_code IS '都道府県コード';
COMMENT ON COLUMN institution_reports.inst_code IS '照合した医療機関コード（10桁、厚生局の名簿・コード一覧）';
COMMENT ON COLUMN institution_reports.reported_name IS '報告に書かれた医療機関名';
COMMENT ON COLUMN institution_reports.reported_code IS '報告に書かれた医療機関コード（7桁の医療機関番号は10桁に補完）';
COMMENT ON COLUMN institution_reports.reported_municipality IS '報告に書かれた所在市町村';
COMMENT ON COLUMN institution_reports.reported_type IS '報告された種別（支援病1〜3・支援診1〜3、支援病・支援診＝類型なし、なし＝届出なし）';
COMMENT ON COLUMN institution_reports.sender IS '報告した郡市医師会（判別できなければ空）';
COMMENT ON COLUMN institution_reports.torikumi_1 IS '取組①：夜間・医師不在時・急変時等の診療の支援';
COMMENT ON COLUMN institution_reports.torikumi_2 IS '取組②：在宅療養移行患者に必要な医療・介護・障害福祉サービス確保への働きかけ';
COMMENT ON COLUMN institution_reports.torikumi_3 IS '取組③：地域医療研修での在宅医療の現場研修の機会確保';
COMMENT ON COLUMN institution_reports.torikumi_4 IS '取組④：災害時等の医療提供計画の策定と他機関の計画策定支援';
COMMENT ON COLUMN institution_reports.torikumi_5 IS '取組⑤：地域包括支援センター等と協働したサービスの紹介';
COMMENT ON COLUMN institution_reports.torikumi_6 IS '取組⑥：入院機能を有する医療機関での急変時の受入れ';
COMMENT ON COLUMN institution_reports.note IS '備考（報告のまま）';
COMMENT ON COLUMN institution_reports.source_file IS '報告ファイル（raw からの相対パス）';
COMMENT ON COLUMN institution_reports.source_sheet IS 'シート名（CSVは空）';
COMMENT ON COLUMN institution_reports.source_row IS '提出者が見る行番号（Excelの行番号・CSVの行番号）';
COMMENT ON COLUMN institution_reports.is_first IS 'その医療機関の最初の報告か（偽なら重複報告：findings に duplicate_report）';
