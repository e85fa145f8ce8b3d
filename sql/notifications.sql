-- rows in the order of the 名簿 files, their sheets and rows, as staged (warehouse.build inserts them with one
-- thread, which keeps that order): an institution's notifications are consecutive, as in the bureau's list.
-- notification_rows (this connection's own view): staged in pieces, the first makes the table and each further
-- piece is inserted through it (warehouse._build_beside)
CREATE TEMP VIEW notification_rows AS
SELECT inst_code, pref_code, name, notification_name, symbol_raw, symbol,
       CASE
         WHEN symbol LIKE '支援病%' OR symbol LIKE '支援診%' OR symbol LIKE '在医総管%' OR symbol = '在後病'
           OR symbol IN ('在充診', '在充病', '在緩診実', '在緩診病', '在診実1', '在診実2', '在病実1', '在病実2')
         THEN true ELSE false END AS is_home_care,
       acceptance_no, start_date, as_of, source_file, source_sheet, source_row
FROM stg_notifications;
CREATE TABLE notifications AS SELECT * FROM notification_rows;
COMMENT ON TABLE notifications IS '地方厚生局 届出受理医療機関名簿（施設基準の届出受理状況）：医療機関×届出ごとに1行（名簿のファイル・シート・行の順）';
COMMENT ON COLUMN notifications.inst_code IS '医療機関コード（10桁）';
COMMENT ON COLUMN notifications.pref_code IS '都道府県コード';
COMMENT ON COLUMN notifications.name IS '医療機関名称（名簿の表記）';
COMMENT ON COLUMN notifications.notification_name IS '受理届出名称';
COMMENT ON COLUMN notifications.symbol_raw IS '受理記号（名簿の表記のまま、全角）';
COMMENT ON COLUMN notifications.symbol IS '受理記号（半角に正規化。例：支援診2ア、在医総管1）';
COMMENT ON COLUMN notifications.is_home_care IS '在宅医療関係の届出か（支援病・支援診・在後病・在医総管・在宅の加算）';
COMMENT ON COLUMN notifications.acceptance_no IS '受理番号';
COMMENT ON COLUMN notifications.start_date IS '算定開始年月日';
COMMENT ON COLUMN notifications.as_of IS '名簿の時点（タイトル行の「…現在」）';
COMMENT ON COLUMN notifications.source_file IS '読み込んだファイル';
COMMENT ON COLUMN notifications.source_sheet IS 'シート名';
COMMENT ON COLUMN notifications.source_row IS 'Excelの行番号';
