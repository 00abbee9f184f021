/* core/backoff.c -- retry delays and the retryable-outcome classifier (see backoff.h). */
#include "core/backoff.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

/* IMF-fixdate is exactly "Sun, 06 Nov 1994 08:49:37 GMT". */
#define IMF_FIXDATE_LEN 29

uint64_t fl_backoff_splitmix64(void *arg)
{
    uint64_t *state = arg;
    uint64_t z;

    *state += UINT64_C(0x9E3779B97F4A7C15);
    z = *state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* delay_ms * 2^(attempt-1) without overflow: doubling stops once the cap is reached, so
 * the loop runs at most 63 times whatever the attempt number. */
static int64_t policy_delay(const fl_backoff_policy *p, int attempt)
{
    int64_t cap = p->max_delay_ms > 0 ? p->max_delay_ms : INT64_MAX;
    int64_t d = p->delay_ms > 0 ? p->delay_ms : 0;

    if (d > cap) {
        d = cap;
    }
    if (p->kind != FL_BACKOFF_EXPONENTIAL || d == 0) {
        return d;
    }
    for (int i = 1; i < attempt && d < cap; i++) {
        d = d > cap / 2 ? cap : d * 2;
    }
    return d;
}

static int64_t apply_jitter(int64_t d, double jitter, fl_backoff_rand_fn rnd, void *rnd_arg)
{
    double u;
    int64_t cut;

    if (rnd == NULL || jitter <= 0.0 || d == 0) {
        return d;
    }
    if (jitter > 1.0) {
        jitter = 1.0;
    }
    u = (double)(rnd(rnd_arg) >> 11) / 9007199254740992.0; /* 53 bits -> [0, 1) */
    cut = (int64_t)((double)d * jitter * u);
    if (cut >= d) {
        cut = d - 1; /* u < 1, but the double product may round up */
    }
    return d - cut;
}

int64_t fl_backoff_delay_ms(const fl_backoff_policy *p, int attempt, fl_backoff_rand_fn rnd,
                            void *rnd_arg, int64_t retry_after_ms)
{
    int64_t d = apply_jitter(policy_delay(p, attempt), p->jitter, rnd, rnd_arg);
    int64_t ra_cap = p->max_retry_after_ms > 0 ? p->max_retry_after_ms : p->max_delay_ms;

    if (retry_after_ms > d) {
        d = retry_after_ms;
        if (ra_cap > 0 && d > ra_cap) {
            d = ra_cap;
        }
    }
    return d;
}

/* delta-seconds = 1*DIGIT; values too large for us saturate rather than fail. */
static bool parse_delta_seconds(const char *s, size_t len, int64_t *out_ms)
{
    int64_t secs = 0;

    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        if (secs < INT64_MAX / 10000) {
            secs = secs * 10 + (s[i] - '0');
        }
    }
    *out_ms = secs < INT64_MAX / 10000 ? secs * 1000 : INT64_MAX / 10;
    return true;
}

/* strptime handles the fields; the fixed length and the " GMT" suffix make it strict.
 * flowd never calls setlocale, so %a and %b are the English names HTTP uses. */
static bool parse_imf_fixdate(const char *s, size_t len, int64_t now_ms, int64_t *out_ms)
{
    struct tm tm;
    const char *end;
    time_t t;

    if (len != IMF_FIXDATE_LEN || s[3] != ',' || strncmp(s + 25, " GMT", 4) != 0) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || end != s + len) {
        return false;
    }
    t = timegm(&tm);
    if (t == (time_t)-1) {
        return false;
    }
    *out_ms = (int64_t)t * 1000 > now_ms ? (int64_t)t * 1000 - now_ms : 0;
    return true;
}

fl_rc fl_backoff_parse_retry_after(const char *value, int64_t now_ms, int64_t *out_ms, fl_err *err)
{
    const char *s = value ? value : "";
    size_t len;

    *out_ms = -1;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    if (parse_delta_seconds(s, len, out_ms) || parse_imf_fixdate(s, len, now_ms, out_ms)) {
        return FL_OK;
    }
    *out_ms = -1;
    return fl_err_set(err, FL_EINVAL,
                      "invalid Retry-After value: expected delta-seconds or an IMF-fixdate");
}

bool fl_backoff_status_is_retryable(long status)
{
    switch (status) {
    case 408: /* request timeout */
    case 425: /* too early */
    case 429: /* too many requests */
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

bool fl_backoff_rc_is_retryable(fl_rc rc)
{
    return rc == FL_ETIMEDOUT || rc == FL_EUNAVAIL;
}

bool fl_backoff_is_retryable(fl_rc rc, long status)
{
    if (rc != FL_OK) {
        return fl_backoff_rc_is_retryable(rc);
    }
    return fl_backoff_status_is_retryable(status);
}
