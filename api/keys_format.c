/* api/keys_format.c -- the key text, its digest and the scope names (no I/O but
 * getrandom). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "api/keys_int.h"
#include "engine/cloudevent.h"

static const char hexdig[] = "0123456789abcdef";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fl_scope fl_scope_parse(const char *s)
{
    if (s == NULL) {
        return FL_SCOPE_NONE;
    }
    if (!strcmp(s, "read")) {
        return FL_SCOPE_READ;
    }
    if (!strcmp(s, "write")) {
        return FL_SCOPE_WRITE;
    }
    if (!strcmp(s, "admin")) {
        return FL_SCOPE_ADMIN;
    }
    return FL_SCOPE_NONE;
}

const char *fl_scope_name(fl_scope s)
{
    switch (s) {
    case FL_SCOPE_READ:
        return "read";
    case FL_SCOPE_WRITE:
        return "write";
    case FL_SCOPE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(set, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

bool fl_keys__id_valid(const char *id)
{
    return id != NULL && strlen(id) == FL_KEY_ID_LEN && all_of(id, FL_KEY_ID_LEN, hexdig);
}

bool fl_keys__parse(const char *key, fl_key_text *out)
{
    const char *id, *secret;

    if (key == NULL || strlen(key) != FL_KEY_LEN || strncmp(key, "fk_", 3) != 0) {
        return false;
    }
    id = key + 3;
    secret = id + FL_KEY_ID_LEN + 1;
    if (!all_of(id, FL_KEY_ID_LEN, hexdig) || id[FL_KEY_ID_LEN] != '_' ||
        !all_of(secret, FL_KEY_SECRET_LEN, b64url)) {
        return false;
    }
    memcpy(out->id, id, FL_KEY_ID_LEN);
    out->id[FL_KEY_ID_LEN] = '\0';
    memcpy(out->secret, secret, FL_KEY_SECRET_LEN);
    out->secret[FL_KEY_SECRET_LEN] = '\0';
    return true;
}

bool fl_keys__parse_bearer(const char *authorization, fl_key_text *out)
{
    const char *p = authorization;

    /* RFC 9110 section 11.1: the scheme is case-insensitive; RFC 6750: one or more SP */
    if (p == NULL || strncasecmp(p, "Bearer ", 7) != 0) {
        return false;
    }
    p += 7;
    while (*p == ' ') {
        p++;
    }
    return fl_keys__parse(p, out);
}

void fl_keys__format(const uint8_t id[FL_KEY_ID_BYTES], const uint8_t secret[FL_KEY_SECRET_BYTES],
                     char out[FL_KEY_LEN + 1])
{
    unsigned char b64[4 * ((FL_KEY_SECRET_BYTES + 2) / 3) + 1];
    char *p = out;

    /* OpenSSL's standard base64, then the URL-safe alphabet without padding (RFC 4648
     * section 5), so the key needs no quoting in a shell, a URL or a header */
    EVP_EncodeBlock(b64, secret, FL_KEY_SECRET_BYTES);
    for (size_t i = 0; i < FL_KEY_SECRET_LEN; i++) {
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    }
    memcpy(p, "fk_", 3);
    p += 3;
    fl_keys__hex(id, FL_KEY_ID_BYTES, p);
    p += FL_KEY_ID_LEN;
    *p++ = '_';
    memcpy(p, b64, FL_KEY_SECRET_LEN);
    p[FL_KEY_SECRET_LEN] = '\0';
}

void fl_keys__digest(const char *secret, uint8_t out[FL_KEY_DIGEST_LEN])
{
    unsigned int n = 0;

    /* cannot fail for SHA-256 short of OOM inside OpenSSL, which it reports as 0 */
    if (!EVP_Digest(secret, strlen(secret), out, &n, EVP_sha256(), NULL) ||
        n != FL_KEY_DIGEST_LEN) {
        memset(out, 0, FL_KEY_DIGEST_LEN);
    }
}

bool fl_keys__digest_equal(const uint8_t a[FL_KEY_DIGEST_LEN], const uint8_t b[FL_KEY_DIGEST_LEN])
{
    return CRYPTO_memcmp(a, b, FL_KEY_DIGEST_LEN) == 0;
}

/* One item of a scope list: [s, e) trimmed of spaces. */
static fl_scope scope_item(const char *s, const char *e)
{
    char word[8];

    while (s < e && *s == ' ') {
        s++;
    }
    while (e > s && e[-1] == ' ') {
        e--;
    }
    if (e - s <= 0 || (size_t)(e - s) >= sizeof(word)) {
        return FL_SCOPE_NONE;
    }
    memcpy(word, s, (size_t)(e - s));
    word[e - s] = '\0';
    return fl_scope_parse(word);
}

fl_scope fl_keys__scopes_parse(const char *list)
{
    fl_scope best = FL_SCOPE_NONE;
    const char *s = list;

    if (list == NULL) {
        return FL_SCOPE_NONE;
    }
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *e = comma ? comma : s + strlen(s);
        fl_scope one = scope_item(s, e);
        if (one == FL_SCOPE_NONE) {
            return FL_SCOPE_NONE;
        }
        best = one > best ? one : best;
        if (comma == NULL) {
            return best;
        }
        s = comma + 1;
    }
}

bool fl_keys__name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0, chars = 0;

    if (n == 0 || !fl_ce_utf8_valid(name, n)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
        chars += (c & 0xc0) != 0x80; /* count lead bytes: characters, as SQL length() */
    }
    return chars <= FL_KEY_NAME_MAX;
}

fl_rc fl_keys__random(uint8_t *out, size_t n, fl_err *err)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r < 0) {
            return fl_err_set(err, FL_EINTERNAL, "getrandom failed");
        }
        got += (size_t)r;
    }
    return FL_OK;
}

void fl_keys__hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    const char *p = c ? strchr(hexdig, c) : NULL;

    if (p) {
        return (int)(p - hexdig);
    }
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool fl_keys__unhex(const char *hex, uint8_t *out, size_t n)
{
    if (hex == NULL || strlen(hex) != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
