/* engine/llm_local_slots.c -- slot extraction of the `local` provider (llm_local_int.h).
 *
 * Design: a message is cut into at most MAX_TOKENS lower-case words (letters, digits, ':'
 * and '.'; everything else separates), and small fixed rules look at a word and its
 * neighbours. Dates are whole days counted from 1970-01-01 (H. Hinnant's civil-date
 * algorithms), so "tomorrow" or "on friday" only depend on the reference day the caller
 * passes -- never on a clock -- and a replayed call extracts the same slots. */
#include "engine/llm_local_int.h"

#include "core/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 96
#define TOKEN_MAX  32

typedef struct toks {
    char t[MAX_TOKENS][TOKEN_MAX];
    int n;
} toks;

static void tokenize(const char *s, toks *out)
{
    out->n = 0;
    while (*s && out->n < MAX_TOKENS) {
        size_t len = 0;

        while (*s && !(isalnum((unsigned char)*s) || *s == ':')) {
            s++;
        }
        while (*s && (isalnum((unsigned char)*s) || *s == ':' || *s == '.')) {
            if (len + 1 < TOKEN_MAX) {
                out->t[out->n][len++] = (char)tolower((unsigned char)*s);
            }
            s++;
        }
        while (len > 0 && out->t[out->n][len - 1] == '.') {
            len--; /* a sentence's full stop */
        }
        if (len > 0) {
            out->t[out->n][len] = '\0';
            out->n++;
        }
    }
}

static const char *tok(const toks *t, int i)
{
    return i >= 0 && i < t->n ? t->t[i] : "";
}

static bool is(const toks *t, int i, const char *word)
{
    return strcmp(tok(t, i), word) == 0;
}

/* A count: digits, or a number word ("a"/"an" count when a_is_one). -1 otherwise. */
static int number_of(const char *w, bool a_is_one)
{
    static const char *const words[] = {"zero", "one",    "two",    "three", "four",
                                        "five", "six",    "seven",  "eight", "nine",
                                        "ten",  "eleven", "twelve", NULL};
    char *end;
    long v;

    for (int i = 0; words[i]; i++) {
        if (strcmp(w, words[i]) == 0) {
            return i;
        }
    }
    if (a_is_one && (strcmp(w, "a") == 0 || strcmp(w, "an") == 0)) {
        return 1;
    }
    v = strtol(w, &end, 10);
    return *w && !*end && v >= 0 && v <= 1000 ? (int)v : -1;
}

/* ---- dates -------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

fl_local_day fl_local__day_of(const char *s)
{
    fl_local_day out = {false, 0};
    int y, m, d;

    if (s && sscanf(s, "%4d-%2d-%2d", &y, &m, &d) == 3 && m >= 1 && m <= 12 && d >= 1 && d <= 31) {
        out.known = true;
        out.days = days_from_civil(y, (unsigned)m, (unsigned)d);
    }
    return out;
}

static const char *const weekdays[] = {"monday", "tuesday",  "wednesday", "thursday",
                                       "friday", "saturday", "sunday",    NULL};

/* 0 = monday ... 6 = sunday, or -1. */
static int weekday_of(const char *w)
{
    for (int i = 0; weekdays[i]; i++) {
        if (strcmp(w, weekdays[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void set_day(json_t *slots, int64_t days)
{
    char buf[16];
    int y, m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
    json_object_set_new(slots, "date", json_string(buf));
}

/* An ISO date anywhere in the text. */
static bool iso_date(const char *s, json_t *slots)
{
    for (; *s; s++) {
        int y, m, d, n = 0;

        if (isdigit((unsigned char)*s) && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 &&
            n == 10 && m >= 1 && m <= 12 && d >= 1 && d <= 31) {
            set_day(slots, days_from_civil(y, (unsigned)m, (unsigned)d));
            return true;
        }
    }
    return false;
}

/* today, tomorrow, the day after tomorrow, (next) monday...: the next such day after today. */
static void date_slot(const toks *t, const char *text, fl_local_day today, json_t *slots)
{
    if (iso_date(text, slots) || !today.known) {
        return;
    }
    for (int i = 0; i < t->n; i++) {
        int wd = weekday_of(tok(t, i));

        if (is(t, i, "tomorrow")) {
            set_day(slots, today.days + (is(t, i - 1, "after") ? 2 : 1));
            return;
        }
        if (is(t, i, "today") || is(t, i, "tonight")) {
            set_day(slots, today.days);
            return;
        }
        if (wd >= 0) {
            int now = (int)(((today.days + 3) % 7 + 7) % 7); /* 1970-01-01 was a thursday */
            int ahead = (wd - now + 7) % 7;

            set_day(slots, today.days + (ahead == 0 ? 7 : ahead));
            return;
        }
    }
}

/* ---- times -------------------------------------------------------------------------- */

/* "3pm", "3:30pm", "15:00", "3" followed by "pm" / "am": minutes of the day, or -1. */
static int time_of(const toks *t, int i, bool bare_ok)
{
    const char *w = tok(t, i);
    int h = -1, m = 0, n = 0;
    char suffix[8] = "";

    if (strcmp(w, "noon") == 0 || strcmp(w, "midday") == 0) {
        return 12 * 60;
    }
    if (sscanf(w, "%2d:%2d%n", &h, &m, &n) == 2 || sscanf(w, "%2d%n", &h, &n) == 1) {
        snprintf(suffix, sizeof(suffix), "%s", w + n);
    }
    if (h < 0 || h > 23 || m < 0 || m > 59) {
        return -1;
    }
    if (!suffix[0] && (is(t, i + 1, "pm") || is(t, i + 1, "am"))) {
        snprintf(suffix, sizeof(suffix), "%s", tok(t, i + 1));
    }
    if (strcmp(suffix, "pm") == 0 || strcmp(suffix, "p.m") == 0) {
        return h > 12 ? -1 : (h % 12 + 12) * 60 + m;
    }
    if (strcmp(suffix, "am") == 0 || strcmp(suffix, "a.m") == 0) {
        return h > 12 ? -1 : (h % 12) * 60 + m;
    }
    if (suffix[0]) {
        return -1;
    }
    if (strchr(w, ':')) {
        return h * 60 + m;
    }
    /* "at 7": shop hours, so 1..7 are afternoon and evening */
    return bare_ok ? (h >= 1 && h <= 7 ? h + 12 : h) * 60 : -1;
}

static void set_time(json_t *obj, const char *name, int minutes)
{
    char buf[8];

    snprintf(buf, sizeof(buf), "%02d:%02d", minutes / 60, minutes % 60);
    json_object_set_new(obj, name, json_string(buf));
}

/* The times of the message in order (at most two), -1 when absent. */
static int times_of(const toks *t, int out[2])
{
    int n = 0;

    out[0] = out[1] = -1;
    for (int i = 0; i < t->n && n < 2; i++) {
        int v = time_of(t, i, is(t, i - 1, "at"));

        if (v >= 0) {
            out[n++] = v;
        }
    }
    return n;
}

/* ---- party, items, service ---------------------------------------------------------- */

static void party_slot(const toks *t, json_t *slots)
{
    for (int i = 0; i < t->n; i++) {
        int n = number_of(tok(t, i), false);
        const char *next = tok(t, i + 1);

        if (n < 1 || n > 100) {
            continue;
        }
        if (strcmp(next, "people") == 0 || strcmp(next, "persons") == 0 ||
            strcmp(next, "guests") == 0 || strcmp(next, "adults") == 0 ||
            ((is(t, i - 1, "for") || is(t, i - 1, "of")) &&
             (is(t, i - 2, "table") || is(t, i - 2, "party") || is(t, i - 2, "booking") || !*next ||
              strcmp(next, "at") == 0 || strcmp(next, "on") == 0 || strcmp(next, "tomorrow") == 0 ||
              strcmp(next, "today") == 0))) {
            json_object_set_new(slots, "party_size", json_integer(n));
            return;
        }
    }
}

/* Menu words: singular name, plural. */
static const char *const foods[][2] = {
    {"pizza", "pizzas"},        {"burger", "burgers"},
    {"salad", "salads"},        {"pasta", "pastas"},
    {"sushi", "sushi"},         {"fries", "fries"},
    {"soda", "sodas"},          {"coffee", "coffees"},
    {"sandwich", "sandwiches"}, {"margherita", "margheritas"},
    {"lasagna", "lasagnas"},    {"dessert", "desserts"},
};

static void items_slot(const toks *t, json_t *slots)
{
    json_t *items = json_array();

    for (int i = 0; i < t->n; i++) {
        for (size_t f = 0; f < sizeof(foods) / sizeof(foods[0]); f++) {
            int q;

            if (!is(t, i, foods[f][0]) && !is(t, i, foods[f][1])) {
                continue;
            }
            q = number_of(tok(t, i - 1), true);
            json_array_append_new(
                items, json_pack("{s:s, s:i}", "name", foods[f][0], "quantity", q > 0 ? q : 1));
            break;
        }
    }
    if (json_array_size(items) > 0) {
        json_object_set_new(slots, "items", items);
    } else {
        json_decref(items);
    }
}

/* Bookable services: word in the message -> the service's name. */
static const char *const services[][2] = {
    {"haircut", "haircut"},        {"hair", "haircut"},
    {"manicure", "manicure"},      {"pedicure", "pedicure"},
    {"massage", "massage"},        {"facial", "facial"},
    {"repair", "repair"},          {"oil", "oil change"},
    {"tyres", "tyre change"},      {"tires", "tyre change"},
    {"inspection", "inspection"},  {"checkup", "check-up"},
    {"doctor", "consultation"},    {"dentist", "dental check-up"},
    {"dental", "dental check-up"}, {"cleaning", "cleaning"},
    {"plumber", "plumbing"},       {"table", "table"},
};

static void service_slot(const toks *t, json_t *slots)
{
    for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
        for (int i = 0; i < t->n; i++) {
            if (is(t, i, services[s][0])) {
                json_object_set_new(slots, "service", json_string(services[s][1]));
                return;
            }
        }
    }
}

/* ---- dashboard changes and searches -------------------------------------------------- */

/* "open 09:00 to 18:00 on monday", "hours 9am-6pm every day", "weekdays 8:00 to 16:00". */
static void hours_slot(const toks *t, json_t *slots)
{
    int tm[2];
    bool day[7] = {false};
    bool any = false;
    json_t *hours;

    if (times_of(t, tm) < 2 || tm[0] >= tm[1]) {
        return;
    }
    for (int i = 0; i < t->n; i++) {
        int wd = weekday_of(tok(t, i));
        bool wk = is(t, i, "weekdays");

        for (int d = 0; d < 7; d++) {
            day[d] = day[d] || d == wd || (wk && d < 5);
        }
        any = any || wd >= 0 || wk;
    }
    hours = json_object();
    for (int d = 0; d < 7; d++) {
        if (day[d] || !any) { /* no day named: every day */
            json_t *h = json_object();

            set_time(h, "open", tm[0]);
            set_time(h, "close", tm[1]);
            json_object_set_new(hours, weekdays[d], h);
        }
    }
    json_object_set_new(slots, "hours", hours);
}

/* "price of the margherita to 12.50": services [{name, price}]. */
static void menu_slot(const toks *t, json_t *slots)
{
    for (int i = 0; i + 1 < t->n; i++) {
        char name[128] = "";
        int j = i + 1;
        char *end;
        double price;

        if (!is(t, i, "price") || !is(t, j, "of")) {
            continue;
        }
        j += is(t, j + 1, "the") ? 2 : 1;
        for (; j < t->n && !is(t, j, "to") && !is(t, j, "at"); j++) {
            size_t n = strlen(name);
            snprintf(name + n, sizeof(name) - n, "%s%s", n ? " " : "", tok(t, j));
        }
        price = strtod(tok(t, j + 1), &end);
        if (name[0] && *tok(t, j + 1) && !*end && price >= 0) {
            json_object_set_new(slots, "services",
                                json_pack("[{s:s, s:f}]", "name", name, "price", price));
        }
        return;
    }
}

static bool has_any(const toks *t, const char *const *words)
{
    for (int i = 0; i < t->n; i++) {
        for (size_t w = 0; words[w]; w++) {
            if (is(t, i, words[w])) {
                return true;
            }
        }
    }
    return false;
}

static void search_slots(const toks *t, json_t *slots)
{
    static const char *const cheap[] = {"cheap",  "cheapest",    "affordable",
                                        "budget", "inexpensive", NULL};
    static const char *const best[] = {"best", "top", "rated", "highest", NULL};
    const json_t *items = json_object_get(slots, "items");
    const char *q = json_string_value(json_object_get(json_array_get(items, 0), "name"));

    if (!q) {
        q = json_string_value(json_object_get(slots, "service"));
    }
    if (q) {
        json_object_set_new(slots, "q", json_string(q));
    }
    if (has_any(t, cheap)) {
        json_object_set_new(slots, "max_price_level", json_integer(2));
    }
    if (has_any(t, best)) {
        json_object_set_new(slots, "min_rating", json_real(4.0));
    }
}

json_t *fl_local__slots(const char *message, fl_local_day today)
{
    toks *t = fl_xcalloc(1, sizeof(*t));
    json_t *slots = json_object();
    int tm[2];

    if (!message) {
        free(t);
        return slots;
    }
    tokenize(message, t);
    service_slot(t, slots);
    date_slot(t, message, today, slots);
    if (times_of(t, tm) >= 1) {
        set_time(slots, "time", tm[0]);
    }
    party_slot(t, slots);
    items_slot(t, slots);
    hours_slot(t, slots);
    menu_slot(t, slots);
    search_slots(t, slots);
    free(t);
    return slots;
}

int fl_local__yes_no(const char *message)
{
    static const char *const yes[] = {"y",  "yes",  "yep",     "yup",       "yeah",    "sure",
                                      "ok", "okay", "confirm", "confirmed", "correct", NULL};
    static const char *const no[] = {"n", "no", "nope", "cancel", "wrong", NULL};
    toks *t = fl_xcalloc(1, sizeof(*t));
    int out = -1;

    if (!message) {
        free(t);
        return -1;
    }
    tokenize(message, t);
    for (size_t i = 0; t->n > 0 && yes[i]; i++) {
        out = is(t, 0, yes[i]) ? 1 : out;
    }
    for (size_t i = 0; t->n > 0 && no[i]; i++) {
        out = is(t, 0, no[i]) ? 0 : out;
    }
    free(t);
    return out;
}
