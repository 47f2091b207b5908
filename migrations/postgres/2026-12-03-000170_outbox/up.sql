-- The durable outbox (SPEC §6.4, §6.3): messages a background worker delivers after the
-- transaction that enqueued them commits. `kind` picks the sender (mail, back-channel
-- logout, …); `payload` is the sender's own text (emptied once delivered). A worker claims a
-- due row by setting `claimed_until` (a lease) and `claimed_by`; a row whose lease ran out
-- (its worker died) is due again. Delivery sets `sent_at`; giving up sets `failed_at` with
-- the reason in `last_error`.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    claimed_by TEXT,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
