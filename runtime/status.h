/* status.h: internal error plumbing shared by every part of the library.
 * Errors are returned as enum rwkv7_status; the detail message lives in a thread-local buffer
 * (see rwkv7_last_error in rwkv7.h). A thread-local buffer instead of a per-context one, because
 * most failures (GGUF parsing, argument checks) happen before any context exists. */
#ifndef RWKV7_STATUS_H
#define RWKV7_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#include "rwkv7.h"

#if defined(__GNUC__)
#define RWKV7_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RWKV7_PRINTF(a, b)
#endif

/* Formats the thread's last-error message ("gguf: tensor 'x' ...") and returns st, so a failing
 * path reads `return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: ...", ...);`. */
enum rwkv7_status rwkv7_fail(enum rwkv7_status st, const char *fmt, ...) RWKV7_PRINTF(2, 3);

/* Propagate a non-OK status from a callee that already set the message. */
#define RWKV7_TRY(expr)                                \
    do {                                               \
        enum rwkv7_status rwkv7_try_st_ = (expr);      \
        if (rwkv7_try_st_ != RWKV7_OK) return rwkv7_try_st_; \
    } while (0)

/* Programmer errors only (never for anything a file, a user or a driver can cause): always on. */
#define RWKV7_ASSERT(x)                                                                  \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "rwkv7: assertion failed: %s (%s:%d)\n", #x, __FILE__, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
