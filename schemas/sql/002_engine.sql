-- 002_engine: the durable engine's tables (issue 4, ARCHITECTURE.md section 2).
--
-- Written only by the engine loop that owns an instance's partition (instances, history,
-- messages, timers, activities, inbox, outbox), by the timer poller and activity worker
-- (their own rows + an outbox row), and by the API (definitions). Every row carries its
-- tenant. Like every migration this runs in one transaction with its schema_migrations
-- row, so it holds no BEGIN/COMMIT and no CREATE INDEX CONCURRENTLY.
--
-- Foreign keys to tenants exist only on definitions and instances: the append-heavy hot
-- path tables (history, inbox, outbox, messages, timers, activities) are reached through
-- an instance or an event whose tenant was already checked, and an FK probe per row would
-- cost every transition a few index lookups for no added safety.

CREATE TABLE definitions (
    tenant     text        NOT NULL REFERENCES tenants (id),
    name       text        NOT NULL,
    version    integer     NOT NULL CHECK (version >= 1),
    source     text        NOT NULL,
    -- sha256 of source: saving the same (tenant, name, version) again is a no-op only
    -- when the text is the same; a different text is a conflict, never an overwrite,
    -- because running instances stay on the version they started with.
    checksum   text        NOT NULL,
    -- shipped definitions (workflows/*.yaml) are visible to every tenant
    shipped    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version)
);

CREATE INDEX definitions_shipped ON definitions (name, version) WHERE shipped;

CREATE TABLE instances (
    id          uuid        PRIMARY KEY,
    tenant      text        NOT NULL REFERENCES tenants (id),
    workflow    text        NOT NULL,
    version     integer     NOT NULL,
    -- the CloudEvents subject of the events that address the instance (= the Kafka key)
    key         text        NOT NULL,
    -- the state's name, not its index: indexes move when a definition is edited, and the
    -- row must stay readable by people and by later versions of flowd
    state       text        NOT NULL,
    status      text        NOT NULL
                CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    context     jsonb       NOT NULL DEFAULT '{}',
    usage       jsonb       NOT NULL DEFAULT '{}',
    -- the step function's own bookkeeping (entered_at, entry_seq, pc, waiting, seq): one
    -- opaque value, so the machine can grow fields without a migration
    machine     jsonb       NOT NULL,
    -- optimistic concurrency: every write is UPDATE ... WHERE row_version = <read one>
    row_version bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The engine's lookup for every event: the running instances of (tenant, key).
CREATE INDEX instances_running_key ON instances (tenant, key) WHERE status = 'running';
-- A trigger never starts a second running instance of one workflow for one key: the
-- second insert fails and its whole batch rolls back (ARCHITECTURE.md "Triggers").
CREATE UNIQUE INDEX instances_one_running ON instances (tenant, workflow, key)
    WHERE status = 'running';
-- purge and listings of finished instances by age
CREATE INDEX instances_finished ON instances (updated_at) WHERE status <> 'running';

CREATE TABLE history (
    instance_id uuid        NOT NULL,
    seq         bigint      NOT NULL,
    tenant      text        NOT NULL,
    event_id    text,
    event_type  text        NOT NULL,
    from_state  text,
    to_state    text,
    -- a short list of what the step did ({kind, id/type/status}), not the effects' data:
    -- context values and emitted payloads may be large or personal
    effects     jsonb       NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- no FK to instances: purge deletes both, and the hot path saves the probe
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE messages (
    tenant       text        NOT NULL,
    conversation text        NOT NULL,
    seq          bigint      NOT NULL,
    role         text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content      text        NOT NULL,
    agent        text,
    provider     text,
    model        text,
    tokens_in    integer,
    tokens_out   integer,
    cost         numeric(18, 8),
    latency_ms   integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, conversation, seq)
);

-- One row per applied event: (tenant, source, id) is the CloudEvents identity, so a
-- redelivery is recognised whichever instances it touched.
CREATE TABLE inbox (
    tenant       text        NOT NULL,
    source       text        NOT NULL,
    id           text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, source, id)
);

CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- Debezium's outbox column names (id, aggregatetype, aggregateid, type, payload), so the
-- built-in relay and a Debezium outbox router can read the same rows.
CREATE TABLE outbox (
    -- the relay publishes in seq order; identity (not now()) because commit order and
    -- timestamps disagree under concurrency, and per key a single writer inserts in order
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text        NOT NULL, -- the CloudEvent id
    tenant        text        NOT NULL,
    aggregatetype text        NOT NULL, -- the topic
    aggregateid   text        NOT NULL, -- the event's subject = the Kafka key
    type          text        NOT NULL, -- the CloudEvent type
    payload       jsonb,
    headers       jsonb       NOT NULL DEFAULT '{}', -- ce_* headers, ce_tenant included
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

-- The relay's scan: unpublished rows in order. Partial, so it stays as small as the
-- backlog however many published rows wait for purge.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE timers (
    id          text        PRIMARY KEY, -- the machine's timer id: <instance>/<entry>/s<i>
    tenant      text        NOT NULL,
    instance_id uuid        NOT NULL,
    key         text        NOT NULL,
    workflow    text        NOT NULL,
    transition  text        NOT NULL,
    entry_seq   bigint      NOT NULL,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz
);

-- The poller claims due timers with FOR UPDATE SKIP LOCKED in due order.
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL;
-- TIMER_CANCEL deletes the unfired timers of one entry of one instance.
CREATE INDEX timers_instance ON timers (instance_id, entry_seq);

CREATE TABLE activities (
    id              text        PRIMARY KEY, -- the machine's activity id
    tenant          text        NOT NULL,
    instance_id     uuid        NOT NULL,
    key             text        NOT NULL,
    entry_seq       bigint      NOT NULL,
    action_ref      integer     NOT NULL, -- index of the call in the state's entry list
    call            text        NOT NULL,
    args            jsonb       NOT NULL DEFAULT '{}',
    "into"          text, -- quoted: INTO is reserved; the ctx field the result goes to
    retry           jsonb       NOT NULL,
    timeout_ms      bigint      NOT NULL DEFAULT 0,
    attempt         integer     NOT NULL DEFAULT 0,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- sent with every attempt (Idempotency-Key header), the same on each retry, so the
    -- callee can dedupe what at-least-once execution repeats
    idempotency_key text        NOT NULL,
    result          jsonb,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (idempotency_key = instance_id::text || ':' || action_ref || ':' || entry_seq)
);

-- The worker's scan: pending work whose next attempt is due.
CREATE INDEX activities_due ON activities (next_attempt_at) WHERE status = 'pending';
-- the worker re-claims calls left running by a crashed process (updated_at too old)
CREATE INDEX activities_running ON activities (updated_at) WHERE status = 'running';

-- One row per workflow with a `schedule:`, upserted when its definition is loaded; the
-- timer poller claims due rows, writes the tick to the outbox and moves next_at on, in one
-- transaction. The spec is copied here so the poller needs no definition to compute the
-- next time.
CREATE TABLE schedules (
    tenant   text        NOT NULL,
    workflow text        NOT NULL,
    cron     text,
    every_ms bigint      CHECK (every_ms > 0),
    next_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant, workflow),
    CHECK ((cron IS NULL) <> (every_ms IS NULL))
);

CREATE TABLE dead_letters (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant       text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer,
    kafka_offset bigint, -- "offset" is a reserved word
    key          text,
    headers      jsonb       NOT NULL DEFAULT '{}',
    -- the record's value as received: it may not be JSON or even UTF-8
    payload      bytea,
    reason       text        NOT NULL,
    detail       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz
);

CREATE INDEX dead_letters_tenant ON dead_letters (tenant, created_at);

-- Raises serialization_failure (40001) unless exactly one row was written. The store's
-- batches are pipelined (BEGIN, statements, COMMIT sent at once), so a guard that only
-- reported "0 rows" would be read after COMMIT: raising instead aborts the pipeline and
-- rolls the whole batch back. 40001 is what a conflicting concurrent writer means.
CREATE FUNCTION flowd_expect_one(n bigint, what text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF n <> 1 THEN
        RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = what;
    END IF;
END
$$;
