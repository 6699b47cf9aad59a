//! The Japanese of the OpenAPI document (Japanese first, English after): the overview, the
//! tags, and the descriptions of parameters and answers that handlers state in English. An
//! operation's own summary and description are its doc comment (`/// 日本語 — English`, a blank
//! line, then Japanese and English paragraphs). A test fails on any description left without
//! Japanese, so a new English text needs its line here.

/// `info.description`: what a vendor needs before the first call.
pub const OVERVIEW: &str = "\
**こどもデータ連携ハブ kodomo-hub API**

こどもデータ連携ハブ（kodomo-hub）の API です。国の「基本連携データ項目」をバージョン付きのスキーマとして公開し、検証付きの記録の送信、該当する基本項目付きの子どものプロファイル、履歴と変更フィード、転出入時の引継ぎ、成果指標を提供します。

- **認証**：すべての個人情報の操作には `Authorization: Bearer <token>` が必要です。トークンは `kodomo-hub admin client add` で自治体ごと・ロールごとに発行されます（`/healthz`・`/readyz`・`/metrics`・`/v1/schemas`・`/v1/access-purposes` は不要）。
- **利用目的**：個人情報を読む要求は `X-Purpose`（利用目的、`Purpose` スキーマ）と `X-Actor`（操作した職員）を宣言し、監査証跡に残ります。
- **エラー**：エラー応答はすべて RFC 9457 の problem details（`application/problem+json`）で、`code` は安定した機械可読のコードです。
- **再送**：送信に `Idempotency-Key` を付けると、同じキーの再送には最初の応答が返ります。429 と 503 には `Retry-After`（秒）に従って再送してください。
- **記録**：記録の型は `Record`（`record_type` で判別）で、`schema/` のスキーマファイルそのものです。項目の一覧は [データ項目定義書](/docs/data-dictionary) を参照してください。
- **和暦**：日付はすべて ISO 8601（`YYYY-MM-DD`）です。和暦は JSON では受け付けません。

Children's data linkage hub (こどもデータ連携): the national basic linkage data items as a versioned schema, validated pushes, profiles with the basic items that apply, history and a change feed, handovers when a family moves, and outcome indicators.

- **Authentication**: every personal operation needs `Authorization: Bearer <token>`; tokens are issued per municipality and role by `kodomo-hub admin client add` (not needed for `/healthz`, `/readyz`, `/metrics`, `/v1/schemas`, `/v1/access-purposes`).
- **Purpose**: every personal read declares `X-Purpose` (the `Purpose` schema) and `X-Actor` (the staff member) and is audited.
- **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable machine-readable `code`.
- **Retries**: a push with an `Idempotency-Key` retried with the same key gets the first answer; on 429 and 503 retry after `Retry-After` seconds.
- **Records** are typed by `Record` (discriminated by `record_type`) and are the schema files under `schema/`; the [data dictionary](/docs/data-dictionary) lists every item.
- **Dates** are ISO 8601 (`YYYY-MM-DD`); JSON does not accept Japanese era (和暦) dates.";

/// Short bilingual tag names for the docs' menu (`x-displayName`).
pub fn tag_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "records" => "記録 Records",
        "subjects" => "子ども Subjects",
        "access" => "利用目的・監査 Access",
        "identity" => "名寄せ Identity",
        "transfers" => "引継ぎ Transfers",
        "indicators" => "成果指標 Indicators",
        "schemas" => "スキーマ Schemas",
        "operations" => "運用 Operations",
        "screening" => "判定・抽出 Screening",
        "councils" => "協議会 Councils",
        _ => return None,
    })
}

/// Bilingual tag descriptions.
pub fn tag(name: &str) -> Option<&'static str> {
    Some(match name {
        "records" => {
            "記録の送信・履歴・変更フィード — Pushing records, history and the change feed"
        }
        "subjects" => {
            "子どものプロファイルと保護者の不同意 — A child's profile and guardians' objections"
        }
        "access" => "利用目的と監査証跡 — Declared purposes and the audit trail",
        "identity" => "名寄せの確認待ち — Identity resolution (名寄せ): the review queue",
        "transfers" => {
            "転出入時の引継ぎ — Handovers when a family moves between towns (転出入時の引継ぎ)"
        }
        "indicators" => {
            "成果指標（秘匿処理済み） — Anonymised outcome indicators (成果指標) behind provable disclosure control"
        }
        "councils" => {
            "協議会の運営者：クライアントと運用状況（個人情報は含みません） — A joint-use council's operator: its clients and operational figures, never personal data"
        }
        "schemas" => "標準のスキーマ — The standard itself",
        "operations" => "死活・稼働準備・メトリクス — Health, readiness and metrics",
        "screening" => {
            "判定・抽出：町が定めるルールで判定会議の一覧を作り、判断は人が行う — Screening worklists: town-defined rules, decided by people"
        }
        _ => return None,
    })
}

/// Japanese for the English descriptions of parameters and answers.
pub fn ja(en: &str) -> Option<&'static str> {
    Some(match en {
        // Screening worklists and conditional updates.
        "The default rule-set document" => "既定のルールセット文書",
        "min_items outside 1–19" => "min_items が 1〜19 の範囲外です",
        "Staff member defining the rule set" => "ルールセットを定める職員",
        "Stored as the next version" => "次の版として保存しました",
        "Not JSON, or no X-Actor" => "JSON ではない、または `X-Actor` がありません",
        "Not a caseworker of the town" => "その自治体のケースワーカーではありません",
        "Invalid rule set: every problem with its pointer (unknown item, negative cap …)" => {
            "ルールセットが正しくありません：問題ごとにポインタ付き（未知の項目、負の上限 …）"
        }
        "Versions and adoptions" => "版と採用の履歴",
        "Version number" => "版の番号",
        "The version" => "その版",
        "No such version, or not a caseworker of the town" => {
            "そのような版がない、またはその自治体のケースワーカーではありません"
        }
        "Staff member adopting the version" => "版を採用する職員",
        "Adopted" => "採用しました",
        "No X-Actor" => "`X-Actor` がありません",
        "Counts" => "件数",
        "Bad date" => "日付が正しくありません",
        "The run (counts over what the caller may see)" => {
            "判定の実行（呼び出し元に見える範囲の件数）"
        }
        "Missing purpose or actor, bad date" => {
            "`X-Purpose` または `X-Actor` がない、または日付が正しくありません"
        }
        "No rule set adopted" => "ルールセットが採用されていません",
        "Runs, newest first" => "実行の一覧（新しい順）",
        "Run id" => "実行の番号",
        "The worklist" => "判定会議用の一覧",
        "No such run, or not a caseworker of the town" => {
            "そのような実行がない、またはその自治体のケースワーカーではありません"
        }
        "The entry" => "一覧の項目",
        "No such entry, or not visible to the caller" => {
            "そのような項目がない、または呼び出し元からは見えません"
        }
        "Staff member recording the decision" => "判定を記録する職員",
        "The run is closed" => "その実行は締め切られています",
        "Invalid decision, with pointers" => "判定が正しくありません（ポインタ付き）",
        "Staff member closing the run" => "実行を締め切る職員",
        "Closed" => "締め切りました",
        "Bad body, or no X-Actor" => "本文が正しくない、または `X-Actor` がありません",
        "Already closed, or undecided entries and no reason" => {
            "すでに締め切られている、または未判定の項目があり理由がありません"
        }
        "Staff member at the school" => "学校の職員",
        "Shared decisions" => "共有された判定",
        "Not a school of the town" => "その自治体の学校ではありません",
        "The source's own record id; must equal the record's `source_record_id`" => {
            "連携元の記録ID。記録の `source_record_id` と同じであること"
        }
        "Store only if the record's current entity tag is one of these (or, for `*`, if it exists and is not retracted)" => {
            "記録の現在のエンティティタグがこのいずれかのときだけ保存します（`*` は、記録があり取り消されていないとき）"
        }
        "`*`: store only if there is no live record under this id (create only)" => {
            "`*`：このIDの有効な記録がないときだけ保存します（新規作成のみ）"
        }
        "One record (`#/components/schemas/Record`)." => {
            "記録1件（`#/components/schemas/Record`）。"
        }
        "Updated or unchanged; `ETag` names the stored version" => {
            "更新または変更なし。`ETag` は保存された版"
        }
        "Created; `ETag` names the stored version" => "作成しました。`ETag` は保存された版",
        "A malformed If-Match or If-None-Match (`precondition_invalid`)" => {
            "If-Match または If-None-Match の形式が正しくありません（`precondition_invalid`）"
        }
        "The record is not as the condition expects (`precondition_failed`, with `current` (`version`, `etag`)); nothing was written" => {
            "記録が条件と一致しません（`precondition_failed`、現在の版を `current`（`version`・`etag`）で示します）。何も書き込んでいません"
        }
        "Unsupported Content-Type (only application/json)" => {
            "Content-Type に対応していません（application/json のみ）"
        }
        "The record is invalid, or its `source_record_id` is not the one in the URL (`record_rejected`, with pointers); nothing was written" => {
            "記録が正しくない、または `source_record_id` が URL のものと異なります（`record_rejected`、ポインタ付き）。何も書き込んでいません"
        }
        "Retract only if the record's current entity tag is one of these (or, for `*`, if it is not retracted)" => {
            "記録の現在のエンティティタグがこのいずれかのときだけ取り消します（`*` は、取り消されていないとき）"
        }
        "Retracted (again, harmlessly, if it already was); `ETag` names the tombstone" => {
            "取り消しました（取消し済みでも害はありません）。`ETag` は取消しの版"
        }
        "A malformed If-Match, or an If-None-Match (`precondition_invalid`)" => {
            "If-Match の形式が正しくない、または If-None-Match が付いています（`precondition_invalid`）"
        }
        "The record is not as If-Match expects (`precondition_failed`, with `current` (`version`, `etag`)); nothing was written" => {
            "記録が If-Match と一致しません（`precondition_failed`、現在の版を `current`（`version`・`etag`）で示します）。何も書き込んでいません"
        }
        "Every version, oldest first; when they are all one source's, `ETag` names the current one" => {
            "すべての版（古い順）。すべて一つの連携元のものなら、`ETag` が現在の版を示します"
        }
        "Minimum count of applicable basic items (default 2)." => {
            "該当する基本項目の最小数（既定 2）。"
        }
        "The date the worklist is computed as of (YYYY-MM-DD; default today in Japan)." => {
            "一覧を計算する基準日（YYYY-MM-DD。既定は日本の今日）。"
        }
        // Answers every operation shares.
        "The hub could not complete the request (`internal`)" => {
            "ハブ内部の障害で要求を完了できませんでした（`internal`）"
        }
        "Missing or unknown token" => "トークンがない、または無効です",
        "Rate limited" => "要求が多すぎます（`Retry-After` 秒後に再送）",
        "Not a transfer officer" => "引継ぎ担当（`transfer_officer`）ではありません",
        "Bad request" => "要求が正しくありません",
        "Missing actor" => "`X-Actor` がありません",
        "Missing purpose or actor" => "`X-Purpose` または `X-Actor` がありません",
        "Not an auditor" => "監査担当（`auditor`）ではありません",
        "Not visible to the caller" => "呼び出し元からは見えません",
        "No such item, or not visible to the caller" => {
            "そのような項目がない、または呼び出し元からは見えません"
        }
        "Already decided otherwise" => "すでに別の判断がされています",
        "No such child, or not visible to the caller" => {
            "そのような子どもがいない、または呼び出し元からは見えません"
        }
        "Missing signature or actor" => "署名（`Kodomo-Signature`）または `X-Actor` がありません",
        "Too large" => "大きすぎます",
        "No such transfer for this town" => "この自治体宛てのそのような引継ぎはありません",
        "No such transfer from this town" => "この自治体からのそのような引継ぎはありません",
        "A free-text header (`X-Actor`, `X-Purpose`, `X-Legal-Basis`, `Idempotency-Key`) looks like a My Number (`my_number_like`)" => {
            "自由記述のヘッダー（`X-Actor`・`X-Purpose`・`X-Legal-Basis`・`Idempotency-Key`）が個人番号（マイナンバー）のように見えます（`my_number_like`）"
        }
        "A body in a content coding other than identity (`content_encoding_unsupported`)" => {
            "identity 以外の Content-Encoding の本文は受け付けません（`content_encoding_unsupported`）"
        }
        "Requests a second each client may make (bursts of up to twice that); beyond it the hub answers 429" => {
            "クライアントごとの1秒あたりの要求数（その2倍までの一時的な集中は可）。超えると 429"
        }
        "Seconds until the client may retry" => "再送できるまでの秒数",
        "ed25519;key=<hex>;sig=<hex>" => "分離署名：`ed25519;key=<hex>;sig=<hex>`",
        "The transfer in this town's inbox" => "この自治体の受信箱に入った引継ぎ",
        "Records to store. Each record is checked against `#/components/schemas/Record`; an invalid record is reported in the results, not refused at the HTTP level (unless `atomic=true`)." => {
            "保存する記録。各記録は `#/components/schemas/Record` で検証され、無効な記録は HTTP のエラーではなく結果の中で報告されます（`atomic=true` のときを除く）。"
        }
        // Operations.
        "Alive" => "稼働中",
        "Prometheus metrics" => "Prometheus 形式のメトリクス",
        "Ready" => "稼働準備完了",
        "Database unreachable, or every pooled connection is in use" => {
            "データベースに接続できない、またはすべての接続が使用中です"
        }
        "Published purposes" => "公表している利用目的",
        "Entries about the child, oldest first" => "その子どもについての記録（古い順）",
        "Missing subject" => "`subject` がありません",
        "Entries, oldest first" => "記録（古い順）",
        "The candidate release for the caller's council" => "呼び出し元の協議会の公表候補",
        "Bad fiscal year or format" => "年度または形式が正しくありません",
        "Not a council administrator" => "協議会管理者（`council_admin`）ではありません",
        "Council code" => "協議会コード",
        "The council and its clients" => "協議会とそのクライアント",
        "The council's operational figures" => "協議会の運用状況",
        "Bad number of days" => "日数が正しくありません",
        "Days of pushes to show, today (UTC) included: 1–90, default 7." => {
            "表示する送信の日数（今日〔UTC〕を含む）：1〜90、既定は 7"
        }
        "No such council for the caller" => "呼び出し元から見える協議会がありません",
        "Releases" => "リリースの一覧",
        "The release" => "リリース",
        "Bad id or format" => "ID または形式が正しくありません",
        "No such release" => "そのようなリリースはありません",
        "Changes after the cursor, oldest first" => "カーソル以降の変更（古い順）",
        "Bad cursor or limit, or missing purpose or actor" => {
            "カーソルまたは件数が正しくない、または `X-Purpose`・`X-Actor` がありません"
        }
        "Queue items" => "確認待ちの項目",
        "Missing purpose or actor, bad status" => {
            "`X-Purpose`・`X-Actor` がない、または `status` が正しくありません"
        }
        "Linked" => "結び付けました",
        "Missing actor, or not a subject of this municipality" => {
            "`X-Actor` がない、またはこの自治体の対象者ではありません"
        }
        "Rejected" => "否認しました",
        "Per-record outcome" => "記録ごとの結果",
        "The body cannot be read (bad JSON, encoding, CSV header…)" => {
            "本文を読めません（JSON の誤り、文字コード、CSV の見出し行など）"
        }
        "The client may not push to this municipality" => {
            "このクライアントはこの自治体に送信できません"
        }
        "The body stopped arriving for longer than the hub waits (`body_timeout`); the report carries the complete records before the pause (none if atomic)" => {
            "本文の到着がハブの待ち時間を超えて途切れました（`body_timeout`）。途切れる前の完全な記録の結果が含まれます（atomic の場合はなし）"
        }
        "A request with this Idempotency-Key is still running" => {
            "この Idempotency-Key の要求はまだ処理中です"
        }
        "Body or line too large (an atomic NDJSON stream is bounded like a JSON body)" => {
            "本文または1行が大きすぎます（`body_too_large`・`line_too_long`。atomic の NDJSON は JSON 本文と同じ上限）"
        }
        "Unsupported Content-Type" => "対応していない Content-Type、または Content-Encoding です",
        "Atomic batch with an invalid record (nothing stored), more records than one batch may hold (`batch_too_large`, pointer `/records`), an Idempotency-Key reused with another body, a CSV header naming a column twice, or a CSV that names no record type (`record_type_required`)" => {
            "atomic のバッチに無効な記録がある（何も保存しない）、1バッチの上限件数を超える（`batch_too_large`、ポインタ `/records`）、Idempotency-Key を別の本文で再利用した、CSV の見出しに同じ列が2回ある、または CSV がレコード種別を示していない（`record_type_required`）"
        }
        "Rate limited, or this client already pushes as many NDJSON streams as it may (`too_many_streams`); see Retry-After" => {
            "要求が多すぎる、またはこのクライアントが同時に送れる NDJSON ストリームの上限に達しています（`too_many_streams`）。`Retry-After` を参照"
        }
        "Retracted (again, harmlessly, if it already was)" => {
            "取り消しました（取消し済みなら、再度の取消しは無害です）"
        }
        "The client may not write in this municipality" => {
            "このクライアントはこの自治体に書き込めません"
        }
        "No such record of this source" => "この連携元のそのような記録はありません",
        "Every version, oldest first" => "すべての版（古い順）",
        "No such record, or not visible to the caller" => {
            "そのような記録がない、または呼び出し元からは見えません"
        }
        "The profile" => "プロファイル",
        "Withdrawn" => "撤回しました",
        "No objection recorded, or not visible to the caller" => {
            "不同意が登録されていない、または呼び出し元からは見えません"
        }
        "Recorded" => "登録しました",
        "Bad body or date" => "本文または日付が正しくありません",
        "Versions and record types" => "バージョンとレコード種別",
        "The schema document" => "スキーマ文書",
        "No such version or record type" => "そのようなバージョンまたはレコード種別はありません",
        "Imported; the signed receipt (signature in Kodomo-Signature) goes back to the origin hub" => {
            "取り込みました。署名付きの受領書（署名は `Kodomo-Signature`）を送り元のハブへ戻してください"
        }
        "Imported before: nothing imported again; the original receipt is in the problem" => {
            "取込み済みです。再度は取り込みません（元の受領書が problem に含まれます）"
        }
        "Refused: malformed, not canonical, signature, digest, length, count, schema, unknown signer, wrong destination" => {
            "拒否：形式の誤り、正規形でない、署名・ダイジェスト・長さ・件数・スキーマの不一致、未知の署名者、宛先の誤り"
        }
        "Delivered" => "引継ぎが完了しました",
        "The transfer with the destination's decision" => "送り先の判定を含む引継ぎ",
        "Refused: malformed, signature, unknown package, other bytes, counts, another outcome imported before" => {
            "拒否：形式の誤り、署名の不一致、未知のパッケージ、別のバイト列についての判定、件数の不一致、別の判定結果を取込み済み"
        }
        "The outcome; its detached signature is in the Kodomo-Signature header" => {
            "判定結果（分離署名は `Kodomo-Signature` ヘッダー）"
        }
        "No such transfer, or no outcome yet (not decided, or not exchanged between hubs)" => {
            "そのような引継ぎがない、または判定結果がまだありません（未判定、またはハブ間の引継ぎではありません）"
        }
        "The transfer was cancelled or otherwise closed" => {
            "引継ぎは取り消された、またはすでに終了しています"
        }
        "Refused: malformed, signature, unknown package, other bytes acknowledged, counts" => {
            "拒否：形式の誤り、署名の不一致、未知のパッケージ、別のバイト列への受領、件数の不一致"
        }
        "Transfers" => "引継ぎの一覧",
        "Bad query" => "クエリが正しくありません",
        "Offered (or held)" => "申し出ました（または保留にしました）",
        "A child is not a subject of this town, or the destination is not a town of this hub" => {
            "子どもがこの自治体の対象者でない、または転出先がこのハブの自治体ではありません"
        }
        "The transfer" => "引継ぎ",
        "No such transfer, or not visible to the caller" => {
            "そのような引継ぎがない、または呼び出し元からは見えません"
        }
        "Accepted" => "受け入れました",
        "Not in a state that can be accepted" => "受け入れられる状態ではありません",
        "The answer contradicts the transfer: a child without (or sharing) a destination number, an unknown child or record" => {
            "引継ぎと矛盾します：転入先の番号がない（または重複する）子ども、未知の子どもまたは記録"
        }
        "Cancelled" => "取り消しました",
        "Already decided" => "すでに決定済みです",
        "Now offered to the caller's town" => "呼び出し元の自治体への申出になりました",
        "No such held transfer" => "そのような保留中の引継ぎはありません",
        "Not held any more" => "もう保留中ではありません",
        "Declined" => "辞退しました",
        "Not in a state that can be declined" => "辞退できる状態ではありません",
        "The package; its detached signature is in the Kodomo-Signature header" => {
            "パッケージ（分離署名は `Kodomo-Signature` ヘッダー）"
        }
        "The transfer is no longer offered" => "引継ぎはもう申出中ではありません",
        "Held, or addressed to a town of this hub (no package needed)" => {
            "保留中、またはこのハブの自治体宛てです（パッケージは不要）"
        }
        "Validity of each record; nothing stored" => "記録ごとの検証結果（何も保存しません）",
        "The body cannot be read" => "本文を読めません",
        "Body too large" => "本文が大きすぎます（`body_too_large`）",
        "More records than one batch may hold (`batch_too_large`, pointer `/records`)" => {
            "1バッチの上限件数を超えています（`batch_too_large`、ポインタ `/records`）"
        }
        // Parameters.
        "Municipality code" | "Municipality code (全国地方公共団体コード)" => {
            "全国地方公共団体コード（6桁、末尾は検査数字）"
        }
        "Transfer id" => "引継ぎの ID",
        "Staff member in the calling system" => "呼び出し元システムで操作した職員",
        "Declared purpose, a code of GET /v1/access-purposes" | "Declared purpose" => {
            "利用目的（`GET /v1/access-purposes` のコード）"
        }
        "Overrides the purpose's default legal basis" => {
            "利用目的の既定の法的根拠に代えて記録する法的根拠"
        }
        "Officer" => "引継ぎ担当の職員",
        "`json` (default) or `csv`; `Accept: text/csv` also selects CSV." => {
            "`json`（既定）または `csv`。`Accept: text/csv` でも CSV になります。"
        }
        "Queue item id" => "確認待ち項目の ID",
        "Staff member deciding" => "判断した職員",
        "The source's own record id" => "連携元システム自身の記録ID",
        "Officer importing" => "取り込む引継ぎ担当の職員",
        "Detached signature: ed25519;key=<hex>;sig=<hex>" => {
            "分離署名：`ed25519;key=<hex>;sig=<hex>`"
        }
        "Resident number of the child." => "子どもの宛名番号",
        "Fiscal year (年度): 2025 is 1 April 2025 – 31 March 2026." => {
            "年度（2025 は 2025年4月1日～2026年3月31日）"
        }
        "Release id" => "リリースの ID",
        "Cursor from the previous page (`next_cursor`); 0 or absent for the beginning." => {
            "前のページの `next_cursor`。最初から読むときは 0 または省略"
        }
        "Page size, 1–1000 (default 100)." => "1ページの件数（1～1000、既定 100）",
        "`review` (default): a person must decide; `pending`: no candidate yet; `linked`, `rejected`." => {
            "`review`（既定）：人の判断が必要、`pending`：候補者がまだない、`linked`：結び付け済み、`rejected`：否認済み"
        }
        "Reject the whole batch if any record is invalid." => {
            "無効な記録が1件でもあればバッチ全体を拒否します（何も保存しません）"
        }
        "Record type of every row of a CSV body without a `record_type` column." => {
            "`record_type` 列のない CSV の、全行のレコード種別"
        }
        "A retried request with the same key gets the first answer" => {
            "同じキーで再送した要求には最初の応答を返します"
        }
        "Source that owns the record (defaults to every source holding this id)." => {
            "記録を持つ連携元（省略時はこの ID を持つすべての連携元）"
        }
        "Staff member recording the objection" => "不同意を登録した職員",
        "Major version: `1`, `v1` or `1.0`" => "メジャーバージョン：`1`、`v1` または `1.0`",
        "A record type, or `common`, `applicability`, `access-purposes`" => {
            "レコード種別、または `common`・`applicability`・`access-purposes`"
        }
        "The officer an unanswered transfer is escalated to (default: the importing officer)." => {
            "回答がないときに上申する職員（既定は取り込んだ職員）"
        }
        "Days the town has to answer before escalation (default 14)." => {
            "上申までの回答期限の日数（既定 14）"
        }
        "`inbox` (to my town), `outbox` (from it), `held` (destination unknown, any origin),\n`arrivals` (held transfers with a child matching a subject of my town: the family may\nhave arrived here; claim to confirm), `escalated` (open past the deadline)." => {
            "`inbox`（自分の自治体宛て）、`outbox`（自分の自治体から）、`held`（転出先未定、すべての転出元）、`arrivals`（自分の自治体の対象者と一致する子どもがいる保留中の引継ぎ：家族が転入している可能性。引受けで確定）、`escalated`（期限を過ぎて未回答）"
        }
        "Officer offering" => "申し出る引継ぎ担当の職員",
        "Officer reading" => "読む引継ぎ担当の職員",
        "Officer accepting" => "受け入れる引継ぎ担当の職員",
        "`xml` (default) or `json`: the same package in either form." => {
            "`xml`（既定）または `json`：同じパッケージのどちらの形式か"
        }
        "Officer sending" => "送る引継ぎ担当の職員",
        "Which per-record results the answer lists (counting is always complete)." => {
            "応答に含める記録ごとの結果（件数は常にすべて数えます）"
        }
        _ => return None,
    })
}

/// Does `text` hold any Japanese (kana or kanji)?
pub fn has_japanese(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF66..=0xFF9F)
    })
}
