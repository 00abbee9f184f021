/* tests/fuzz/fuzz_expr.c -- expression templates on arbitrary bytes: check, compile and
 * evaluate in one long-lived VM with small limits. Any input must give FL_OK or an error
 * message; never a crash, leak or hang, and the VM must stay usable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char scope_json[] =
    "{\"ctx\": {\"n\": 3, \"s\": \"x\", \"list\": [1, 2, {\"a\": null}]},"
    " \"event\": {\"type\": \"t\", \"data\": {\"slot\": \"10:00\"}}}";

/* Evaluates s both as a sole string and inside an object, and as a guard. */
static void evaluate(fl_expr_vm *vm, const fl_expr_scope *scope, const char *s)
{
    json_t *v = json_pack("{s:s, s:[s]}", "a", s, "b", s);
    fl_tmpl *t = NULL;
    json_t *out = NULL;
    bool b = false;
    fl_err err = FL_ERR_INIT;

    if (!v) {
        goto out; /* not UTF-8: a definition cannot hold it */
    }
    if (fl_tmpl_new(json_object_get(v, "a"), &t, &err) == FL_OK) {
        if (fl_expr_eval(vm, t, scope, &out, &err) != FL_OK) {
            fl_assert(err.msg[0] != '\0');
        }
        fl_err_clear(&err);
        (void)fl_expr_eval_bool(vm, t, scope, &b, &err);
        fl_tmpl_free(t);
        t = NULL;
    }
    json_decref(out);
    out = NULL;
    if (fl_tmpl_new(v, &t, &err) == FL_OK) {
        (void)fl_expr_eval(vm, t, scope, &out, &err);
    }
out:
    json_decref(out);
    fl_tmpl_free(t);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* one VM for the whole run, as a worker thread keeps one: errors must not poison it */
    static fl_expr_vm *vm;
    static json_t *doc;
    static const fl_expr_limits lim = {20000, 256 << 10};
    fl_expr_scope scope = {0};
    char *s = fl_xstrndup((const char *)data, size);
    size_t offset = 0;
    fl_err err = FL_ERR_INIT;

    if (!vm) {
        fl_log_set_level(FL_ERROR);
        fl_assert(fl_expr_vm_new(&vm, &lim, NULL) == FL_OK);
        doc = json_loads(scope_json, 0, NULL);
    }
    scope.ctx = json_object_get(doc, "ctx");
    scope.event = json_object_get(doc, "event");
    scope.now = "2026-01-05T10:00:00Z";
    if (fl_expr_check(s, &offset, &err) == FL_OK) {
        evaluate(vm, &scope, s);
    } else {
        fl_assert(err.msg[0] != '\0' && offset <= strlen(s));
    }
    free(s);
    return 0;
}
