CREATE TABLE findings AS
SELECT source_file, sheet, "row", "column", value, rule, severity, message
FROM stg_findings
ORDER BY source_file, sheet NULLS FIRST, "row" NULLS FIRST, "column";
COMMENT ON TABLE findings IS '検証結果（error＝行を却下、warning＝取り込んだうえで注意）';
COMMENT ON COLUMN findings.source_file IS 'ファイル（raw からの相対パス）';
COMMENT ON COLUMN findings.sheet IS 'シート名（CSVは空）';
COMMENT ON COLUMN findings."row" IS '利用者が見る行番号（Excelの行番号・CSVの行番号。ファイル全体の指摘は空）';
COMMENT ON COLUMN findings."column" IS '列名';
COMMENT ON COLUMN findings.value IS '問題の値';
COMMENT ON COLUMN findings.rule IS '規則の識別子';
COMMENT ON COLUMN findings.severity IS '重大度（error／warning）';
COMMENT ON COLUMN findings.message IS '内容と直し方（日本語）';
CREATE VIEW rejected_rows AS
SELECT source_file, sheet, "row", "column", value, rule, message FROM findings WHERE severity = 'error';
COMMENT ON VIEW rejected_rows IS '却下した行・ファイル（findings のうち error）';
COMMENT ON COLUMN rejected_rows.source_file IS 'ファイル（raw からの相対パス）';
COMMENT ON COLUMN rejected_rows.sheet IS 'シート名（CSVは空）';
COMMENT ON COLUMN rejected_rows."row" IS '却下した行の、利用者が見る行番号（ファイル全体を読めなかったときの指摘は空）';
COMMENT ON COLUMN rejected_rows."column" IS '列名';
COMMENT ON COLUMN rejected_rows.value IS '問題の値';
COMMENT ON COLUMN rejected_rows.rule IS '規則の識別子';
COMMENT ON COLUMN rejected_rows.message IS '内容と直し方（日本語）';
