-- 003_api: the REST API's own tables (issue 5): API keys and Idempotency-Key records.
--
-- Written only by the API (api/keys.c, api/idem.c) and by `flowd keys`. Like every
-- migration this runs in one transaction with its schema_migrations row, so it holds no
-- BEGIN/COMMIT and no CREATE INDEX CONCURRENTLY.

-- A key is shown once, as "fk_<id>_<secret>"; only the SHA-256 of the secret is kept, so
-- a copy of this table lets nobody call the API. Keys are revoked, never deleted: their
-- rows stay for audit (who created what, when it was last used).
CREATE TABLE api_keys (
    -- 16 lower-case hex digits from getrandom(): the public half of the key
    id           text        PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    tenant       text        NOT NULL REFERENCES tenants (id),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- the strongest scope the key holds: admin implies write implies read
    scope        text        NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    hash         bytea       NOT NULL CHECK (length(hash) = 32),
    -- millisecond precision: listings show and page by this value, so what a cursor
    -- carries must compare equal to what is stored
    created_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    revoked_at   timestamptz,
    -- refreshed at most once a minute per key (the check is cached; see api/keys.h)
    last_used_at timestamptz
);

-- GET /api/v1/keys and `flowd keys list`: one tenant's keys, newest first.
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at DESC, id DESC);

-- One row per (API key, Idempotency-Key): the first response to a state-changing POST,
-- replayed to retries that carry the same key and the same request. Keys are scoped to the
-- API key, so two clients cannot see or block each other's records.
--
-- No foreign key to api_keys: keys are never deleted, and POST /events with an
-- Idempotency-Key is a hot path that should not pay an FK probe per request.
CREATE TABLE idempotency_keys (
    api_key_id   text        NOT NULL,
    idem_key     text        NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    tenant       text        NOT NULL,
    -- SHA-256 of method, path and body: a retry with another body is a 422, not a replay
    request_hash bytea       NOT NULL CHECK (length(request_hash) = 32),
    -- running: the first request is still being handled (retries get 409);
    -- done: status .. body hold its response (a 5xx is never stored: the row is deleted)
    state        text        NOT NULL CHECK (state IN ('running', 'done')),
    status       integer     CHECK (status BETWEEN 100 AND 499),
    content_type text,
    location     text,
    -- sealed (AES-256-GCM) under a key derived from the caller's API key secret, which is
    -- stored nowhere: responses may hold secrets (a new API key) or personal data, and
    -- only a retry presenting the same API key can have them replayed (api/idem_int.h)
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idem_key),
    CHECK (state = 'running' OR status IS NOT NULL)
);

-- Expiry (api.idempotency_ttl): rows older than the TTL are taken over by the next request
-- with the same key and swept in small batches by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
