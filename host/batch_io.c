/* batch_io.c: request parsing and output records of `rwkv7 batch` (see batch.h). Bodies follow
 * OpenAI's completions/chat completions with the vLLM extras top_k, min_p, repetition_penalty,
 * stop_token_ids, ignore_eos and the RWKV extras penalty_decay (alias alpha_decay) and think.
 * JSON null means "not given"; unknown fields are ignored (clients send model, user, ...), but a
 * known field with a wrong type or a feature we do not have (n > 1, stream, logprobs) is a 400. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "batch.h"
#include "tokenizer.h"

#define BATCH_MAX_STOPS 16

enum rwkv7_status batch_req_set_error(struct batch_req *r, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(r->error);
    r->status = status;
    r->error = strdup(msg);
    return r->error ? RWKV7_OK : RWKV7_ERR_OOM;
}

void batch_req_free(struct batch_req *r) {
    free(r->custom_id);
    free(r->error);
    free(r->model);
    free(r->prompt);
    free(r->stop_ids);
    rwkv7_sampler_free(r->smp);
    rwkv7_stop_free(r->stop);
    memset(r, 0, sizeof *r);
}

void batch_req_drop_body(struct batch_req *r) {
    free(r->prompt);
    free(r->stop_ids);
    rwkv7_sampler_free(r->smp);
    rwkv7_stop_free(r->stop);
    r->prompt = NULL, r->stop_ids = NULL, r->smp = NULL, r->stop = NULL;
    r->n_prompt = 0, r->n_stop_ids = 0;
}

/* Finds a string value or key holding a NUL byte (\u0000) and writes where it is ("body.
 * messages[0].role") to path. The rest of the program passes strings as C strings (roles, stop
 * strings, chat text), so a NUL would cut them silently; refusing the line names the field. */
static bool find_nul(const struct json_value *v, char *path, size_t cap, size_t len) {
    if (len >= cap) len = cap - 1;
    if (v->type == JSON_STRING) return memchr(v->str, 0, v->len) != NULL;
    if (v->type == JSON_ARRAY)
        for (size_t i = 0; i < v->len; i++) {
            int k = snprintf(path + len, cap - len, "[%zu]", i);
            if (find_nul(&v->items[i], path, cap, len + (k > 0 ? (size_t)k : 0))) return true;
        }
    if (v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) {
            const struct json_member *m = &v->members[i];
            if (memchr(m->key, 0, m->key_len)) { /* named up to the NUL */
                snprintf(path + len, cap - len, "%s%s (a key)", len ? "." : "", m->key);
                return true;
            }
            int k = snprintf(path + len, cap - len, "%s%s", len ? "." : "", m->key);
            if (find_nul(&m->value, path, cap, len + (k > 0 ? (size_t)k : 0))) return true;
        }
    path[len] = 0;
    return false;
}

/* splitmix64: spreads (batch seed, line) into independent per-request seeds. */
static uint64_t mix_seed(uint64_t seed, long line) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(line + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z == RWKV7_SEED_RANDOM ? z + 1 : z;
}

static bool given(const struct json_value *v) { return v && v->type != JSON_NULL; }

static bool get_float(struct batch_req *r, const struct json_value *body, const char *key, float *out) {
    const struct json_value *v = json_get(body, key);
    if (!given(v)) return true;
    if (v->type != JSON_NUMBER) {
        batch_req_set_error(r, 400, "body.%s must be a number, not %s", key, json_type_name(v->type));
        return false;
    }
    *out = (float)v->num;
    return true;
}

static bool get_int(struct batch_req *r, const struct json_value *body, const char *key, int64_t lo, int64_t hi,
                    int64_t *out) {
    const struct json_value *v = json_get(body, key);
    if (!given(v)) return true;
    if (v->type != JSON_NUMBER || !v->is_int) {
        batch_req_set_error(r, 400, "body.%s must be an integer", key);
        return false;
    }
    if (v->i < lo || v->i > hi) {
        batch_req_set_error(r, 400, "body.%s = %lld is out of range [%lld, %lld]", key, (long long)v->i,
                            (long long)lo, (long long)hi);
        return false;
    }
    *out = v->i;
    return true;
}

/* Fields we recognise but cannot honour: a request asking for them gets a 400 rather than a
 * silently different answer. */
static bool check_unsupported(struct batch_req *r, const struct json_value *body) {
    const struct json_value *v;
    if ((v = json_get(body, "n")) && given(v) && !(v->type == JSON_NUMBER && v->is_int && v->i == 1))
        return batch_req_set_error(r, 400, "body.n: only n = 1 is supported; repeat the line with other seeds"), false;
    if ((v = json_get(body, "stream")) && given(v) && !(v->type == JSON_BOOL && !v->boolean))
        return batch_req_set_error(r, 400, "body.stream: streaming is not available in batch mode"), false;
    if ((v = json_get(body, "echo")) && given(v) && !(v->type == JSON_BOOL && !v->boolean))
        return batch_req_set_error(r, 400, "body.echo is not supported"), false;
    if ((v = json_get(body, "logprobs")) && given(v) && !(v->type == JSON_BOOL && !v->boolean) &&
        !(v->type == JSON_NUMBER && v->num == 0))
        return batch_req_set_error(r, 400, "body.logprobs is not supported"), false;
    if ((v = json_get(body, "logit_bias")) && given(v) && !(v->type == JSON_OBJECT && v->len == 0))
        return batch_req_set_error(r, 400, "body.logit_bias is not supported"), false;
    if ((v = json_get(body, "suffix")) && given(v) && !(v->type == JSON_STRING && v->len == 0))
        return batch_req_set_error(r, 400, "body.suffix is not supported"), false;
    return true;
}

static bool tokenize_into(struct batch_req *r, const struct rwkv7_tokenizer *tok, const char *text, size_t n) {
    size_t need = 0;
    if (rwkv7_tokenize(tok, text, n, NULL, 0, &need) != RWKV7_OK)
        return batch_req_set_error(r, 400, "cannot tokenize the prompt: %s", rwkv7_last_error()), false;
    r->prompt = malloc((need ? need : 1) * sizeof(int32_t));
    if (!r->prompt || rwkv7_tokenize(tok, text, n, r->prompt, need, &need) != RWKV7_OK)
        return batch_req_set_error(r, 500, "cannot tokenize the prompt: out of memory"), false;
    r->n_prompt = need;
    return true;
}

static bool parse_completion_prompt(struct batch_req *r, const struct json_value *body, const struct rwkv7_tokenizer *tok) {
    const struct json_value *p = json_get(body, "prompt");
    if (!given(p)) return batch_req_set_error(r, 400, "body.prompt is required for /v1/completions"), false;
    if (p->type == JSON_STRING) return tokenize_into(r, tok, p->str, p->len);
    if (p->type != JSON_ARRAY) return batch_req_set_error(r, 400, "body.prompt must be a string or a list"), false;
    if (p->len == 1 && p->items[0].type == JSON_STRING) return tokenize_into(r, tok, p->items[0].str, p->items[0].len);
    /* A list of token ids (OpenAI allows it); a list of several prompts needs one line each. */
    int n_vocab = rwkv7_tokenizer_n_vocab(tok);
    r->prompt = malloc((p->len ? p->len : 1) * sizeof(int32_t));
    if (!r->prompt) return batch_req_set_error(r, 500, "out of memory"), false;
    for (size_t i = 0; i < p->len; i++) {
        const struct json_value *t = &p->items[i];
        if (t->type == JSON_STRING)
            return batch_req_set_error(r, 400, "body.prompt: a list of several prompts is not supported; write one line per prompt"), false;
        if (t->type != JSON_NUMBER || !t->is_int || t->i < 0 || t->i >= n_vocab)
            return batch_req_set_error(r, 400, "body.prompt[%zu] is not a token id in [0, %d)", i, n_vocab), false;
        r->prompt[i] = (int32_t)t->i;
    }
    r->n_prompt = p->len;
    return true;
}

/* The text of a message's content: a string, or OpenAI's list of {"type": "text", "text": ...}
 * parts, which are joined. Returns a malloc'ed string, or NULL with the error set. */
static char *message_text(struct batch_req *r, const struct json_value *c, size_t idx) {
    if (!given(c)) return strdup("");
    if (c->type == JSON_STRING) return strdup(c->str);
    if (c->type != JSON_ARRAY) {
        batch_req_set_error(r, 400, "body.messages[%zu].content must be a string or a list of text parts", idx);
        return NULL;
    }
    struct json_buf b = {0};
    json_buf_raw(&b, "", 0);
    for (size_t i = 0; i < c->len; i++) {
        const struct json_value *type = json_get(&c->items[i], "type"), *text = json_get(&c->items[i], "text");
        if (!type || type->type != JSON_STRING || strcmp(type->str, "text") || !text || text->type != JSON_STRING) {
            batch_req_set_error(r, 400, "body.messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} parts are supported", idx, i);
            json_buf_free(&b);
            return NULL;
        }
        json_buf_raw(&b, text->str, text->len);
    }
    if (b.oom) {
        json_buf_free(&b);
        batch_req_set_error(r, 500, "out of memory");
        return NULL;
    }
    return b.p;
}

static bool parse_chat_prompt(struct batch_req *r, const struct json_value *body, const struct batch_defaults *d,
                              const struct rwkv7_tokenizer *tok) {
    const struct json_value *msgs = json_get(body, "messages");
    if (!given(msgs) || msgs->type != JSON_ARRAY || msgs->len == 0)
        return batch_req_set_error(r, 400, "body.messages must be a non-empty list for /v1/chat/completions"), false;
    enum rwkv7_think think = d->think;
    const struct json_value *th = json_get(body, "think");
    if (given(th)) {
        if (th->type != JSON_STRING || rwkv7_think_parse(th->str, &think) != RWKV7_OK)
            return batch_req_set_error(r, 400, "body.think must be one of off, on, bit, lot, fake"), false;
    }
    struct rwkv7_chat_msg *cm = calloc(msgs->len, sizeof *cm);
    char **texts = calloc(msgs->len, sizeof *texts);
    bool ok = cm && texts;
    if (!ok) batch_req_set_error(r, 500, "out of memory");
    for (size_t i = 0; ok && i < msgs->len; i++) {
        const struct json_value *m = &msgs->items[i], *role = json_get(m, "role");
        if (m->type != JSON_OBJECT || !role || role->type != JSON_STRING) {
            batch_req_set_error(r, 400, "body.messages[%zu] needs a string \"role\"", i);
            ok = false;
            break;
        }
        if (!(texts[i] = message_text(r, json_get(m, "content"), i))) {
            ok = false;
            break;
        }
        /* The renderer knows the roles; a developer message (OpenAI's newer name) is a system turn. */
        cm[i].role = !strcmp(role->str, "developer") ? "system" : role->str;
        cm[i].content = texts[i];
    }
    char *rendered = NULL;
    if (ok && rwkv7_chat_render(NULL, cm, (int)msgs->len, think, &rendered) != RWKV7_OK) {
        batch_req_set_error(r, 400, "body.messages: %s", rwkv7_last_error());
        ok = false;
    }
    if (ok) ok = tokenize_into(r, tok, rendered, strlen(rendered));
    free(rendered);
    for (size_t i = 0; texts && i < msgs->len; i++) free(texts[i]);
    free(texts);
    free(cm);
    return ok;
}

static bool parse_stops(struct batch_req *r, const struct json_value *body, const char **stops, int *n_stops) {
    const struct json_value *s = json_get(body, "stop");
    if (given(s)) {
        const struct json_value *list = s->type == JSON_ARRAY ? s->items : s;
        size_t n = s->type == JSON_ARRAY ? s->len : 1;
        if (s->type != JSON_ARRAY && s->type != JSON_STRING)
            return batch_req_set_error(r, 400, "body.stop must be a string or a list of strings"), false;
        if (n > BATCH_MAX_STOPS) return batch_req_set_error(r, 400, "body.stop: at most %d stop strings", BATCH_MAX_STOPS), false;
        for (size_t i = 0; i < n; i++) {
            if (list[i].type != JSON_STRING || list[i].len == 0 || strlen(list[i].str) != list[i].len)
                return batch_req_set_error(r, 400, "body.stop entries must be non-empty strings without NUL"), false;
            stops[(*n_stops)++] = list[i].str;
        }
    }
    const struct json_value *ids = json_get(body, "stop_token_ids");
    if (given(ids)) {
        if (ids->type != JSON_ARRAY || ids->len > 1024)
            return batch_req_set_error(r, 400, "body.stop_token_ids must be a list of token ids"), false;
        r->stop_ids = malloc((ids->len ? ids->len : 1) * sizeof(int32_t));
        if (!r->stop_ids) return batch_req_set_error(r, 500, "out of memory"), false;
        for (size_t i = 0; i < ids->len; i++) {
            if (ids->items[i].type != JSON_NUMBER || !ids->items[i].is_int || ids->items[i].i < 0 || ids->items[i].i > INT32_MAX)
                return batch_req_set_error(r, 400, "body.stop_token_ids[%zu] is not a token id", i), false;
            r->stop_ids[i] = (int32_t)ids->items[i].i;
        }
        r->n_stop_ids = (int)ids->len;
    }
    return true;
}

/* Everything below the envelope: the body's prompt, limits and sampling. False = error set. */
static bool parse_body(struct batch_req *r, const struct json_value *body, const struct batch_defaults *d,
                       const struct rwkv7_tokenizer *tok) {
    if (!check_unsupported(r, body)) return false;
    const struct json_value *model = json_get(body, "model");
    if (given(model) && model->type == JSON_STRING && !(r->model = strdup(model->str)))
        return batch_req_set_error(r, 500, "out of memory"), false;
    if (given(json_get(body, "think")) && !r->chat)
        return batch_req_set_error(r, 400, "body.think applies to /v1/chat/completions only"), false;

    struct rwkv7_sampler_params sp = d->sp;
    int64_t max_tokens = d->max_tokens, top_k = sp.top_k, seed = -1;
    if (!get_float(r, body, "temperature", &sp.temperature) || !get_float(r, body, "top_p", &sp.top_p) ||
        !get_float(r, body, "min_p", &sp.min_p) || !get_float(r, body, "presence_penalty", &sp.presence_penalty) ||
        !get_float(r, body, "frequency_penalty", &sp.frequency_penalty) ||
        !get_float(r, body, "repetition_penalty", &sp.repeat_penalty) ||
        !get_float(r, body, "alpha_decay", &sp.penalty_decay) || !get_float(r, body, "penalty_decay", &sp.penalty_decay) ||
        !get_int(r, body, "top_k", -1, INT32_MAX, &top_k) ||
        !get_int(r, body, "max_completion_tokens", 0, INT32_MAX, &max_tokens) ||
        !get_int(r, body, "max_tokens", 0, INT32_MAX, &max_tokens) || !get_int(r, body, "seed", 0, INT64_MAX, &seed))
        return false;
    sp.top_k = top_k < 0 ? 0 : (int)top_k; /* vLLM spells "off" as -1 */
    sp.seed = seed >= 0 ? (uint64_t)seed : mix_seed(d->batch_seed, r->line);
    r->max_tokens = (int)max_tokens;
    r->ignore_eos = d->ignore_eos;
    const struct json_value *ie = json_get(body, "ignore_eos");
    if (given(ie)) {
        if (ie->type != JSON_BOOL) return batch_req_set_error(r, 400, "body.ignore_eos must be true or false"), false;
        r->ignore_eos = ie->boolean;
    }

    const char *stops[BATCH_MAX_STOPS + 1];
    int n_stops = 0;
    if (!parse_stops(r, body, stops, &n_stops)) return false;
    /* End of turn in the RWKV chat format (rwkv7-gguf.md section 6.4). */
    if (r->chat) stops[n_stops++] = "\n\n";

    if (!(r->chat ? parse_chat_prompt(r, body, d, tok) : parse_completion_prompt(r, body, tok))) return false;
    if (r->n_prompt == 0) r->prompt[r->n_prompt++] = 0; /* empty prompt: start of text */
    if ((long long)r->n_prompt > d->max_prompt_tokens)
        return batch_req_set_error(r, 400, "prompt is %zu tokens, over the limit of %d (--max-prompt-tokens)", r->n_prompt,
                                   d->max_prompt_tokens), false;

    enum rwkv7_status st = rwkv7_sampler_init(&sp, rwkv7_tokenizer_n_vocab(tok), &r->smp);
    if (st != RWKV7_OK)
        return batch_req_set_error(r, st == RWKV7_ERR_OOM ? 500 : 400, "body: %s", rwkv7_last_error()), false;
    if (rwkv7_stop_init(stops, n_stops, &r->stop) != RWKV7_OK)
        return batch_req_set_error(r, 500, "stop strings: %s", rwkv7_last_error()), false;
    return true;
}

enum rwkv7_status batch_parse_request(const char *line, size_t n, long index, const struct batch_defaults *d,
                                      const struct rwkv7_tokenizer *tok, struct batch_req *r) {
    memset(r, 0, sizeof *r);
    r->line = index;
    struct json_value root;
    enum rwkv7_status st = json_parse(line, n, &d->json_limits, &root);
    if (st == RWKV7_ERR_OOM) return st;
    if (st != RWKV7_OK) return batch_req_set_error(r, 400, "invalid JSON line: %s", rwkv7_last_error());
    char nul_at[256] = "";
    const struct json_value *cid = json_get(&root, "custom_id"), *method = json_get(&root, "method"),
                            *url = json_get(&root, "url"), *body = json_get(&root, "body");
    if (cid && cid->type == JSON_STRING && cid->len == strlen(cid->str) && cid->len > 0 && cid->len <= 4000 &&
        !(r->custom_id = strdup(cid->str)))
        st = RWKV7_ERR_OOM;
    else if (root.type != JSON_OBJECT)
        st = batch_req_set_error(r, 400, "the line must be a JSON object, not %s", json_type_name(root.type));
    else if (find_nul(&root, nul_at, sizeof nul_at, 0))
        st = batch_req_set_error(r, 400, "%s contains \\u0000 (a NUL character), which is not accepted", nul_at);
    else if (!r->custom_id)
        st = batch_req_set_error(r, 400, "custom_id is missing or not a non-empty string of at most 4000 bytes");
    else if (given(method) && (method->type != JSON_STRING || strcmp(method->str, "POST")))
        st = batch_req_set_error(r, 400, "method must be \"POST\"");
    else if (!url || url->type != JSON_STRING ||
             (strcmp(url->str, "/v1/completions") && strcmp(url->str, "/v1/chat/completions")))
        st = batch_req_set_error(r, 400, "url must be \"/v1/completions\" or \"/v1/chat/completions\"");
    else if (!body || body->type != JSON_OBJECT)
        st = batch_req_set_error(r, 400, "body must be an object");
    else {
        r->chat = !strcmp(url->str, "/v1/chat/completions");
        /* Drop what a half-parsed body left behind: an error record needs none of it. */
        if (!parse_body(r, body, d, tok)) batch_req_drop_body(r);
        st = r->error || !r->status ? RWKV7_OK : RWKV7_ERR_OOM;
    }
    json_free(&root);
    return st;
}

static void record_head(struct json_buf *b, const struct batch_req *r) {
    json_buf_printf(b, "{\"id\":\"batch_req_%ld\",\"custom_id\":", r->line);
    if (r->custom_id) json_buf_string(b, r->custom_id, strlen(r->custom_id));
    else json_buf_raw(b, "null", 4);
}

void batch_format_result(struct json_buf *b, const struct batch_req *r, const char *model, long long created,
                         const char *text, size_t n_text, const char *finish, int n_gen) {
    record_head(b, r);
    json_buf_printf(b, ",\"response\":{\"status_code\":200,\"request_id\":\"batch_req_%ld\",\"body\":{\"id\":\"%s-%ld\","
                       "\"object\":\"%s\",\"created\":%lld,\"model\":",
                    r->line, r->chat ? "chatcmpl" : "cmpl", r->line, r->chat ? "chat.completion" : "text_completion", created);
    const char *mname = r->model ? r->model : model;
    json_buf_string(b, mname, strlen(mname));
    json_buf_printf(b, ",\"choices\":[{\"index\":0,");
    if (r->chat) {
        json_buf_printf(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        json_buf_string(b, text, n_text);
        json_buf_raw(b, "}", 1);
    } else {
        json_buf_printf(b, "\"text\":");
        json_buf_string(b, text, n_text);
    }
    json_buf_printf(b, ",\"finish_reason\":\"%s\",\"logprobs\":null}],\"usage\":{\"prompt_tokens\":%zu,"
                       "\"completion_tokens\":%d,\"total_tokens\":%zu}}},\"error\":null}\n",
                    finish, r->n_prompt, n_gen, r->n_prompt + (size_t)n_gen);
}

void batch_format_error(struct json_buf *b, const struct batch_req *r) {
    record_head(b, r);
    json_buf_printf(b, ",\"response\":{\"status_code\":%d,\"request_id\":\"batch_req_%ld\"},\"error\":{\"code\":\"%s\",\"message\":",
                    r->status, r->line, r->status == 400 ? "invalid_request" : "server_error");
    const char *msg = r->error ? r->error : "error";
    json_buf_string(b, msg, strlen(msg));
    json_buf_raw(b, "}}\n", 3);
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t set_find(const struct batch_set *s, const char *key, size_t n) {
    size_t i = (size_t)hash_bytes(key, n) & (s->cap - 1);
    while (s->keys[i] && !(s->lens[i] == n && !memcmp(s->keys[i], key, n))) i = (i + 1) & (s->cap - 1);
    return i;
}

bool batch_set_has(const struct batch_set *s, const char *key, size_t n) {
    return s->cap && s->keys[set_find(s, key, n)] != NULL;
}

long *batch_set_val(const struct batch_set *s, const char *key, size_t n) {
    if (!s->cap) return NULL;
    size_t i = set_find(s, key, n);
    return s->keys[i] ? &s->vals[i] : NULL;
}

int batch_set_add(struct batch_set *s, const char *key, size_t n) {
    if (2 * (s->n + 1) > s->cap) {
        /* Grow to keep the load under 1/2 so probes stay short. */
        struct batch_set g = {0};
        g.cap = s->cap ? 2 * s->cap : 64;
        g.keys = calloc(g.cap, sizeof *g.keys);
        g.lens = calloc(g.cap, sizeof *g.lens);
        g.vals = calloc(g.cap, sizeof *g.vals);
        if (!g.keys || !g.lens || !g.vals) {
            free(g.keys);
            free(g.lens);
            free(g.vals);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->keys[i]) {
                size_t j = set_find(&g, s->keys[i], s->lens[i]);
                g.keys[j] = s->keys[i];
                g.lens[j] = s->lens[i];
                g.vals[j] = s->vals[i];
            }
        g.n = s->n;
        free(s->keys);
        free(s->lens);
        free(s->vals);
        *s = g;
    }
    size_t i = set_find(s, key, n);
    if (s->keys[i]) return 0;
    if (!(s->keys[i] = malloc(n + 1))) return -1;
    memcpy(s->keys[i], key, n);
    s->keys[i][n] = 0;
    s->lens[i] = n;
    s->vals[i] = 0;
    s->n++;
    return 1;
}

void batch_set_free(struct batch_set *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->keys[i]);
    free(s->keys);
    free(s->lens);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

size_t batch_resume_key(char *buf, size_t cap, long line, const char *custom_id) {
    /* "\x1e" marks a null custom_id; the line number never contains it, so keys cannot collide. */
    int k = custom_id ? snprintf(buf, cap, "%ld\x1f%s", line, custom_id) : snprintf(buf, cap, "%ld\x1e", line);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

/* The resume key and HTTP status of one output record; false for a line that is not one. */
static bool record_key(const char *line, size_t n, char *key, size_t cap, size_t *k, int *status) {
    struct json_value v;
    if (json_parse(line, n, NULL, &v) != RWKV7_OK) return false;
    const struct json_value *id = json_get(&v, "id"), *cid = json_get(&v, "custom_id");
    const struct json_value *sc = json_get(json_get(&v, "response"), "status_code");
    long lineno = -1;
    if (id && id->type == JSON_STRING && !strncmp(id->str, "batch_req_", 10)) {
        char *end;
        lineno = strtol(id->str + 10, &end, 10);
        if (*end || lineno < 0) lineno = -1;
    }
    bool ok = lineno >= 0 && (!cid || cid->type == JSON_NULL || cid->type == JSON_STRING);
    if (ok) {
        *k = batch_resume_key(key, cap, lineno, cid && cid->type == JSON_STRING ? cid->str : NULL);
        *status = sc && sc->is_int ? (int)sc->i : 200;
    }
    json_free(&v);
    return ok;
}

long batch_scan_output(int fd, const char *path, struct batch_set *done, struct batch_set *retry) {
    int fd2 = dup(fd);
    FILE *f = fd2 >= 0 ? fdopen(fd2, "rb") : NULL;
    if (!f) {
        if (fd2 >= 0) close(fd2);
        host_errorf("rwkv7 batch: cannot read '%s' for --resume: %s\n", path, strerror(errno));
        return -1;
    }
    rewind(f);
    char *line = NULL, key[4200];
    size_t cap = 0;
    long records = 0;
    off_t good_end = 0, pos = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        pos += n;
        if (line[n - 1] != '\n') break; /* truncated by a kill: cut it below */
        good_end = pos;
        size_t k;
        int status;
        if (!record_key(line, (size_t)n, key, sizeof key, &k, &status)) {
            fprintf(stderr, "rwkv7 batch: warning: %s: ignoring an unreadable record (%s)\n", path, rwkv7_last_error());
            continue;
        }
        /* 5xx (out of memory, device lost, internal) may succeed on a rerun; 4xx are final. A
         * later record of the same request supersedes an earlier one. */
        int added = 0;
        if (status >= 500) {
            if (!batch_set_has(done, key, k)) added = batch_set_add(retry, key, k);
        } else {
            added = batch_set_add(done, key, k);
        }
        if (added < 0) {
            records = -1;
            host_errorf("rwkv7 batch: out of memory reading '%s'\n", path);
            break;
        }
        records++;
    }
    free(line);
    if (records >= 0 && pos != good_end) {
        fprintf(stderr, "rwkv7 batch: %s: cutting a truncated last line (%lld bytes)\n", path, (long long)(pos - good_end));
        if (ftruncate(fd, good_end) != 0) {
            host_errorf("rwkv7 batch: cannot truncate '%s': %s\n", path, strerror(errno));
            records = -1;
        }
    }
    fclose(f);
    return records;
}

/* First pass (count): counts the records of each request in last. Second pass: copies in to
 * out, keeping only the last record of each request and counting the others in *skipped. Lines
 * that are not records are kept. */
static bool copy_last_records(FILE *in, FILE *out, struct batch_set *last, bool count, long *skipped) {
    char *line = NULL, key[4200];
    size_t cap = 0, k;
    ssize_t n;
    int status;
    bool ok = true;
    rewind(in);
    while (ok && (n = getline(&line, &cap, in)) > 0) {
        bool rec = record_key(line, (size_t)n, key, sizeof key, &k, &status);
        if (count) {
            if (rec && batch_set_add(last, key, k) < 0) ok = false;
            long *c = rec && ok ? batch_set_val(last, key, k) : NULL;
            if (c) ++*c;
            continue;
        }
        long *c = rec ? batch_set_val(last, key, k) : NULL;
        if (c && --*c > 0) { /* a later record of this request follows */
            ++*skipped;
            continue;
        }
        ok = fwrite(line, 1, (size_t)n, out) == (size_t)n;
    }
    free(line);
    return ok && !ferror(in);
}

long batch_compact_output(int fd, const char *path) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    struct batch_set last = {0};
    long dropped = -1;
    int fd2 = dup(fd), tfd = -1;
    FILE *in = fd2 >= 0 ? fdopen(fd2, "rb") : NULL, *out = NULL;
    struct stat st;
    if (!tmp || !in || fstat(fd, &st) != 0) goto fail;
    snprintf(tmp, plen + 32, "%s.compact-%ld", path, (long)getpid());
    if ((tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 0777)) < 0 || !(out = fdopen(tfd, "wb"))) goto fail;
    tfd = -1;
    dropped = 0;
    if (!copy_last_records(in, out, &last, true, &dropped) || !copy_last_records(in, out, &last, false, &dropped)) goto fail;
    /* The copy is complete on disk before it replaces the original, so a crash leaves one or the
     * other, never a mix. */
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) goto fail;
    if (fclose(out) != 0) {
        out = NULL;
        goto fail;
    }
    out = NULL;
    if (rename(tmp, path) != 0) goto fail;
    char *slash = strrchr(tmp, '/');
    if (slash) slash[1] = 0;
    int dfd = open(slash ? tmp : ".", O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself */
        close(dfd);
    }
    fclose(in);
    free(tmp);
    batch_set_free(&last);
    return dropped;
fail:
    host_errorf("rwkv7 batch: cannot compact '%s': %s\n", path, strerror(errno));
    if (out) fclose(out);
    if (tfd >= 0) close(tfd);
    if (tmp) unlink(tmp);
    if (in) fclose(in);
    else if (fd2 >= 0) close(fd2);
    free(tmp);
    batch_set_free(&last);
    return -1;
}
