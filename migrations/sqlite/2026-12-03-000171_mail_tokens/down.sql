DROP TABLE email_verifications;
DROP TABLE mail_tokens;
