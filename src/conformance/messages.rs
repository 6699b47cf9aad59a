//! Bilingual texts for the hub's stable error codes, and the requirement each code violates.
//! Reports use these instead of the validator's messages, which may quote input values.

/// (Japanese, English) text for an error code.
pub fn describe(code: &str) -> (&'static str, &'static str) {
    match code {
        "required" => ("必須項目がありません。", "A required field is missing."),
        "type" => ("値の型が誤っています。", "The value has the wrong type."),
        "enum" | "const" => (
            "コード表にない値です。",
            "The value is not in the code list.",
        ),
        "range" => ("値が範囲外です。", "The value is out of range."),
        "length" => ("文字数が範囲外です。", "The text length is out of range."),
        "pattern" => (
            "値の形式が誤っています。",
            "The value does not match the required pattern.",
        ),
        "date_format" => (
            "日付は YYYY-MM-DD 形式の実在する日付で記載してください。",
            "Dates must be real calendar dates written YYYY-MM-DD.",
        ),
        "future_date" => (
            "未来の日付は記載できません（日本時間）。",
            "The date is in the future (Japan time).",
        ),
        "municipality_code" => (
            "全国地方公共団体コードの検査数字が誤っています。",
            "The municipality code's check digit is wrong.",
        ),
        "field_order" => (
            "項目間の前後関係が誤っています（例：終了日が開始日より前）。",
            "Related fields are out of order (e.g. an end before its start).",
        ),
        "not_allowed" => (
            "この条件では記載できない項目です（例：未受診の健診の受診日）。",
            "The field is not allowed under this record's condition (e.g. a visit date for a checkup not attended).",
        ),
        "unknown_field" => (
            "スキーマにない項目です。",
            "The field is not defined by the schema.",
        ),
        "alternatives" => (
            "対象者には宛名番号または基本4情報が必要です。",
            "The subject needs a resident number or the basic four attributes.",
        ),
        "my_number_like" => (
            "個人番号（マイナンバー）と見える値は記載できません。",
            "The value looks like a My Number, which must never be sent.",
        ),
        "items_count" => (
            "一覧の件数が範囲外です。",
            "The list has too few or too many items.",
        ),
        "duplicate_item" => ("一覧に重複があります。", "The list contains duplicates."),
        "record_type_unknown" => ("不明なレコード種別です。", "Unknown record type."),
        "schema_version_unsupported" => (
            "対応していないスキーマバージョンです。",
            "Unsupported schema version.",
        ),
        "not_object" => (
            "レコードはJSONオブジェクトである必要があります。",
            "A record must be a JSON object.",
        ),
        "utf8" => (
            "UTF-8として読めない箇所があります。",
            "The content is not valid UTF-8.",
        ),
        "json_syntax" => ("JSONの構文誤りです。", "Invalid JSON syntax."),
        "batch_shape" => (
            "JSONファイルは {\"records\": […]} またはレコードの配列である必要があります。",
            "A JSON file must be {\"records\": […]} or an array of records.",
        ),
        "encoding" => (
            "文字コードが UTF-8・CP932 のいずれでもありません。",
            "The file is neither UTF-8 nor CP932.",
        ),
        "csv_syntax" => ("CSVの構文誤りです。", "Invalid CSV syntax."),
        "csv_header_unknown" | "csv_header" => (
            "見出し行に公開されていない列名があります。",
            "The header row has a column that is not published.",
        ),
        "csv_header_duplicate" => (
            "見出し行に同じ列名が重複しています。",
            "A column appears twice in the header row.",
        ),
        "record_type_required" => (
            "record_type 列がありません。",
            "The CSV has no record_type column.",
        ),
        "csv_value" => (
            "セルの値を列の型に変換できません。",
            "The cell cannot be converted to its column's type.",
        ),
        "xml_malformed"
        | "encoding_invalid"
        | "not_canonical"
        | "element_unexpected"
        | "attribute_invalid"
        | "attribute_missing"
        | "namespace_unknown"
        | "json_malformed"
        | "too_many_attributes"
        | "too_many_items"
        | "id_invalid" => (
            "引継ぎパッケージのXMLが正しくないか、正規形ではありません。",
            "The transfer package's XML is malformed or not in canonical form.",
        ),
        "duplicate_key" => (
            "同じオブジェクトに同じキーが2回あります（受け手によって解釈が変わります）。",
            "A key appears twice in one object (receivers would read it differently).",
        ),
        "manifest_missing" | "part_missing" | "part_unlisted" | "count_mismatch"
        | "length_mismatch" | "digest_mismatch" => (
            "マニフェストと内容が一致しません（改ざんの可能性があります）。",
            "The manifest does not match the parts (the package may have been tampered with).",
        ),
        "record_invalid"
        | "record_type_mismatch"
        | "record_child_unknown"
        | "record_duplicate"
        | "record_not_json"
        | "child_duplicate"
        | "support_measure_mismatch"
        | "reason_unknown"
        | "created_invalid" => (
            "引継ぎパッケージの内容が標準に適合しません。",
            "The transfer package's contents do not satisfy the standard.",
        ),
        "signature_missing" => (
            "署名ファイル（パッケージ名 + .sig）がありません。",
            "The detached signature (the package's name + .sig) is missing.",
        ),
        "signature_malformed" | "signature_invalid" => (
            "署名が検証できません（改ざん、または別の内容への署名）。",
            "The signature does not verify (tampering, or a signature over other content).",
        ),
        "unreadable" => (
            "ファイルを読み込めませんでした。",
            "The file could not be read.",
        ),
        _ => (
            "スキーマ違反です（コードを参照）。",
            "Schema violation (see the code).",
        ),
    }
}

/// The requirement an error code in a record or file violates.
pub fn requirement_of(code: &str) -> &'static str {
    match code {
        "required" => "KDL-REC-001",
        "type" | "not_object" => "KDL-REC-002",
        "enum" | "const" => "KDL-REC-003",
        "range" => "KDL-REC-004",
        "length" | "pattern" => "KDL-REC-005",
        "date_format" | "future_date" => "KDL-REC-006",
        "field_order" => "KDL-REC-007",
        "not_allowed" => "KDL-REC-008",
        "unknown_field" => "KDL-REC-009",
        "alternatives" => "KDL-REC-010",
        "my_number_like" => "KDL-REC-011",
        "items_count" | "duplicate_item" => "KDL-REC-012",
        "record_type_unknown" | "schema_version_unsupported" => "KDL-REC-013",
        "municipality_code" => "KDL-REC-014",
        "csv_header" | "csv_header_unknown" | "csv_header_duplicate" | "record_type_required" => {
            "KDL-FILE-004"
        }
        "csv_value" => "KDL-FILE-005",
        // Anything else the validator reports is still a schema violation of the record.
        _ => "KDL-REC-002",
    }
}
