/* status.c: status names and the thread-local last-error message. */
#include <stdarg.h>

#include "status.h"

static _Thread_local char g_last_error[1024];

const char *rwkv7_status_str(enum rwkv7_status st) {
    switch (st) {
    case RWKV7_OK: return "ok";
    case RWKV7_ERR_ARG: return "invalid argument";
    case RWKV7_ERR_IO: return "i/o error";
    case RWKV7_ERR_FORMAT: return "malformed file";
    case RWKV7_ERR_UNSUPPORTED: return "unsupported";
    case RWKV7_ERR_OOM: return "out of memory";
    case RWKV7_ERR_DEVICE: return "device error";
    case RWKV7_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

enum rwkv7_status rwkv7_fail(enum rwkv7_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *rwkv7_last_error(void) { return g_last_error[0] ? g_last_error : "no error recorded"; }

void rwkv7_clear_error(void) { g_last_error[0] = 0; }
