CREATE TABLE runs AS
SELECT run_id, started_at, finished_at, parameters::JSON AS parameters, outcome, error, inputs
FROM stg_runs
ORDER BY started_at;
COMMENT ON TABLE runs IS '実行の履歴（成功・失敗とも。out/runs.jsonl と、このファイルを作った実行）：実行ID、開始・終了時刻、パラメータ、入力ファイルとSHA-256・行数、結果。このファイルを作った後の実行のうち、作り直さなかったもの（unchanged）と失敗したものはファイルを書き換えないため、ここには無く out/runs.jsonl にだけある（次に作り直したときに入る）';
COMMENT ON COLUMN runs.run_id IS '実行ID';
COMMENT ON COLUMN runs.started_at IS '開始時刻（UTC）';
COMMENT ON COLUMN runs.finished_at IS '終了時刻（UTC。今回の実行は出力を書き出す直前の時刻）';
COMMENT ON COLUMN runs.parameters IS '実行時のパラメータ（入力・出力フォルダ、都道府県など。JSON）';
COMMENT ON COLUMN runs.outcome IS '結果（success＝成功、unchanged＝入力もプログラムも前回と同じため作り直さなかった、failed＝失敗：前回の出力をそのまま残した）';
COMMENT ON COLUMN runs.error IS '失敗した理由';
COMMENT ON COLUMN runs.inputs IS '入力ファイルごとの SHA-256 と行数（入力・採用・却下）';
