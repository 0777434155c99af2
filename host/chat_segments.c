/* chat_segments.c: turn-by-turn tokenization of rendered chat prompts (chat_segments.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "chat_format.h"
#include "chat_segments.h"
#include "status.h"

/* Appends the tokens of s[0..n) to the growing array *ids. */
static enum rwkv7_status append_tokens(const struct rwkv7_tokenizer *tok, const char *s, size_t n, int32_t **ids,
                                       size_t *n_ids, size_t *cap) {
    size_t need = 0;
    RWKV7_TRY(rwkv7_tokenize(tok, s, n, NULL, 0, &need));
    if (*n_ids + need > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *n_ids + need) c *= 2;
        int32_t *p = realloc(*ids, c * sizeof *p);
        if (!p) return rwkv7_fail(RWKV7_ERR_OOM, "chat: out of memory for %zu tokens", c);
        *ids = p;
        *cap = c;
    }
    size_t got = 0;
    RWKV7_TRY(rwkv7_tokenize(tok, s, n, *ids + *n_ids, need, &got));
    *n_ids += got;
    return RWKV7_OK;
}

enum rwkv7_status chat_tokenize_turns(const struct rwkv7_tokenizer *tok, const char *text, size_t n, int32_t **ids,
                                      size_t *n_ids, size_t **ends, int *n_ends) {
    *ids = NULL, *n_ids = 0, *ends = NULL, *n_ends = 0;
    size_t cap = 0, n_cuts = 1;
    for (size_t i = 0; i + 1 < n; i++) n_cuts += text[i] == '\n' && text[i + 1] == '\n';
    size_t *e = malloc(2 * n_cuts * sizeof *e); /* each turn may also cut after "Assistant:" */
    if (!e) return rwkv7_fail(RWKV7_ERR_OOM, "chat: out of memory");
    enum rwkv7_status st = RWKV7_OK;
    int ne = 0;
    for (size_t a = 0; a < n && st == RWKV7_OK;) {
        size_t b = a;
        if (n - a >= 10 && !memcmp(text + a, "Assistant:", 10)) b = a + 10;
        else {
            while (b < n && !(b >= a + 2 && text[b - 1] == '\n' && text[b - 2] == '\n')) b++;
        }
        st = append_tokens(tok, text + a, b - a, ids, n_ids, &cap);
        if (st == RWKV7_OK && (ne == 0 || e[ne - 1] != *n_ids)) e[ne++] = *n_ids;
        a = b;
    }
    if (st != RWKV7_OK || *n_ids == 0) {
        free(*ids);
        free(e);
        *ids = NULL, *n_ids = 0;
        return st;
    }
    *ends = e;
    *n_ends = ne;
    return RWKV7_OK;
}

enum rwkv7_status chat_reply_tokens(const struct rwkv7_tokenizer *tok, const char *reply, size_t n, int32_t **ids,
                                    size_t *n_ids) {
    *ids = NULL, *n_ids = 0;
    /* Same steps as chat_format.c's put_turn for an assistant message. */
    for (const char *p = reply; p && (size_t)(p - reply) + 8 <= n;) {
        const char *q = memchr(p, '<', n - (size_t)(p - reply));
        if (!q || (size_t)(q - reply) + 8 > n) break;
        if (!memcmp(q, "</think>", 8)) {
            n -= (size_t)(q + 8 - reply);
            reply = q + 8;
            p = reply;
        } else {
            p = q + 1;
        }
    }
    char *buf = malloc(n + 3);
    if (!buf) return rwkv7_fail(RWKV7_ERR_OOM, "chat: out of memory");
    buf[0] = ' ';
    size_t o = 1 + rwkv7_chat_clean(reply, n, buf + 1);
    buf[o++] = '\n';
    buf[o++] = '\n';
    size_t cap = 0;
    enum rwkv7_status st = append_tokens(tok, buf, o, ids, n_ids, &cap);
    free(buf);
    if (st != RWKV7_OK) {
        free(*ids);
        *ids = NULL, *n_ids = 0;
    }
    return st;
}
