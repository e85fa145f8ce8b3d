CREATE TABLE report_files AS
SELECT r.source_file, r.kind, r.pref_code, r.sender, r.sender_text, r.sender_source, r.layout, r.sheets,
       s.status, s.sha256, s.rows_in, s.accepted, s.rejected, s.skipped_blank
FROM stg_report_files r
LEFT JOIN source_files s USING (source_file)
ORDER BY r.pref_code, r.kind, r.source_file;
COMMENT ON TABLE report_files IS '受け取った報告ファイル（医師会・市町村）ごとの提出元・様式・行数の内訳。担当者などの個人情報は含まない';
COMMENT ON COLUMN report_files.source_file IS 'ファイル（raw からの相対パス）';
COMMENT ON COLUMN report_files.kind IS '報告の種類（ishikai＝医師会：積極的役割を担う医療機関、shichoson＝市町村：連携を担う拠点）';
COMMENT ON COLUMN report_files.pref_code IS '都道府県コード';
COMMENT ON COLUMN report_files.sender IS '提出元（医師会名、または市町村の団体コード）。判別できなければ空';
COMMENT ON COLUMN report_files.sender_text IS '調査票に書かれた提出元の表記';
COMMENT ON COLUMN report_files.sender_source IS '提出元の判断根拠（block＝調査票の提出元欄、file_name＝ファイル名、unknown＝不明）';
COMMENT ON COLUMN report_files.layout IS '様式（template＝県の調査票、other＝独自様式、unrecognised＝表を認識できず）';
COMMENT ON COLUMN report_files.sheets IS '読み込んだシート（CSVは空文字）';
COMMENT ON COLUMN report_files.status IS 'read＝読込済、failed＝読めなかった';
COMMENT ON COLUMN report_files.sha256 IS 'ファイル内容のSHA-256';
COMMENT ON COLUMN report_files.rows_in IS 'データ行数（見出し・タイトル・表の後の空白行を除く）';
COMMENT ON COLUMN report_files.accepted IS '採用した行数';
COMMENT ON COLUMN report_files.rejected IS 'エラーで却下した行数';
COMMENT ON COLUMN report_files.skipped_blank IS '空行・注記行・○のない記入済み行として読み飛ばした行数';
