-- Per-address limits (SPEC §6.1, §6.8) are counted here, so that every instance on one
-- database draws on one budget per address. A row is the GCRA state of one limit and
-- address key: `tat`, the theoretical arrival time in Unix milliseconds (the budget is full
-- again once it has passed), and `wait_ms`, what the latest attempt was told to wait (0 when
-- it was allowed), which lets one upsert both decide and say so.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    tat BIGINT NOT NULL,
    wait_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits(tat);
