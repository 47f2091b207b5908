-- A counter that every change to `clients` moves, in the transaction of the change: each
-- instance's client cache reads it on every key poll and forgets its clients when it has
-- moved. Triggers, so that no code path (admin API, CLI, a migration) can forget it.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('clients', 0);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
