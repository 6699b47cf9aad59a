//! Diesel table definitions, identical for SQLite and PostgreSQL (see `migrations/`).

diesel::table! {
    municipalities (municipality_code) {
        municipality_code -> Text,
        name -> Text,
        council -> Nullable<Text>,
        population -> Nullable<BigInt>,
        created_at -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> BigInt,
        scope -> Text,
        municipality_code -> Nullable<Text>,
        council_code -> Nullable<Text>,
        name -> Text,
        roles -> Text,
        record_types -> Nullable<Text>,
        token_hash -> Text,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
        cert_fingerprint -> Nullable<Text>,
    }
}

diesel::table! {
    councils (code) {
        code -> Text,
        name -> Text,
        operator_contact -> Nullable<Text>,
        created_at -> Text,
    }
}

diesel::table! {
    subjects (municipality_code, resident_no) {
        municipality_code -> Text,
        resident_no -> Text,
        household_no -> Nullable<Text>,
        name -> Nullable<Text>,
        name_kana -> Nullable<Text>,
        birth_date -> Nullable<Text>,
        sex -> Nullable<Integer>,
        role -> Nullable<Text>,
        support_measure -> Bool,
        data -> Text,
        updated_at -> Text,
        moved_out_to -> Nullable<Text>,
    }
}

diesel::table! {
    records (id) {
        id -> BigInt,
        municipality_code -> Text,
        source -> Text,
        source_record_id -> Text,
        record_type -> Text,
        schema_version -> Text,
        subject_resident_no -> Nullable<Text>,
        effective_date -> Text,
        data -> Text,
        content_hash -> Text,
        version -> Integer,
        retracted -> Bool,
        updated_at -> Text,
    }
}

diesel::table! {
    record_versions (seq) {
        seq -> BigInt,
        municipality_code -> Text,
        record_id -> BigInt,
        source -> Text,
        source_record_id -> Text,
        record_type -> Text,
        version -> Integer,
        retracted -> Bool,
        data -> Text,
        content_hash -> Text,
        recorded_at -> Text,
    }
}

diesel::table! {
    idempotency_keys (municipality_code, client_id, idempotency_key) {
        municipality_code -> Text,
        client_id -> BigInt,
        idempotency_key -> Text,
        request_hash -> Text,
        status -> Integer,
        response -> Text,
        created_at -> Text,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        municipality_code -> Text,
        at -> Text,
        client_id -> Nullable<BigInt>,
        client_name -> Nullable<Text>,
        actor -> Nullable<Text>,
        roles -> Nullable<Text>,
        subject -> Nullable<Text>,
        action -> Text,
        purpose -> Nullable<Text>,
        legal_basis -> Nullable<Text>,
        result -> Text,
        detail -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
        chain -> Nullable<Text>,
        chain_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Everyone of a town ever under a DV support measure (kept by the ingest path; never
    /// cleared).
    support_measure_subjects (municipality_code, resident_no) {
        municipality_code -> Text,
        resident_no -> Text,
    }
}

diesel::table! {
    opt_outs (municipality_code, resident_no) {
        municipality_code -> Text,
        resident_no -> Text,
        objected_on -> Text,
        legal_note -> Nullable<Text>,
        recorded_at -> Text,
    }
}

diesel::table! {
    gaiji (municipality_code, code_point) {
        municipality_code -> Text,
        code_point -> Text,
        standard -> Text,
        note -> Nullable<Text>,
        updated_at -> Text,
    }
}

diesel::table! {
    local_ids (municipality_code, source, id_kind, local_id) {
        municipality_code -> Text,
        source -> Text,
        id_kind -> Text,
        local_id -> Text,
        resident_no -> Text,
        confirmed_at -> Text,
    }
}

diesel::table! {
    identity_queue (id) {
        id -> BigInt,
        municipality_code -> Text,
        record_id -> BigInt,
        source -> Text,
        source_record_id -> Text,
        birth_date -> Nullable<Text>,
        status -> Text,
        reason -> Text,
        candidates -> Text,
        resident_no -> Nullable<Text>,
        created_at -> Text,
        resolved_at -> Nullable<Text>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    transfers (id) {
        id -> BigInt,
        municipality_code -> Text,
        destination_code -> Nullable<Text>,
        status -> Text,
        legal_basis -> Text,
        reason_code -> Text,
        note -> Nullable<Text>,
        offered_by -> Text,
        offered_at -> Text,
        deadline -> Text,
        escalate_to -> Text,
        escalated_at -> Nullable<Text>,
        decided_at -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decline_reason -> Nullable<Text>,
    }
}

diesel::table! {
    transfer_children (transfer_id, origin_resident_no) {
        transfer_id -> BigInt,
        municipality_code -> Text,
        origin_resident_no -> Text,
        destination_resident_no -> Nullable<Text>,
        objected_on -> Nullable<Text>,
        objection_note -> Nullable<Text>,
    }
}

diesel::table! {
    transfer_records (transfer_id, record_id) {
        transfer_id -> BigInt,
        municipality_code -> Text,
        record_id -> BigInt,
        origin_resident_no -> Text,
        source -> Text,
        source_record_id -> Text,
        record_type -> Text,
        data -> Text,
        content_hash -> Text,
        disposition -> Nullable<Text>,
    }
}

diesel::table! {
    record_provenance (municipality_code, source, source_record_id) {
        municipality_code -> Text,
        source -> Text,
        source_record_id -> Text,
        origin_municipality_code -> Text,
        origin_source -> Text,
        transfer_id -> BigInt,
        transferred_at -> Text,
    }
}

diesel::table! {
    hub_signing_key (id) {
        id -> Integer,
        public_key -> Text,
        secret_key -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    hub_peers (name) {
        name -> Text,
        public_key -> Text,
        added_at -> Text,
        removed_at -> Nullable<Text>,
    }
}

diesel::table! {
    hub_key_history (public_key) {
        public_key -> Text,
        retired_at -> Text,
        verify_until -> Text,
    }
}

diesel::table! {
    peer_keys (public_key) {
        public_key -> Text,
        peer -> Text,
        valid_from -> Nullable<Text>,
        valid_until -> Nullable<Text>,
        verify_until -> Nullable<Text>,
        added_at -> Text,
    }
}

diesel::joinable!(peer_keys -> hub_peers (peer));

diesel::table! {
    peer_towns (municipality_code) {
        municipality_code -> Text,
        peer -> Text,
    }
}

diesel::table! {
    transfer_packages (package_id) {
        package_id -> Text,
        municipality_code -> Text,
        direction -> Text,
        transfer_id -> BigInt,
        peer -> Text,
        package_sha256 -> Text,
        package_xml -> Text,
        signature -> Text,
        receipt_xml -> Nullable<Text>,
        receipt_signature -> Nullable<Text>,
        created_at -> Text,
        outcome_xml -> Nullable<Text>,
        outcome_signature -> Nullable<Text>,
    }
}

diesel::table! {
    indicator_releases (id) {
        id -> BigInt,
        municipality_code -> Text,
        fiscal_year -> Integer,
        published_at -> Text,
        published_by -> Text,
        rule_set_version -> Text,
        disclosure -> Text,
        towns -> Text,
        audit -> Text,
    }
}

diesel::table! {
    indicator_cells (release_id, level, geography, indicator, category) {
        release_id -> BigInt,
        municipality_code -> Text,
        level -> Text,
        geography -> Text,
        indicator -> Text,
        category -> Text,
        unit -> Text,
        value -> Nullable<Double>,
        rounded -> Bool,
        suppressed -> Nullable<Text>,
        floor -> BigInt,
        true_value -> Nullable<BigInt>,
    }
}

diesel::table! {
    push_days (municipality_code, source, day) {
        municipality_code -> Text,
        source -> Text,
        day -> Text,
        received -> BigInt,
        rejected -> BigInt,
        last_push_at -> Text,
    }
}

diesel::table! {
    push_rejections (municipality_code, source, day, code) {
        municipality_code -> Text,
        source -> Text,
        day -> Text,
        code -> Text,
        records -> BigInt,
    }
}

diesel::table! {
    feed_cursors (municipality_code, client_id) {
        municipality_code -> Text,
        client_id -> BigInt,
        client_name -> Text,
        cursor_seq -> BigInt,
        read_at -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    municipalities,
    councils,
    clients,
    subjects,
    records,
    record_versions,
    support_measure_subjects,
    idempotency_keys,
    audit_log,
    opt_outs,
    gaiji,
    local_ids,
    identity_queue,
    transfers,
    transfer_children,
    transfer_records,
    record_provenance,
    hub_signing_key,
    hub_peers,
    hub_key_history,
    peer_keys,
    peer_towns,
    transfer_packages,
    indicator_releases,
    indicator_cells,
    push_days,
    push_rejections,
    feed_cursors,
);
