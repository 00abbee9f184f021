/* core/bigstack.h -- runs a function on a large stack of the calling thread's own.
 *
 * Why: civetweb's worker threads have small stacks (Debian's libcivetweb is built with
 * USE_STACK_SIZE=102400), and jansson parses and frees recursively, up to its build
 * limit of 2048 levels: a 1.5 KB request body of nested brackets overflowed a worker
 * before any depth limit of ours could look at the tree. Work whose recursion depth the
 * input decides runs here instead, on FL_BIGSTACK_BYTES, entered with swapcontext.
 *
 * Each thread gets its stack on first use and keeps it until the thread exits (a
 * pthread key frees it), so the cost per call is two context switches, not an mmap.
 * Under AddressSanitizer the switches are announced (__sanitizer_*_switch_fiber), so
 * its stack bookkeeping follows them.
 *
 * Thread-safety: any thread; fn runs on the calling thread, which waits for it. fn must
 * return normally (no longjmp out of it, no pthread_exit). */
#ifndef FL_CORE_BIGSTACK_H
#define FL_CORE_BIGSTACK_H

#define FL_BIGSTACK_BYTES (4u << 20) /* 2048 jansson levels use well under 1 MiB */

/* Calls fn(arg) on this thread's large stack. Should a context call fail, fn runs on the
 * current stack instead: logged once per process, never silent. Nested calls (fn
 * calling fl_bigstack_run) run in place. */
void fl_bigstack_run(void (*fn)(void *), void *arg);

#endif
