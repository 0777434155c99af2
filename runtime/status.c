/* status.c: status names and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>

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
    char raw[sizeof g_last_error];
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* Messages quote input (file names, tensor names, JSON); control bytes in it are shown as
     * \xHH so a hostile file cannot send terminal escape sequences or break the one-line form. */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 < sizeof g_last_error; p++) {
        if (*p < 0x20 || *p == 0x7f) o += (size_t)snprintf(g_last_error + o, 5, "\\x%02x", *p);
        else g_last_error[o++] = (char)*p;
    }
    g_last_error[o] = 0;
    return st;
}

const char *rwkv7_last_error(void) { return g_last_error[0] ? g_last_error : "no error recorded"; }

void rwkv7_clear_error(void) { g_last_error[0] = 0; }
