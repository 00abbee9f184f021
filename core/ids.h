/* core/ids.h -- UUIDv7 identifiers (RFC 9562): time-ordered, so ids sort by creation and
 * index well in PostgreSQL's btrees.
 *
 * Within one generator, ids are strictly increasing even within one millisecond or when
 * the wall clock steps back: the 12-bit rand_a field is a counter seeded randomly each
 * new millisecond (RFC 9562 section 6.2, method 1), and the timestamp never decreases.
 *
 * Thread-safety: fl_ids_uuid7 may be called from any thread (internal mutex);
 * fl_random_bytes keeps a small pool per thread. */
#ifndef FL_CORE_IDS_H
#define FL_CORE_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

#define FL_UUID_STRLEN 36

typedef struct fl_ids fl_ids;

/* Ownership: the result is owned by the caller (fl_ids_free). The clock is borrowed and
 * must outlive the generator. */
fl_ids *fl_ids_new(const fl_clock *clock);
void fl_ids_free(fl_ids *ids);

/* Writes a lower-case UUIDv7 and its NUL into out. */
void fl_ids_uuid7(fl_ids *ids, char out[FL_UUID_STRLEN + 1]);

/* The 16 raw bytes, for callers that store uuid columns in binary. */
void fl_ids_uuid7_bytes(fl_ids *ids, uint8_t out[16]);

/* n bytes from the kernel's CSPRNG, drawn 256 at a time per thread: for identifiers
 * (ids, trace ids), not for secrets. Any thread. */
void fl_random_bytes(void *out, size_t n);

#endif
