/* engine/relay_int.h -- what relay.c and relay_rows.c share, and nothing else sees.
 *
 * The relay is split to stay within the file budget (R12.3): relay.c (the thread and its
 * passes) and relay_rows.c (the pure parts).
 *
 * Thread-safety: a held set belongs to one pass of the relay thread. */
#ifndef FL_ENGINE_RELAY_INT_H
#define FL_ENGINE_RELAY_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/relay.h"

/* A set of (topic, key) pairs held back after a failure, as the keys of a jansson object
 * (json_object()); only these two functions know how a pair is spelled. */
void fl_relay__held_add(json_t *held, const char *topic, const char *key);
bool fl_relay__held_has(const json_t *held, const char *topic, const char *key);

#endif
