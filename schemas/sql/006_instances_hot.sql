-- 006_instances_hot: let the engine's per-step UPDATE of an instance be a HOT update.
--
-- PostgreSQL can update a row in place on its page (a heap-only tuple: no new entry in
-- any index) only when no column that an index mentions changes, predicates included.
-- instances_finished indexed updated_at, which every step changes, so every step wrote
-- a new entry into each of the table's four indexes: about a third of the WAL of one
-- durable transition (docs/benchmarks.md, S2). finished_at changes once, when the
-- instance leaves `running`, so purge gets the same index and steps stay HOT.

ALTER TABLE instances ADD COLUMN finished_at timestamptz;

UPDATE instances SET finished_at = updated_at WHERE status <> 'running';

DROP INDEX instances_finished;

-- purge and listings of finished instances by age
CREATE INDEX instances_finished ON instances (finished_at) WHERE finished_at IS NOT NULL;

-- Reading one instance by key whatever its status (GET /conversations/{id} after the
-- conversation ended, GET /instances?key=): written once per instance, never per step.
CREATE INDEX instances_key ON instances (tenant, key);

-- Room on each page for the new version of a row, which HOT needs.
ALTER TABLE instances SET (fillfactor = 80);
