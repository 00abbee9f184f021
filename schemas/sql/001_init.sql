-- 001_init: tenants, which every later row refers to (ARCHITECTURE.md section 2:
-- "every row carries its tenant").
--
-- flowd runs each migration in one transaction together with its schema_migrations row,
-- so this file holds no BEGIN/COMMIT and nothing that refuses a transaction.

CREATE TABLE tenants (
    id         text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tenants IS 'flowd tenants; every tenant-owned row references tenants.id';

-- 'default' receives events from producers that set no ce_tenant (config default_tenant);
-- 'system' owns the shipped scheduled workflows, whose flowd.* activities act across
-- tenants.
INSERT INTO tenants (id, name) VALUES
    ('default', 'Default tenant'),
    ('system', 'flowd system');
