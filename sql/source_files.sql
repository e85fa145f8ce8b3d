CREATE TABLE source_files AS
SELECT kind, source_file, status, TRY_CAST(as_of AS DATE) AS as_of, sha256, rows_in, accepted, rejected,
       skipped_blank, out_of_scope
FROM stg_source_files
ORDER BY kind, source_file;
COMMENT ON TABLE source_files IS '今回読んだ入力ファイルと行数の内訳（入力行数＝採用＋却下＋空行等＋対象外の都道府県）';
COMMENT ON COLUMN source_files.kind IS '入力の種類（municipalities・facility_file・meibo・code_list・link_overrides）';
COMMENT ON COLUMN source_files.source_file IS 'ファイル（raw からの相対パス）';
COMMENT ON COLUMN source_files.status IS 'read＝読込済、failed＝読めなかった、superseded＝より新しい時点のファイルがあるため読まず';
COMMENT ON COLUMN source_files.as_of IS 'ファイルの時点';
COMMENT ON COLUMN source_files.sha256 IS 'ファイル内容のSHA-256';
COMMENT ON COLUMN source_files.rows_in IS 'データ行数（見出し・タイトル行を除く）';
COMMENT ON COLUMN source_files.accepted IS '採用した行数';
COMMENT ON COLUMN source_files.rejected IS 'エラーで却下した行数（rejected_rows に記録）';
COMMENT ON COLUMN source_files.skipped_blank IS '空行・注記行として読み飛ばした行数';
COMMENT ON COLUMN source_files.out_of_scope IS '今回の対象外の都道府県の行数';
