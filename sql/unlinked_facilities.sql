CREATE TABLE unlinked_facilities AS
SELECT f.facility_id, f.kind, f.name, f.address, f.municipality_code,
       CASE WHEN EXISTS (SELECT 1 FROM link_review r WHERE r.facility_id = f.facility_id) THEN '要確認（link_review 参照）'
            -- a dental clinic is matched only against dental (点数表 3) institutions (annex.pipeline.matchable)
            WHEN f.kind = 'dental' AND NOT EXISTS (SELECT 1 FROM institutions i
                                                   WHERE i.pref_code = f.pref_code AND i.tensuhyo = '3')
              THEN '歯科診療所（歯科の医療機関が名簿・コード一覧にないため照合の対象外）'
            ELSE '厚生局の名簿・コード一覧に該当なし（同一市区町村内に候補なし）' END AS reason
FROM facilities f
WHERE NOT EXISTS (SELECT 1 FROM facility_links l WHERE l.facility_id = f.facility_id)
ORDER BY f.facility_id;
COMMENT ON TABLE unlinked_facilities IS '医療機関コードと紐付かなかった医療情報ネットの施設';
COMMENT ON COLUMN unlinked_facilities.facility_id IS '医療情報ネットのID';
COMMENT ON COLUMN unlinked_facilities.kind IS '種別';
COMMENT ON COLUMN unlinked_facilities.name IS '名称';
COMMENT ON COLUMN unlinked_facilities.address IS '所在地';
COMMENT ON COLUMN unlinked_facilities.municipality_code IS '所在市区町村の団体コード';
COMMENT ON COLUMN unlinked_facilities.reason IS '紐付かなかった理由';
