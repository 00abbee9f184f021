-- 004_api_lists: indexes for the REST API's reads of instances (issue 5).
--
-- Instance ids are UUIDv7 (time-ordered, made by the engine when it starts an instance),
-- so "newest first" is id DESC and a cursor is one id: exact, with no timestamp
-- precision to lose. The engine's own indexes cover running instances only.
--
-- Like every migration this runs in one transaction with its schema_migrations row, so it
-- holds no BEGIN/COMMIT and no CREATE INDEX CONCURRENTLY.

-- GET /api/v1/instances: one tenant's instances, newest first (other filters on top).
CREATE INDEX instances_tenant_id ON instances (tenant, id DESC);

-- GET /api/v1/instances?key=, and finding the instance a create started (finished ones
-- included, which instances_running_key does not hold).
CREATE INDEX instances_tenant_key ON instances (tenant, key, id DESC);
