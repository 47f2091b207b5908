// @generated shape: matches `diesel print-schema` of the migrations (BIGINT columns as BigInt
// on both backends).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_lower -> Text,
        email -> Nullable<Text>,
        password_hash -> Text,
        roles -> Text,
        attributes -> Text,
        disabled -> Bool,
        failed_logins -> Integer,
        locked_until -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        secret_hash -> Nullable<Text>,
        is_public -> Bool,
        grant_types -> Text,
        scopes -> Text,
        audience -> Nullable<Text>,
        access_token_ttl -> Nullable<BigInt>,
        refresh_token_ttl -> Nullable<BigInt>,
        refresh_reuse_grace -> Nullable<BigInt>,
        refresh_cookie -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        name -> Nullable<Text>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        first_party -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        token_alg -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        amr -> Text,
        auth_time -> BigInt,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoke_reason -> Nullable<Text>,
        refresh_hash -> Nullable<Text>,
        refresh_previous_hash -> Nullable<Text>,
        refresh_rotated_at -> Nullable<BigInt>,
        refresh_successor_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (jti_hash) {
        jti_hash -> Text,
        session_id -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        spent_at -> Nullable<BigInt>,
        successor_hash -> Nullable<Text>,
        successor_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        bits -> Integer,
        public_n -> Text,
        public_e -> Text,
        private_sealed -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        alg -> Text,
        public_x -> Nullable<Text>,
        public_y -> Nullable<Text>,
        deactivated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        event_type -> Text,
        actor -> Nullable<Text>,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    mfa_totp (user_id) {
        user_id -> Text,
        secret_sealed -> Text,
        enabled -> Bool,
        last_step -> Nullable<BigInt>,
        created_at -> BigInt,
        enabled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mfa_recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    mfa_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    login_failures (key_hash) {
        key_hash -> Text,
        failures -> Integer,
        locked_until -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        redirect_uri_sent -> Bool,
        code_challenge -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        auth_time -> BigInt,
        amr -> Text,
        fresh -> Bool,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        browser_session_id -> Nullable<Text>,
    }
}

diesel::table! {
    session_links (session_id) {
        session_id -> Text,
        browser_session_id -> Text,
    }
}

diesel::table! {
    browser_sessions (id_hash) {
        id_hash -> Text,
        session_id -> Text,
        user_id -> Text,
        fresh_sign_in -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    change_counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        tat -> BigInt,
        wait_ms -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(browser_sessions -> sessions (session_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    login_failures,
    clients,
    sessions,
    refresh_tokens,
    revoked_access_tokens,
    signing_keys,
    audit_events,
    mfa_totp,
    mfa_recovery_codes,
    mfa_tokens,
    authorization_codes,
    browser_sessions,
    consents,
    change_counters,
    revocations,
    revocation_head,
    session_links,
    rate_limits,
);

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        payload -> Text,
        attempts -> Integer,
        created_at -> BigInt,
        next_attempt_at -> BigInt,
        claimed_until -> Nullable<BigInt>,
        claimed_by -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    revocations (seq) {
        seq -> BigInt,
        kind -> Text,
        item_id -> Text,
        revoked_at -> BigInt,
        keep_until -> BigInt,
    }
}

diesel::table! {
    mail_tokens (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    email_verifications (user_id) {
        user_id -> Text,
        email -> Text,
        verified_at -> BigInt,
    }
}

diesel::table! {
    revocation_head (id) {
        id -> Integer,
        seq -> BigInt,
    }
}
