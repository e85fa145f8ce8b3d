CREATE TABLE link_review AS
SELECT r.inst_code, i.name AS inst_name, i.address AS inst_address, r.facility_id, f.name AS facility_name,
       f.address AS facility_address, r.score, r.name_score, r.address_score, r.reason
FROM stg_link_review r
LEFT JOIN institutions i USING (inst_code)
LEFT JOIN facilities f USING (facility_id)
ORDER BY r.inst_code, r.score DESC, r.facility_id;
COMMENT ON TABLE link_review IS '自動では紐付けなかった候補（近い候補が複数ある、または一致度が基準未満）。確認のうえ紐付け指定ファイルで指示する';
COMMENT ON COLUMN link_review.inst_code IS '医療機関コード';
COMMENT ON COLUMN link_review.inst_name IS '厚生局の名称';
COMMENT ON COLUMN link_review.inst_address IS '厚生局の所在地';
COMMENT ON COLUMN link_review.facility_id IS '候補の医療情報ネットID';
COMMENT ON COLUMN link_review.facility_name IS '候補の名称';
COMMENT ON COLUMN link_review.facility_address IS '候補の所在地';
COMMENT ON COLUMN link_review.score IS '総合一致度';
COMMENT ON COLUMN link_review.name_score IS '名称の一致度';
COMMENT ON COLUMN link_review.address_score IS '所在地の一致度';
COMMENT ON COLUMN link_review.reason IS '自動で紐付けなかった理由';
