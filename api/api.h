/* api/api.h -- what every route handler can reach: the process's shared services.
 *
 * One fl_api per server, built by fl_server_start from what `flowd serve` opened and
 * freed by fl_server_stop. Handlers get it through their request (r->api).
 *
 * Thread-safety: the struct is immutable once the server runs, except sse_streams
 * (atomic); every service it points to is thread-safe on its own. */
#ifndef FL_API_API_H
#define FL_API_API_H

#include <stdatomic.h>

#include "core/config.h"
#include "core/health.h"
#include "core/ids.h"
#include "core/kafka.h"
#include "core/pg.h"

typedef struct fl_router fl_router;
typedef struct fl_keys fl_keys;
typedef struct fl_ratelimit fl_ratelimit;
typedef struct fl_notify fl_notify;
typedef struct fl_agents fl_agents;
typedef struct fl_llm_chain fl_llm_chain;

typedef struct fl_api {
    const fl_config *cfg;
    fl_pg_pool *pool;            /* borrowed from `flowd serve` */
    fl_kafka_producer *producer; /* borrowed */
    fl_health *health;           /* borrowed */
    fl_llm_chain *llm;           /* borrowed: the process's LLM chain (the gateway's) */
    fl_keys *keys;               /* owned: API key checks (api/keys.h) */
    fl_ratelimit *limiter;       /* owned: per-key token buckets (api/ratelimit.h) */
    fl_notify *notify;           /* owned: the LISTEN flowd_changes hub (api/notify.h) */
    fl_router *router;           /* owned: the route table (api/router.h) */
    fl_ids *ids;                 /* owned: UUIDv7s for request ids, event ids, new keys */
    fl_agents *agents;           /* owned: agent profiles, engine.agents_dir (engine/agents.h) */
    atomic_int streams;          /* open SSE streams and long-polls, capped by api.max_streams */
} fl_api;

#endif
