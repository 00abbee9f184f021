-- 005_directory: the business directory (businesses and their services / menu items) and
-- per-user memory facts (issue 6 items 7 and 8).
--
-- Written by the API (api/routes_businesses.c, api/routes_memory.c) and by the
-- `call: flowd.business.update` activity, both through engine/directory.c, so a workflow
-- and an API client change the same rows with the same code. Every row carries its
-- tenant; every read filters by it, and another tenant's row answers 404.
--
-- Like every migration this runs in one transaction with its schema_migrations row, so it
-- holds no BEGIN/COMMIT and no CREATE INDEX CONCURRENTLY.

CREATE TABLE businesses (
    id          uuid        PRIMARY KEY,
    tenant      text        NOT NULL REFERENCES tenants (id),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- restaurant, beauty_salon, automotive, health_medical, local_services, ... (the list
    -- is checked by engine/directory_check.c, so adding one needs no migration)
    category    text        NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{0,63}$'),
    description text        NOT NULL DEFAULT '',
    address     text,
    city        text,
    phone       text,
    -- {"monday": {"open": "09:00", "close": "17:00"}, ...}; a day that is absent is closed
    hours       jsonb       NOT NULL DEFAULT '{}',
    rating      numeric(2, 1) CHECK (rating BETWEEN 0 AND 5),
    price_level smallint    CHECK (price_level BETWEEN 1 AND 4),
    metadata    jsonb       NOT NULL DEFAULT '{}',
    -- millisecond precision: listings page by (created_at, id), so what a cursor carries
    -- must compare equal to what is stored
    created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    -- what `q` searches: the name weighs most, then category and city, then the text.
    -- The category's underscores become spaces so "beauty salon" finds beauty_salon.
    search      tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, name), 'A') ||
        setweight(to_tsvector('english'::regconfig, replace(category, '_', ' ')), 'B') ||
        setweight(to_tsvector('simple'::regconfig, coalesce(city, '')), 'B') ||
        setweight(to_tsvector('english'::regconfig, description), 'C')) STORED
);

CREATE INDEX businesses_search ON businesses USING gin (search);
-- GET /api/v1/businesses without q: one tenant's businesses, newest first
CREATE INDEX businesses_tenant_created ON businesses (tenant, created_at DESC, id DESC);
CREATE INDEX businesses_tenant_category ON businesses (tenant, category);
CREATE INDEX businesses_tenant_city ON businesses (tenant, lower(city));

CREATE TABLE services (
    id               uuid        PRIMARY KEY,
    tenant           text        NOT NULL,
    business_id      uuid        NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description      text        NOT NULL DEFAULT '',
    price            numeric(12, 2) CHECK (price >= 0),
    currency         text        NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    duration_minutes integer     CHECK (duration_minutes BETWEEN 1 AND 1440),
    category         text,
    available        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at       timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);

-- A menu item's name is unique within its business (case-insensitively): the dashboard
-- flow addresses items by name, and flowd.business.update upserts by it, which is what
-- makes applying one update twice leave one state.
CREATE UNIQUE INDEX services_business_name ON services (business_id, lower(name));

CREATE TABLE memory_facts (
    id         uuid        PRIMARY KEY,
    tenant     text        NOT NULL REFERENCES tenants (id),
    user_id    text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    fact       text        NOT NULL CHECK (length(fact) BETWEEN 1 AND 2000),
    source     text,
    created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    search     tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, fact)) STORED
);

CREATE INDEX memory_facts_search ON memory_facts USING gin (search);
CREATE INDEX memory_facts_user ON memory_facts (tenant, user_id, created_at DESC);
-- The same fact stored twice for one user is one row (POST answers the existing one).
CREATE UNIQUE INDEX memory_facts_unique ON memory_facts (tenant, user_id, md5(fact));
