CREATE TABLE unlinked_institutions AS
SELECT i.inst_code, i.name, i.address, i.municipality_code, i.in_meibo,
       CASE WHEN i.municipality_code IS NULL THEN '住所から市区町村を特定できない'
            WHEN EXISTS (SELECT 1 FROM link_review r WHERE r.inst_code = i.inst_code) THEN '要確認（link_review 参照）'
            WHEN i.tensuhyo <> '1' THEN '医科以外'
            ELSE '医療情報ネットに該当なし（同一市区町村内に候補なし）' END AS reason
FROM institutions i
WHERE NOT EXISTS (SELECT 1 FROM facility_links l WHERE l.inst_code = i.inst_code)
ORDER BY i.inst_code;
COMMENT ON TABLE unlinked_institutions IS '医療情報ネットのIDと紐付かなかった医療機関（厚生局側）';
COMMENT ON COLUMN unlinked_institutions.inst_code IS '医療機関コード';
COMMENT ON COLUMN unlinked_institutions.name IS '名称';
COMMENT ON COLUMN unlinked_institutions.address IS '所在地';
COMMENT ON COLUMN unlinked_institutions.municipality_code IS '所在市区町村の団体コード';
COMMENT ON COLUMN unlinked_institutions.in_meibo IS '届出受理医療機関名簿に載っているか';
COMMENT ON COLUMN unlinked_institutions.reason IS '紐付かなかった理由';
