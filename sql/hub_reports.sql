CREATE TABLE hub_reports AS
SELECT pref_code, hub_id, name, hub_kind, area_codes, area_text, operator, operator_kind, start_date, start_text,
       same_as_program, same_as_institution, torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, note,
       sender, source_file, source_sheet, source_row, is_first
FROM stg_hub_reports
ORDER BY pref_code, source_file, source_sheet, source_row;
COMMENT ON TABLE hub_reports IS '市町村の報告のうち採用した行（報告1行につき1行。同じ拠点の重複報告も残す）';
COMMENT ON COLUMN hub_reports.pref_code IS '都道府県コード';
COMMENT ON COLUMN hub_reports.hub_id IS '拠点ID（都道府県コード＋正規化した名称のハッシュ。同じ名称は同じ拠点）';
COMMENT ON COLUMN hub_reports.name IS '拠点の名称（報告のまま）';
COMMENT ON COLUMN hub_reports.hub_kind IS '拠点の種別（病院・診療所・訪問看護事業所・地域医師会等関係団体・保健所・市町村・地域包括支援センター）';
COMMENT ON COLUMN hub_reports.area_codes IS '事業区域の市町村の団体コード';
COMMENT ON COLUMN hub_reports.area_text IS '事業区域（報告のまま）';
COMMENT ON COLUMN hub_reports.operator IS '運営主体（報告のまま）';
COMMENT ON COLUMN hub_reports.operator_kind IS '運営主体の種別（指針の区分。空欄なら拠点の種別から補った値）';
COMMENT ON COLUMN hub_reports.start_date IS '開始時期（年度だけなら4月1日、月だけなら1日）';
COMMENT ON COLUMN hub_reports.start_text IS '開始時期（報告のまま。例: H28年度～）';
COMMENT ON COLUMN hub_reports.same_as_program IS '在宅医療・介護連携推進事業の実施主体と同一';
COMMENT ON COLUMN hub_reports.same_as_institution IS '積極的役割を担う医療機関と同一';
COMMENT ON COLUMN hub_reports.torikumi_1 IS '取組①：関係者の会議の定期開催、提供状況の把握・課題抽出・対応策の検討';
COMMENT ON COLUMN hub_reports.torikumi_2 IS '取組②：地域資源の把握と、退院から看取りまでの支援のための関係機関の調整';
COMMENT ON COLUMN hub_reports.torikumi_3 IS '取組③：関係機関の連携による急変時対応・24時間体制の構築、情報共有の促進';
COMMENT ON COLUMN hub_reports.torikumi_4 IS '取組④：関係者への研修・情報共有';
COMMENT ON COLUMN hub_reports.torikumi_5 IS '取組⑤：地域住民への普及啓発';
COMMENT ON COLUMN hub_reports.note IS '備考（報告のまま）';
COMMENT ON COLUMN hub_reports.sender IS '報告した市町村の団体コード（判別できなければ空）';
COMMENT ON COLUMN hub_reports.source_file IS '報告ファイル（raw からの相対パス）';
COMMENT ON COLUMN hub_reports.source_sheet IS 'シート名（CSVは空）';
COMMENT ON COLUMN hub_reports.source_row IS '提出者が見る行番号（Excelの行番号・CSVの行番号）';
COMMENT ON COLUMN hub_reports.is_first IS 'その拠点の最初の報告か（偽なら重複報告：findings に duplicate_report）';
