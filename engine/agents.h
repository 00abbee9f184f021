/* engine/agents.h -- agent profiles (workflows/agents/<id>.yaml) and their registry.
 *
 * An agent profile says how the assistant behaves for one kind of business: its system
 * prompt, the intents it recognises (with keywords for the local classifier and the
 * slots each intent needs before it can act), the slots it knows, the actions it may
 * take, the LLM provider it prefers and optional reply templates for the `local`
 * provider. The format and its rules are in docs/agents.md.
 *
 * The loader (libyaml) reports every problem it finds as `file:line:col: error: message`
 * into an fl_diags, like the workflow loader: unknown keys, missing fields, wrong types,
 * bad ids, undeclared slots, unknown actions, bad provider names, duplicate ids.
 *
 * The model is transparent and immutable once loaded (like fl_workflow): callers read
 * the fields directly. A registry owns its profiles; pointers into it stay valid until
 * fl_agents_free. Pure: no Postgres, Kafka or network.
 *
 * Thread-safety: parsing is reentrant; a loaded registry is immutable and may be read
 * by every thread at once. */
#ifndef FL_ENGINE_AGENTS_H
#define FL_ENGINE_AGENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/diag.h"
#include "core/err.h"

/* The profile used when no other fits (low confidence, unknown id). Every registry
 * loaded from a directory has it. */
#define FL_AGENTS_FALLBACK "general_purpose"

#define FL_AGENT_ID_MAX        64     /* bytes of an id, intent, slot or action name */
#define FL_AGENT_MAX_BYTES     262144 /* one profile file */
#define FL_AGENT_MAX_NODES     20000  /* YAML nodes in one file */
#define FL_AGENT_MAX_DEPTH     16     /* YAML nesting */
#define FL_AGENTS_MAX_PROFILES 256    /* files in one directory */

typedef enum fl_agent_slot_type {
    FL_AGENT_SLOT_STRING,
    FL_AGENT_SLOT_INT,
    FL_AGENT_SLOT_NUMBER,
    FL_AGENT_SLOT_BOOL,
    FL_AGENT_SLOT_DATE,     /* YYYY-MM-DD once extracted */
    FL_AGENT_SLOT_TIME,     /* HH:MM */
    FL_AGENT_SLOT_DATETIME, /* RFC 3339 */
    FL_AGENT_SLOT_LIST,     /* a list of strings (order items, ...) */
    FL_AGENT_SLOT_PHONE,
    FL_AGENT_SLOT_EMAIL
} fl_agent_slot_type;

typedef struct fl_agent_slot {
    char *name;
    fl_agent_slot_type type;
    char *description;
    char *ask; /* templates.ask_slot.<name>, or NULL */
} fl_agent_slot;

typedef struct fl_agent_intent {
    char *name;
    char *description;
    char **keywords; /* lower-cased; may be empty (then only an LLM can pick it) */
    size_t nkeywords;
    size_t *required; /* indexes into the profile's slots */
    size_t nrequired;
    char *action; /* one of the profile's allowed_actions, or NULL */
} fl_agent_intent;

typedef struct fl_agent {
    char *id;   /* snake_case */
    char *name; /* display name (RestaurantFood) */
    char *description;
    char *system_prompt;
    char *preferred_provider; /* an llm.providers name, or "local" (the default) */
    fl_agent_intent *intents;
    size_t nintents;
    fl_agent_slot *slots;
    size_t nslots;
    char **actions; /* allowed_actions */
    size_t nactions;
    char *greeting, *confirm, *done; /* templates for the local provider, or NULL */
    char *path;                      /* the file it came from */
    unsigned line, col;              /* of the `id:` value, for set-level problems */
} fl_agent;

/* The action names a profile may allow (NULL-terminated), for docs and messages. */
extern const char *const fl_agent_actions[];

/* Parses one profile from text[0..len). path names it in problems.
 * Ownership: on FL_OK *out is owned by the caller (fl_agent_free); else NULL.
 * Errors: FL_EINVAL (at least one problem added to diags), FL_ETOOBIG (over
 * FL_AGENT_MAX_BYTES; also reported in diags). */
fl_rc fl_agent_parse(const char *text, size_t len, const char *path, fl_agent **out,
                     fl_diags *diags);

/* fl_agent_parse on a file's contents. Errors: as parse, plus FL_ENOTFOUND / FL_EIO
 * (reported in diags without a position). */
fl_rc fl_agent_load(const char *path, fl_agent **out, fl_diags *diags);

void fl_agent_free(fl_agent *a); /* NULL-safe */

/* The profile as the API shows it: {id, name, description, intents: [{name,
 * description, keywords, required_slots, action}], slots: [{name, type, description}],
 * allowed_actions, preferred_provider}; with_prompt adds system_prompt.
 * Ownership: a new reference. */
json_t *fl_agent_to_json(const fl_agent *a, bool with_prompt);

/* The slot or intent of that name, or NULL. Borrowed from a. */
const fl_agent_slot *fl_agent_slot_get(const fl_agent *a, const char *name);
const fl_agent_intent *fl_agent_intent_get(const fl_agent *a, const char *name);
/* True when the profile allows action. */
bool fl_agent_allows(const fl_agent *a, const char *action);

/* ---- the registry ---------------------------------------------------------------- */

typedef struct fl_agents fl_agents;

/* Checks profiles as one set: duplicate ids (reported at the later file's id). With
 * need_fallback, a set without FL_AGENTS_FALLBACK is a problem too (reported on dir, no
 * position). Borrowed; no ownership moves. */
void fl_agents_check_set(fl_agent *const *profiles, size_t n, bool need_fallback, const char *dir,
                         fl_diags *diags);

/* Loads every *.yaml of dir (not recursive) as one set (fl_agents_check_set with the
 * fallback required). Problems go to diags (sorted).
 * Ownership: *out owned by the caller (fl_agents_free) on FL_OK, else NULL.
 * Errors: FL_EINVAL (problems; err counts them), FL_ENOTFOUND (no such dir). */
fl_rc fl_agents_load_dir(fl_agents **out, const char *dir, fl_diags *diags, fl_err *err);

/* The directory engine.agents_dir names: the setting itself, or, when it is empty,
 * `<engine.workflows_dir>/agents`. Ownership: the result is the caller's (free). */
char *fl_agents_dir_dup(const fl_config_engine *engine);

/* What `flowd serve` uses: loads fl_agents_dir_dup(engine), logging each problem
 * (`agents.invalid`, one line each, file:line:col) and the result (`agents.loaded`).
 * When agents_dir is empty and the derived directory does not exist, the registry is
 * empty (logged as `agents.missing`): a scratch workflows directory without profiles
 * still serves. Ownership: *out as fl_agents_load_dir. Errors: as fl_agents_load_dir. */
fl_rc fl_agents_load_config(fl_agents **out, const fl_config_engine *engine, fl_err *err);

fl_agents *fl_agents_new(void);    /* empty */
void fl_agents_free(fl_agents *r); /* NULL-safe */

/* The profile with that id, or NULL. Borrowed from r (r may be NULL). */
const fl_agent *fl_agents_get(const fl_agents *r, const char *id);
/* fl_agents_get(r, FL_AGENTS_FALLBACK): NULL only for an empty registry. */
const fl_agent *fl_agents_fallback(const fl_agents *r);
/* The profiles, sorted by id: count and the i-th. Borrowed. */
size_t fl_agents_count(const fl_agents *r);
const fl_agent *fl_agents_at(const fl_agents *r, size_t i);

/* [fl_agent_to_json of each profile], sorted by id. Ownership: a new reference. */
json_t *fl_agents_to_json(const fl_agents *r, bool with_prompt);

#endif
