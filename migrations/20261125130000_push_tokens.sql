-- The push notification token a user's app registered (one per user: a new device's replaces
-- it). Pacer sends no notifications itself; the coach roster's `has_push_token` says whether
-- an athlete can be reached. Never returned by the API.
alter table users
    add column push_token text,
    add column push_platform text,
    add column push_token_at timestamptz;
