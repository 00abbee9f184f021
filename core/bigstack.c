/* core/bigstack.c -- see bigstack.h. One context per thread: the large stack, the caller
 * to come back to, and the call in progress (a thread runs one at a time). */
#include "core/bigstack.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <ucontext.h>

#include "core/log.h"
#include "core/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define FIBER_FINISH(save, old_bottom, old_sz) \
    __sanitizer_finish_switch_fiber(save, old_bottom, old_sz)
#else
#define FIBER_START(save, bottom, size)        ((void)(save), (void)(bottom), (void)(size))
#define FIBER_FINISH(save, old_bottom, old_sz) ((void)(save), (void)(old_bottom), (void)(old_sz))
#endif

typedef struct bigstack {
    void *mem;                 /* FL_BIGSTACK_BYTES */
    ucontext_t caller, callee; /* who called; the call on the large stack */
    void (*fn)(void *);
    void *arg;
    bool running;
    const void *caller_bottom; /* the caller's stack, for AddressSanitizer */
    size_t caller_size;
} bigstack;

static pthread_key_t stacks_key;
static pthread_once_t stacks_once = PTHREAD_ONCE_INIT;
static _Thread_local bigstack *mine;
static atomic_bool warned;

static void stack_free(void *p)
{
    bigstack *s = p;

    free(s->mem);
    free(s);
}

static void key_make(void)
{
    (void)pthread_key_create(&stacks_key, stack_free);
}

/* This thread's stack, made on first use (pages are only touched as they are used). */
static bigstack *stack_get(void)
{
    if (!mine) {
        bigstack *s = fl_xcalloc(1, sizeof(*s));

        s->mem = fl_xmalloc(FL_BIGSTACK_BYTES);
        (void)pthread_once(&stacks_once, key_make);
        (void)pthread_setspecific(stacks_key, s);
        mine = s;
    }
    return mine;
}

/* The entry of the large stack: makecontext passes no pointers portably, so the call is
 * found through the thread's own context. Returning resumes uc_link (the caller). */
static void trampoline(void)
{
    bigstack *s = mine;

    FIBER_FINISH(NULL, &s->caller_bottom, &s->caller_size);
    s->fn(s->arg);
    /* NULL: this context ends here (the next call makes a new one) */
    FIBER_START(NULL, s->caller_bottom, s->caller_size);
}

static bool switch_to(bigstack *s)
{
    void *fake_stack = NULL;

    if (getcontext(&s->callee) != 0) {
        return false;
    }
    s->callee.uc_stack.ss_sp = s->mem;
    s->callee.uc_stack.ss_size = FL_BIGSTACK_BYTES;
    s->callee.uc_link = &s->caller;
    makecontext(&s->callee, trampoline, 0);
    FIBER_START(&fake_stack, s->mem, FL_BIGSTACK_BYTES);
    if (swapcontext(&s->caller, &s->callee) != 0) {
        FIBER_FINISH(fake_stack, NULL, NULL);
        return false;
    }
    FIBER_FINISH(fake_stack, NULL, NULL);
    return true;
}

void fl_bigstack_run(void (*fn)(void *), void *arg)
{
    bigstack *s = stack_get();
    bool ran;

    if (s->running) { /* already on it */
        fn(arg);
        return;
    }
    s->fn = fn;
    s->arg = arg;
    s->running = true;
    ran = switch_to(s);
    s->running = false;
    if (ran) {
        return;
    }
    if (!atomic_exchange(&warned, true)) {
        fl_log(FL_WARN, "bigstack.unavailable", FL_STR("detail", "running on the thread's stack"));
    }
    fn(arg);
}
