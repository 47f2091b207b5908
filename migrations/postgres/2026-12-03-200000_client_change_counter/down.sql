DROP TRIGGER clients_truncated ON clients;
DROP TRIGGER clients_changed ON clients;
DROP FUNCTION count_client_change();
DROP TABLE change_counters;
