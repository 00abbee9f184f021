-- 007_analytics: what the analytics endpoints and the aggregate worker need (issue 7).
--
-- (Numbered 007, not 004: versions must be unique and increasing, and 004 and 006 were
-- taken when this was written.) Like every migration this runs in one transaction with
-- its schema_migrations row, so it holds no BEGIN/COMMIT and no CREATE INDEX CONCURRENTLY.

-- GET /api/v1/analytics/usage/daily and /agents/performance, /stats' "today", and the
-- aggregate worker read one tenant's messages over a time range. The primary key
-- (tenant, conversation, seq) cannot bound that by time, so without this index every
-- such read would scan all of a tenant's transcript, a table that only grows.
CREATE INDEX messages_tenant_created ON messages (tenant, created_at);

-- /stats counts a tenant's failed activities. The engine's partial indexes cover pending
-- and running calls only; failed rows stay until purge, so without this the count would
-- scan the whole table. Partial: rows enter it once, when a call fails for good.
CREATE INDEX activities_failed ON activities (tenant) WHERE status = 'failed';

-- One row per emitted aggregation period of the business.analytics worker
-- (engine/analytics.c). A process claims a period by inserting its row in the same
-- statement that writes the period's outbox rows, so across a cluster each period is
-- emitted exactly once: a second process's insert conflicts and writes nothing.
CREATE TABLE analytics_periods (
    period_start timestamptz PRIMARY KEY,
    period_end   timestamptz NOT NULL CHECK (period_end > period_start),
    emitted_at   timestamptz NOT NULL DEFAULT now()
);
