/* api/routes.h -- the route groups. Each api/routes_<group>.c holds one static fl_route
 * table and its handlers, and registers the table here; api/server.c calls every one.
 *
 * Thread-safety: called once, before the server starts. */
#ifndef FL_API_ROUTES_H
#define FL_API_ROUTES_H

#include "api/router.h"

void fl_routes_health(fl_router *rt);        /* /livez /readyz (api/server.c) */
void fl_routes_docs(fl_router *rt);          /* /openapi.json /docs */
void fl_routes_keys(fl_router *rt);          /* /api/v1/keys */
void fl_routes_events(fl_router *rt);        /* /api/v1/events, /api/v1/kafka/... */
void fl_routes_workflows(fl_router *rt);     /* /api/v1/workflows... */
void fl_routes_instances(fl_router *rt);     /* /api/v1/instances... */
void fl_routes_dead_letters(fl_router *rt);  /* /api/v1/dead-letters... */
void fl_routes_conversations(fl_router *rt); /* /api/v1/conversations..., /api/v1/agents */
void fl_routes_compat(fl_router *rt);        /* the origin documents' routes, /health */
void fl_routes_metrics(fl_router *rt);       /* /metrics (Prometheus) */
void fl_routes_analytics(fl_router *rt);     /* /api/v1/stats, /api/v1/analytics/... */
void fl_routes_businesses(fl_router *rt);    /* /api/v1/businesses... (directory) */
void fl_routes_memory(fl_router *rt);        /* /api/v1/memory... */
void fl_routes_gateway(fl_router *rt);       /* /v1/chat/completions, /v1/models (OpenAI) */

#endif
