/* api/conv_sql.h -- SQL fragments over conversation instances that more than the
 * conversation routes need: api/conversations_read.c (the conversation object) and
 * api/routes_analytics*.c (/stats) derive a conversation's status from the same text, so
 * the two can never disagree.
 *
 * A conversation is an instance of the shipped workflow `conversation`; its status is
 *   ended      the instance is no longer running or is in ENDED (ended wins over
 *              escalated: an escalated conversation that closes is closed);
 *   escalated  running and its context says `escalated: true`;
 *   active     otherwise.
 *
 * Thread-safety: compile-time constants. */
#ifndef FL_API_CONV_SQL_H
#define FL_API_CONV_SQL_H

#define FL_CONV_SQL_WORKFLOW "conversation"

/* The status of the `instances` row aliased `i`, as text. */
#define FL_CONV_SQL_STATUS                                                \
    "(CASE WHEN i.status <> 'running' OR i.state = 'ENDED' THEN 'ended' " \
    "WHEN i.context->'escalated' = 'true'::jsonb THEN 'escalated' ELSE 'active' END)"

#endif
