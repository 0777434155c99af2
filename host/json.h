/* json.h: a small strict JSON (RFC 8259) parser for hostile input and a JSON writer.
 * The parser accepts exactly the RFC grammar (no comments, trailing commas, NaN, leading zeros or
 * lone surrogates), validates UTF-8, bounds nesting depth and total size, rejects duplicate object
 * keys, and never reads past the n bytes it is given. The writer's strings are always valid JSON:
 * control characters are escaped and invalid UTF-8 bytes become U+FFFD. */
#ifndef RWKV7_HOST_JSON_H
#define RWKV7_HOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rwkv7.h"

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_member;

struct json_value {
    enum json_type type;
    bool boolean;
    bool is_int;   /* a number written without fraction or exponent that fits int64 */
    int64_t i;     /* its value when is_int */
    double num;    /* every number, also integers */
    char *str;     /* JSON_STRING: decoded UTF-8, NUL-terminated (may also contain NUL bytes) */
    size_t len;    /* string bytes, or the count of items / members */
    struct json_value *items;    /* JSON_ARRAY */
    struct json_member *members; /* JSON_OBJECT, in document order */
};

struct json_member {
    char *key;
    size_t key_len;
    struct json_value value;
};

/* Limits for hostile input; 0 (or NULL for stop) means the default. Parsing is O(n) in the
 * document length whatever the input (duplicate keys are found through a hash index). */
#define JSON_DEFAULT_MAX_DEPTH 64
#define JSON_DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define JSON_DEFAULT_MAX_KEYS ((size_t)100000)
struct json_limits {
    int max_depth;    /* arrays and objects nested deeper than this are rejected (default 64) */
    size_t max_bytes; /* documents longer than this are rejected (default 16 MiB) */
    size_t max_keys;  /* objects with more members than this are rejected (default 100,000) */
    const volatile int *stop; /* when it becomes non-zero (a signal), parsing stops with an error */
};

/* Parses text[0..n) into *out (free with json_free). On failure returns RWKV7_ERR_FORMAT (or
 * RWKV7_ERR_OOM) with a one-line message "json: ... at byte N" in rwkv7_last_error(), and *out
 * holds nothing to free. lim may be NULL for the defaults. */
enum rwkv7_status json_parse(const char *text, size_t n, const struct json_limits *lim, struct json_value *out);
void json_free(struct json_value *v);
/* The member named key of an object, or NULL (also when v is not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
const char *json_type_name(enum json_type t);

/* A growable output buffer; an allocation failure sets oom and makes later appends no-ops. */
struct json_buf {
    char *p;
    size_t n, cap;
    bool oom;
};
void json_buf_raw(struct json_buf *b, const char *s, size_t n);
void json_buf_printf(struct json_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s[0..n) as a quoted, escaped JSON string. */
void json_buf_string(struct json_buf *b, const char *s, size_t n);
/* Appends a finite double in the shortest form that reads back exactly (non-finite: null). */
void json_buf_number(struct json_buf *b, double x);
void json_buf_free(struct json_buf *b);
/* Writes s[0..n) as a quoted, escaped JSON string to f; returns false on a write error. */
bool json_write_string(FILE *f, const char *s, size_t n);

#endif
