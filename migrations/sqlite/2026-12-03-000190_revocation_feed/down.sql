DROP TABLE revocation_head;
DROP TABLE revocations;
