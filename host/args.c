/* args.c: see args.h. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"

static int name_matches(const char *names, const char *arg, size_t arg_len) {
    const char *p = names;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == arg_len && !strncmp(p, arg, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void args_usage(const char *cmd, const char *synopsis, const struct opt *opts) {
    printf("usage: rwkv7 %s %s\n\noptions:\n", cmd, synopsis);
    for (const struct opt *o = opts; o->kind != OPT_END; o++) {
        char left[80];
        snprintf(left, sizeof left, "%s%s%s", o->names, o->meta ? " " : "", o->meta ? o->meta : "");
        for (char *c = left; *c; c++)
            if (*c == ',') *c = '|';
        printf("  %-32s %s\n", left, o->help);
    }
    printf("  %-32s %s\n", "-h|--help", "show this help");
}

static int bad_value(const char *cmd, const char *flag, const char *val, const char *what) {
    host_errorf("rwkv7 %s: option '%s' needs %s, got '%s'\n", cmd, flag, what, val);
    return 2;
}

int args_parse(const char *cmd, const char *synopsis, const struct opt *opts, int argc, char **argv, int first) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            args_usage(cmd, synopsis, opts);
            return 1;
        }
        /* --name=value is accepted as well as --name value. */
        const char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = opts;
        for (; o->kind != OPT_END; o++)
            if (name_matches(o->names, a, alen)) break;
        if (o->kind == OPT_END) {
            if (a[0] == '-')
                host_errorf("rwkv7 %s: unknown option '%.*s' (see rwkv7 %s --help)\n", cmd, (int)alen, a, cmd);
            else
                host_errorf("rwkv7 %s: unexpected argument '%s' (see rwkv7 %s --help)\n", cmd, a, cmd);
            return 2;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) return bad_value(cmd, a, eq + 1, "no value");
            *(bool *)o->dest = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            host_errorf("rwkv7 %s: option '%s' needs a value (%s)\n", cmd, a, o->meta ? o->meta : "value");
            return 2;
        }
        char *end = NULL;
        errno = 0;
        switch (o->kind) {
        case OPT_INT: {
            long x = strtol(v, &end, 0);
            if (!*v || *end || errno || x < -2147483647L || x > 2147483647L) return bad_value(cmd, a, v, "an integer");
            *(int *)o->dest = (int)x;
            break;
        }
        case OPT_U64: {
            unsigned long long x = strtoull(v, &end, 0);
            if (!*v || *end || errno || v[0] == '-') return bad_value(cmd, a, v, "a non-negative integer");
            *(uint64_t *)o->dest = (uint64_t)x;
            break;
        }
        case OPT_FLOAT: {
            float x = strtof(v, &end);
            /* NaN and Inf are never meaningful settings (and NaN would pass every range check) */
            if (!*v || *end || errno || !isfinite(x)) return bad_value(cmd, a, v, "a finite number");
            *(float *)o->dest = x;
            break;
        }
        case OPT_STR: *(const char **)o->dest = v; break;
        case OPT_LIST: {
            struct str_list *l = o->dest;
            const char **p = realloc(l->items, (size_t)(l->n + 1) * sizeof *p);
            if (!p) {
                fprintf(stderr, "rwkv7 %s: out of memory\n", cmd);
                return 2;
            }
            l->items = p;
            l->items[l->n++] = v;
            break;
        }
        default: break;
        }
    }
    return 0;
}

void str_list_free(struct str_list *l) {
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

char *read_text_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        host_errorf("rwkv7: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        host_errorf("rwkv7: cannot read '%s'\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    /* A UTF-8 byte-order mark (Windows editors write one) is not part of the text. */
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
        memmove(buf, buf + 3, len - 2);
        len -= 3;
    }
    if (n) *n = len;
    return buf;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t unescape_prompt(char *s) {
    char *o = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) { *o++ = *p; continue; }
        p++;
        switch (*p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case '\\': *o++ = '\\'; break;
        case '"': *o++ = '"'; break;
        case '\'': *o++ = '\''; break;
        case 'x':
            if (hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
                p += 2;
            } else {
                *o++ = '\\'; /* not an escape: keep it */
                *o++ = *p;
            }
            break;
        default: *o++ = '\\'; *o++ = *p; break;
        }
    }
    *o = 0;
    return (size_t)(o - s);
}

void host_errorf(const char *fmt, ...) {
    char raw[2048], out[4 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    size_t n = (size_t)k < sizeof raw ? (size_t)k : sizeof raw - 1, o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if ((c < 0x20 && !(c == '\n' && i + 1 == n)) || c == 0x7f) o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    fwrite(out, 1, o, stderr);
}

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
