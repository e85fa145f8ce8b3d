CREATE TABLE facility_links AS
SELECT inst_code, facility_id, method, score, name_score, address_score, why, pref_code, municipality_code
FROM stg_facility_links
ORDER BY inst_code;
COMMENT ON TABLE facility_links IS '厚生局の医療機関コードと医療情報ネットIDの対応（同一市区町村内で名称・所在地を照合。1対1）';
COMMENT ON COLUMN facility_links.inst_code IS '医療機関コード（10桁）';
COMMENT ON COLUMN facility_links.facility_id IS '医療情報ネットのID';
COMMENT ON COLUMN facility_links.method IS '決め手：override＝手動指定、name_address＝名称と所在地、name＝名称（市区町村内で唯一）、address＝所在地（名称変更の可能性）、address_name＝所在地と名称の類似';
COMMENT ON COLUMN facility_links.score IS '総合一致度（0〜1、名称0.6・所在地0.4の重み）';
COMMENT ON COLUMN facility_links.name_score IS '名称の一致度（法人格・空白・異体字などを正規化した後）';
COMMENT ON COLUMN facility_links.address_score IS '所在地（町名以下）の一致度';
COMMENT ON COLUMN facility_links.why IS '判定理由（日本語）';
COMMENT ON COLUMN facility_links.pref_code IS '都道府県コード';
COMMENT ON COLUMN facility_links.municipality_code IS '照合した市区町村の団体コード';
