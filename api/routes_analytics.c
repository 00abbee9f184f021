/* api/routes_analytics.c -- read-only numbers about the caller's tenant, computed from
 * PostgreSQL on each request (issue 7 item 4):
 *
 *   GET /api/v1/stats                          an overview: instances, conversations,
 *                                              usage today and in total, backlogs
 *   GET /api/v1/analytics/usage/daily          per UTC day: conversations, messages,
 *                                              tokens, cost, and per provider/model
 *   GET /api/v1/analytics/agents/performance   per agent: replies, latency, usage,
 *                                              escalations, errors
 *   GET /api/v1/analytics/workflows            per workflow: outcomes, durations,
 *                                              transitions
 *
 * The last three take ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, both inclusive; default
 * the last 30 days, at most 366; api/routes_analytics_range.c). Every statement filters
 * on the caller's tenant first ($1), so another tenant's rows never count, and builds
 * its whole answer as one JSON value. The comment above each statement names the index
 * that bounds it.
 *
 * Time ranges over `instances` use its id: ids are UUIDv7 (schemas/sql/004_api_lists.sql),
 * so the range [lo, hi) of created_at maps to the id range [uuid7(lo), uuid7(hi)), an
 * index range scan on instances_tenant_id (tenant, id DESC) with no index on created_at.
 * The id's clock is the engine's and created_at is Postgres's, so the id bound is widened
 * by an hour and created_at decides.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdio.h>
#include <string.h>

#include "api/conv_sql.h"
#include "api/request.h"
#include "api/routes.h"
#include "api/routes_analytics_int.h"
#include "core/clock.h"

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* [from 00:00 UTC, the day after `to` 00:00 UTC) of the dates $2 and $3. */
#define LO "($2::date::timestamp AT TIME ZONE 'UTC')"
#define HI "(($3::date + 1)::timestamp AT TIME ZONE 'UTC')"

/* The smallest UUIDv7 of the millisecond of timestamptz `ts` (48-bit Unix ms, then 0s). */
#define UUID7_AT(ts)                                                               \
    "(lpad(to_hex(floor(extract(epoch FROM " ts ") * 1000)::bigint), 12, '0') || " \
    "repeat('0', 20))::uuid"

/* The instances of tenant $1 (aliased i) created in [LO, HI): see the top comment. */
#define INSTANCES_IN_RANGE                                                                    \
    "i.tenant = $1 AND i.id >= " UUID7_AT(LO " - interval '1 hour'") " AND i.id < " UUID7_AT( \
        HI " + interval '1 hour'") " AND i.created_at >= " LO " AND i.created_at < " HI

/* Usage counters of the `messages` rows aliased m for which `cond` holds. */
#define USAGE(cond)                                                                     \
    "json_build_object('messages', count(*) FILTER (WHERE " cond "), "                  \
    "'user_messages', count(*) FILTER (WHERE " cond " AND m.role = 'user'), "           \
    "'assistant_messages', count(*) FILTER (WHERE " cond " AND m.role = 'assistant'), " \
    "'tokens_in', COALESCE(sum(m.tokens_in) FILTER (WHERE " cond "), 0), "              \
    "'tokens_out', COALESCE(sum(m.tokens_out) FILTER (WHERE " cond "), 0), "            \
    "'cost', COALESCE(sum(m.cost) FILTER (WHERE " cond "), 0)::float8)"

#define TODAY "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"

/* Instance counts by status of the rows aliased i. */
#define BY_STATUS                                                   \
    "json_build_object('total', count(*), "                         \
    "'running', count(*) FILTER (WHERE i.status = 'running'), "     \
    "'completed', count(*) FILTER (WHERE i.status = 'completed'), " \
    "'failed', count(*) FILTER (WHERE i.status = 'failed'), "       \
    "'cancelled', count(*) FILTER (WHERE i.status = 'cancelled'))"

/* /stats. inst: one pass over the tenant's instances (instances_tenant_id). usage: one
 * pass over its transcript (messages' primary key prefix; the total has no bound by
 * nature). Each backlog count stays inside a partial index: dead_letters_tenant,
 * timers_due (unfired), activities_due / activities_running / activities_failed,
 * outbox_unpublished. */
static const char sql_stats[] =
    "WITH inst AS MATERIALIZED (SELECT i.workflow, i.status, i.state, i.context "
    "FROM instances i WHERE i.tenant = $1), "
    "wf AS (SELECT i.workflow, " BY_STATUS " AS o FROM inst i GROUP BY i.workflow), "
    "conv AS (SELECT " FL_CONV_SQL_STATUS " AS s FROM inst i "
    "WHERE i.workflow = '" FL_CONV_SQL_WORKFLOW "') "
    "SELECT json_build_object('tenant', $1::text, 'generated_at', " TS(
        "now()") ", "
                 "'instances', (SELECT json_build_object('total', count(*), 'by_status', "
                 "json_build_object('running', count(*) FILTER (WHERE i.status = 'running'), "
                 "'completed', count(*) FILTER (WHERE i.status = 'completed'), "
                 "'failed', count(*) FILTER (WHERE i.status = 'failed'), "
                 "'cancelled', count(*) FILTER (WHERE i.status = 'cancelled')), "
                 "'by_workflow', (SELECT COALESCE(json_object_agg(wf.workflow, wf.o ORDER BY "
                 "wf.workflow), "
                 "'{}') FROM wf)) FROM inst i), "
                 "'conversations', (SELECT json_build_object('total', count(*), "
                 "'active', count(*) FILTER (WHERE s = 'active'), "
                 "'ended', count(*) FILTER (WHERE s = 'ended'), "
                 "'escalated', count(*) FILTER (WHERE s = 'escalated')) FROM conv), "
                 "'usage', (SELECT json_build_object('today', " USAGE(
                     "m.created_at >= " TODAY) ", "
                                               "'total', " USAGE(
                                                   "true") ") FROM messages m WHERE m.tenant = "
                                                           "$1), "
                                                           "'dead_letters', "
                                                           "json_build_object('unreplayed', "
                                                           "(SELECT count(*) FROM dead_letters d "
                                                           "WHERE d.tenant = $1 AND d.replayed_at "
                                                           "IS NULL)), "
                                                           "'timers', json_build_object('pending', "
                                                           "(SELECT count(*) FROM timers t "
                                                           "WHERE t.fired_at IS NULL AND t.tenant "
                                                           "= $1)), "
                                                           "'activities', json_build_object("
                                                           "'pending', (SELECT count(*) FROM "
                                                           "activities a WHERE a.status = "
                                                           "'pending' AND a.tenant = $1), "
                                                           "'running', (SELECT count(*) FROM "
                                                           "activities a WHERE a.status = "
                                                           "'running' AND a.tenant = $1), "
                                                           "'failed', (SELECT count(*) FROM "
                                                           "activities a WHERE a.status = 'failed' "
                                                           "AND a.tenant = $1)), "
                                                           "'outbox', json_build_object('backlog', "
                                                           "(SELECT count(*) FROM outbox o "
                                                           "WHERE o.published_at IS NULL AND "
                                                           "o.tenant = $1)))";

/* The per-day object of usage/daily for the day `d.day` and its md row (may be NULL). */
#define DAY_USAGE(day_expr, grouped)                                                         \
    "'conversations_started', COALESCE((SELECT sum(c.n) FROM c WHERE " day_expr "), 0), "    \
    "'messages', COALESCE(md.messages, 0), 'user_messages', COALESCE(md.user_messages, 0), " \
    "'assistant_messages', COALESCE(md.assistant_messages, 0), "                             \
    "'tokens_in', COALESCE(md.tokens_in, 0), 'tokens_out', COALESCE(md.tokens_out, 0), "     \
    "'cost', COALESCE(md.cost, 0), 'by_model', COALESCE((SELECT json_agg("                   \
    "json_build_object('provider', pm.provider, 'model', pm.model, 'replies', pm.replies, "  \
    "'tokens_in', pm.tokens_in, 'tokens_out', pm.tokens_out, 'cost', pm.cost) "              \
    "ORDER BY pm.provider, pm.model) FROM pm WHERE " grouped "), '[]')"

/* usage/daily. m: messages_tenant_created (schemas/sql/007_analytics.sql) bounds the
 * tenant's transcript to the range; c: instances_tenant_id through the UUIDv7 range.
 * ROLLUP / GROUPING SETS give the per-day rows and the range's totals in one pass. */
static const char sql_usage_daily[] =
    "WITH m AS (SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, m.role, m.provider, "
    "m.model, m.tokens_in, m.tokens_out, m.cost FROM messages m WHERE m.tenant = $1 "
    "AND m.created_at >= " LO " AND m.created_at < " HI "), "
    "c AS (SELECT (i.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
    "FROM instances i WHERE " INSTANCES_IN_RANGE " AND i.workflow = '" FL_CONV_SQL_WORKFLOW
    "' GROUP BY 1), "
    "md AS (SELECT day, GROUPING(day) AS g, count(*) AS messages, count(*) FILTER (WHERE role = "
    "'user') AS "
    "user_messages, count(*) FILTER (WHERE role = 'assistant') AS assistant_messages, "
    "COALESCE(sum(tokens_in), 0) AS tokens_in, COALESCE(sum(tokens_out), 0) AS tokens_out, "
    "COALESCE(sum(cost), 0)::float8 AS cost FROM m GROUP BY ROLLUP (day)), "
    "pm AS (SELECT day, GROUPING(day) AS g, provider, model, count(*) AS replies, "
    "COALESCE(sum(tokens_in), 0) AS tokens_in, COALESCE(sum(tokens_out), 0) AS tokens_out, "
    "COALESCE(sum(cost), 0)::float8 AS cost FROM m WHERE provider IS NOT NULL OR model IS NOT NULL "
    "GROUP BY GROUPING SETS ((day, provider, model), (provider, model))) "
    "SELECT json_build_object('from', $2::date, 'to', $3::date, "
    "'days', (SELECT json_agg(json_build_object('date', d.day, " DAY_USAGE(
        "c.day = d.day",
        "pm.g = 0 AND pm.day = d.day") ") ORDER BY d.day) "
                                       "FROM (SELECT g::date AS day FROM "
                                       "generate_series($2::date, $3::date, "
                                       "interval '1 day') g) d "
                                       "LEFT JOIN md ON md.g = 0 AND md.day "
                                       "= d.day), "
                                       "'totals', (SELECT json_build_object(" DAY_USAGE(
                                           "true", "pm.g = 1") ") "
                                                               "FROM (SELECT 1) one "
                                                               "LEFT JOIN md ON md.g "
                                                               "= 1))";

/* agents/performance. r: messages_tenant_created; escalations and errors look up the
 * agent's conversations by key (instances_key) and their history by primary key. An error
 * is an entry into the conversation workflow's ERROR_RECOVERY stage within the range. */
static const char sql_agents[] =
    "WITH r AS (SELECT m.agent, m.conversation, m.latency_ms, m.tokens_in, m.tokens_out, "
    "m.cost FROM messages m WHERE m.tenant = $1 AND m.created_at >= " LO " AND m.created_at < " HI
    " AND m.role = 'assistant'), "
    "a AS (SELECT agent, count(*) AS replies, count(DISTINCT conversation) AS conversations, "
    "round(avg(latency_ms), 3)::float8 AS avg, "
    "round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms))::numeric, 3)::float8 AS p50, "
    "round((percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms))::numeric, 3)::float8 AS p95, "
    "COALESCE(sum(tokens_in), 0) AS tokens_in, COALESCE(sum(tokens_out), 0) AS tokens_out, "
    "COALESCE(sum(cost), 0)::float8 AS cost, array_agg(DISTINCT conversation) AS convs "
    "FROM r GROUP BY agent) "
    "SELECT json_build_object('from', $2::date, 'to', $3::date, 'agents', "
    "COALESCE(json_agg(json_build_object('agent', a.agent, 'replies', a.replies, "
    "'conversations', a.conversations, "
    "'latency_ms', json_build_object('avg', a.avg, 'p50', a.p50, 'p95', a.p95), "
    "'tokens_in', a.tokens_in, 'tokens_out', a.tokens_out, 'cost', a.cost, "
    "'escalations', (SELECT count(DISTINCT i.key) FROM instances i WHERE i.tenant = $1 "
    "AND i.key = ANY (a.convs) AND i.workflow = '" FL_CONV_SQL_WORKFLOW "' "
    "AND i.context->'escalated' = 'true'::jsonb), "
    "'errors', (SELECT count(*) FROM instances i JOIN history h ON h.instance_id = i.id "
    "WHERE i.tenant = $1 AND i.key = ANY (a.convs) AND i.workflow = '" FL_CONV_SQL_WORKFLOW "' "
    "AND h.to_state = 'ERROR_RECOVERY' AND h.from_state IS DISTINCT FROM 'ERROR_RECOVERY' "
    "AND h.created_at >= " LO " AND h.created_at < " HI ")) "
    "ORDER BY a.agent NULLS LAST), '[]')) FROM a";

/* workflows. The cohort of instances created in the range (instances_tenant_id through
 * the UUIDv7 range) with their current outcome; transitions counts their history rows
 * (history's primary key). Durations are those of the finished ones, in seconds. */
static const char sql_workflows[] =
    "WITH i AS (SELECT i.workflow, i.status, CASE WHEN i.status <> 'running' THEN "
    "extract(epoch FROM COALESCE(i.finished_at, i.updated_at) - i.created_at) END AS dur, "
    "(SELECT count(*) FROM history h WHERE h.instance_id = i.id) AS transitions "
    "FROM instances i WHERE " INSTANCES_IN_RANGE "), "
    "w AS (SELECT i.workflow, count(*) AS started, "
    "count(*) FILTER (WHERE i.status = 'completed') AS completed, "
    "count(*) FILTER (WHERE i.status = 'failed') AS failed, "
    "count(*) FILTER (WHERE i.status = 'cancelled') AS cancelled, "
    "count(*) FILTER (WHERE i.status = 'running') AS running, "
    "round(avg(i.dur), 3)::float8 AS avg, "
    "round((percentile_cont(0.95) WITHIN GROUP (ORDER BY i.dur))::numeric, 3)::float8 AS p95, "
    "sum(i.transitions) AS transitions FROM i GROUP BY i.workflow) "
    "SELECT json_build_object('from', $2::date, 'to', $3::date, 'workflows', "
    "COALESCE(json_agg(json_build_object('workflow', w.workflow, 'started', w.started, "
    "'completed', w.completed, 'failed', w.failed, 'cancelled', w.cancelled, "
    "'running', w.running, 'duration_seconds', json_build_object('avg', w.avg, 'p95', w.p95), "
    "'transitions', w.transitions) ORDER BY w.workflow), '[]')) FROM w";

/* Runs a statement whose one cell is the whole answer and sends that text as it is:
 * Postgres prints numbers exactly (float8 shortest round-trip), where a trip through
 * jansson would print 0.003 as 0.0030000000000000001. */
static int reply_sql(fl_req *r, const char *sql, int n, const char *const *p)
{
    fl_pg_rows *rows = NULL;
    const char *text;
    int status;

    if (!fl_req_db(r, sql, n, p, &rows)) {
        return r->status;
    }
    text = fl_pg_rows_count(rows) > 0 ? fl_pg_rows_get(rows, 0, 0) : NULL;
    if (text) {
        status = fl_req_send(r, 200, "application/json", text, strlen(text));
    } else {
        status = fl_problem(r, 500, "the statement returned no row");
    }
    fl_pg_rows_free(rows);
    return status;
}

static int stats(fl_req *r)
{
    const char *p[1] = {r->who.tenant};

    return reply_sql(r, sql_stats, 1, p);
}

/* Runs one of the ranged statements ($1 tenant, $2 from, $3 to) and answers with it. */
static int ranged(fl_req *r, const char *sql)
{
    char from[32], to[32];
    bool has_from = fl_req_query(r, "from", from, sizeof(from)) && from[0];
    bool has_to = fl_req_query(r, "to", to, sizeof(to)) && to[0];
    int64_t today = fl_clock_now_ms(fl_clock_system()) / 86400000;
    fl_analytics_range range;
    const char *bad;
    const char *p[3];

    bad = fl_analytics__range(has_from ? from : NULL, has_to ? to : NULL, today, &range);
    if (bad) {
        return fl_problem(r, 400, "%s", bad);
    }
    p[0] = r->who.tenant;
    p[1] = range.from;
    p[2] = range.to;
    return reply_sql(r, sql, 3, p);
}

static int usage_daily(fl_req *r)
{
    return ranged(r, sql_usage_daily);
}

static int agents_performance(fl_req *r)
{
    return ranged(r, sql_agents);
}

static int workflows(fl_req *r)
{
    return ranged(r, sql_workflows);
}

static const fl_route analytics_routes[] = {
    {"GET", "/api/v1/stats", stats, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/analytics/usage/daily", usage_daily, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/analytics/agents/performance", agents_performance, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/analytics/workflows", workflows, FL_SCOPE_READ, 0},
};

void fl_routes_analytics(fl_router *rt)
{
    fl_router_add(rt, analytics_routes, sizeof(analytics_routes) / sizeof(analytics_routes[0]));
}
