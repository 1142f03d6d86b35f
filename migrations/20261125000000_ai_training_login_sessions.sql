-- Sessions a custom token opens (POST /api/auth/custom-token-session): the play page's "full
-- session" (seed 003). Unlike the custom token, a session token serves many requests until it
-- expires; it is accepted where custom tokens are (AI Training and AI Move routes).
create table ai_training_login_sessions (
    token_hash bytea primary key,
    user_id    text not null,
    -- the bearer claims the custom token was exchanged for
    claims     jsonb not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now()
);
