-- The workers delete expired custom tokens and login sessions (they are of no use once
-- expired); these indexes find them.
create index ai_training_custom_tokens_expiry on ai_training_custom_tokens (expires_at);
create index ai_training_login_sessions_expiry on ai_training_login_sessions (expires_at);
