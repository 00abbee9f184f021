/* api/idem_int.h -- private to api/idem*.c and tests/unit/test_idem.c: sealing stored
 * responses.
 *
 * A recorded response may hold secrets (POST /api/v1/keys answers with the new key's text)
 * and personal data, and it sits in idempotency_keys for api.idempotency_ttl. It is
 * therefore stored sealed (AES-256-GCM) under a key derived from the caller's API key
 * secret, which the database never holds (api_keys has only its SHA-256, and the derivation
 * uses another domain): a copy of the table reveals no response, and only a retry that
 * presents the same API key can have it replayed.
 *
 * Thread-safety: reentrant. */
#ifndef FL_API_IDEM_INT_H
#define FL_API_IDEM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_IDEM_SEAL_OVERHEAD (12 + 16) /* nonce + tag */

/* nonce || ciphertext || tag for plain[0..len). Ownership: *out is the caller's (free).
 * False only when the cipher fails (never expected). */
bool fl_idem__seal(const char *secret, const void *plain, size_t len, uint8_t **out,
                   size_t *out_len);

/* The plain text of what fl_idem__seal made with the same secret; false when the secret
 * differs or the data was altered. Ownership: *plain (NUL-terminated) is the caller's. */
bool fl_idem__open(const char *secret, const uint8_t *sealed, size_t len, char **plain,
                   size_t *plain_len);

#endif
