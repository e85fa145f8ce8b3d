-- What this build finds against the file of the build before it (empty on the first run: there is no baseline).
-- A run with nothing new rebuilds nothing, this table included: it keeps what the last build found, so a report
-- changed in the evening still shows as a change after the nightly no-op run (both run ids are in every row).
-- 取組 flags compared as their marks (①②④), which is also how before/after are shown.
CREATE OR REPLACE TEMP MACRO torikumi_marks(t1, t2, t3, t4, t5, t6) AS
    concat_ws('', CASE WHEN t1 THEN '①' END, CASE WHEN t2 THEN '②' END, CASE WHEN t3 THEN '③' END,
                  CASE WHEN t4 THEN '④' END, CASE WHEN t5 THEN '⑤' END, CASE WHEN t6 THEN '⑥' END);
CREATE TABLE changes AS
WITH ids AS (
    SELECT (SELECT run_id FROM prev_runs WHERE outcome = 'success' ORDER BY started_at DESC LIMIT 1) AS previous_run_id,
           (SELECT run_id FROM stg_runs ORDER BY started_at DESC LIMIT 1) AS run_id,
           (SELECT count(*) FROM prev_runs) > 0 AS has_baseline
), cur_i AS (
    SELECT *, torikumi_marks(torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, torikumi_6) AS tori
    FROM annex_institutions
), prev_i AS (
    SELECT *, torikumi_marks(torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, torikumi_6) AS tori
    FROM prev_annex_institutions
), cur_h AS (
    SELECT *, torikumi_marks(torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, NULL) AS tori
    FROM annex_hubs
), prev_h AS (
    SELECT *, torikumi_marks(torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, NULL) AS tori
    FROM prev_annex_hubs
), diff AS (
    SELECT coalesce(c.pref_code, p.pref_code) AS pref_code, 'institution' AS entity,
           coalesce(c.inst_code, p.inst_code) AS key, coalesce(c.name, p.name) AS name,
           CASE WHEN p.inst_code IS NULL THEN 'added' WHEN c.inst_code IS NULL THEN 'removed' END AS change,
           NULL AS before, NULL AS after
    FROM cur_i c FULL JOIN prev_i p ON c.inst_code = p.inst_code
    WHERE c.inst_code IS NULL OR p.inst_code IS NULL
    UNION ALL
    SELECT c.pref_code, 'institution', c.inst_code, c.name, 'status_changed',
           coalesce(p.shien_symbol, '届出なし'), coalesce(c.shien_symbol, '届出なし')
    FROM cur_i c JOIN prev_i p USING (inst_code)
    WHERE c.shien_symbol IS DISTINCT FROM p.shien_symbol
    UNION ALL
    SELECT c.pref_code, 'institution', c.inst_code, c.name, 'kouhou_changed',
           CASE WHEN p.kouhou_byoin THEN '在後病' ELSE 'なし' END, CASE WHEN c.kouhou_byoin THEN '在後病' ELSE 'なし' END
    FROM cur_i c JOIN prev_i p USING (inst_code)
    WHERE c.kouhou_byoin IS DISTINCT FROM p.kouhou_byoin
    UNION ALL
    SELECT c.pref_code, 'institution', c.inst_code, c.name, 'torikumi_changed', p.tori, c.tori
    FROM cur_i c JOIN prev_i p USING (inst_code)
    WHERE c.tori <> p.tori
    UNION ALL
    SELECT coalesce(c.pref_code, p.pref_code), 'hub', coalesce(c.hub_id, p.hub_id), coalesce(c.name, p.name),
           CASE WHEN p.hub_id IS NULL THEN 'added' ELSE 'removed' END, NULL, NULL
    FROM cur_h c FULL JOIN prev_h p ON c.hub_id = p.hub_id
    WHERE c.hub_id IS NULL OR p.hub_id IS NULL
    UNION ALL
    SELECT c.pref_code, 'hub', c.hub_id, c.name, 'area_changed', p.area_names, c.area_names
    FROM cur_h c JOIN prev_h p USING (hub_id)
    WHERE c.area_names IS DISTINCT FROM p.area_names
    UNION ALL
    SELECT c.pref_code, 'hub', c.hub_id, c.name, 'operator_changed', p.operator, c.operator
    FROM cur_h c JOIN prev_h p USING (hub_id)
    WHERE c.operator IS DISTINCT FROM p.operator
    UNION ALL
    SELECT c.pref_code, 'hub', c.hub_id, c.name, 'torikumi_changed', p.tori, c.tori
    FROM cur_h c JOIN prev_h p USING (hub_id)
    WHERE c.tori <> p.tori
)
SELECT d.pref_code, d.entity, d.change, d.key, d.name, d.before, d.after, ids.previous_run_id, ids.run_id
FROM diff d, ids
WHERE ids.has_baseline
ORDER BY d.pref_code, d.entity DESC, d.change, d.key;
COMMENT ON TABLE changes IS '最後に作り直した実行（run_id）が、その前に作り直した実行（previous_run_id）の結果と比べて見つけた変更：積極的役割を担う医療機関・連携を担う拠点の追加・削除・届出状況などの変化。入力が前回と同じで作り直さなかった実行（runs.jsonl の unchanged）はこのファイルを書き換えないので、この表は空にならず最後に見つけた変更のまま。報告だけが変わった実行では、その都道府県の行だけが新しくなる';
COMMENT ON COLUMN changes.pref_code IS '都道府県コード';
COMMENT ON COLUMN changes.entity IS '対象（institution＝積極的役割を担う医療機関、hub＝連携を担う拠点）';
COMMENT ON COLUMN changes.change IS '変更の種類（added＝追加、removed＝削除、status_changed＝支援病・支援診の届出の変化、kouhou_changed＝在後病の変化、torikumi_changed＝取組の変化、area_changed＝事業区域の変化、operator_changed＝運営主体の変化）';
COMMENT ON COLUMN changes.key IS '医療機関コード、または拠点ID';
COMMENT ON COLUMN changes.name IS '名称';
COMMENT ON COLUMN changes.before IS '変更前の値（追加・削除は空）';
COMMENT ON COLUMN changes.after IS '変更後の値（追加・削除は空）';
COMMENT ON COLUMN changes.previous_run_id IS '比べた相手：その前に作り直した（成功した）実行の実行ID';
COMMENT ON COLUMN changes.run_id IS 'この変更を見つけた（作り直した）実行の実行ID';
