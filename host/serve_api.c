/* serve_api.c: request bodies in, OpenAI JSON out, for `rwkv7 serve` (serve.h). A body is checked
 * and turned into a scheduler request by the same code as a `rwkv7 batch` line (batch_io.c): the
 * server takes out what only HTTP has (stream, stream_options), wraps the rest as a batch line and
 * parses that, so both commands accept exactly the same fields with the same errors. Chat prompts
 * are then tokenized turn by turn (chat_segments.h) so a conversation's next request extends the
 * tokens of its last one and its saved state can be found in the prefix cache. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_segments.h"
#include "prefix_cache.h"
#include "serve.h"

/* Appends a string literal (its length known at compile time). */
#define JSON_LIT(b, lit) json_buf_raw((b), "" lit, sizeof(lit) - 1) /* "" lit: literals only */
#include "status.h"

/* Writes v back as JSON; members whose key is in skip[] (NULL-terminated) are left out. */
static void put_value(struct json_buf *b, const struct json_value *v, const char *const *skip) {
    switch (v->type) {
    case JSON_NULL: JSON_LIT(b, "null"); break;
    case JSON_BOOL: json_buf_raw(b, v->boolean ? "true" : "false", v->boolean ? 4 : 5); break;
    case JSON_NUMBER:
        if (v->is_int) json_buf_printf(b, "%lld", (long long)v->i);
        else json_buf_number(b, v->num);
        break;
    case JSON_STRING: json_buf_string(b, v->str, v->len); break;
    case JSON_ARRAY:
        JSON_LIT(b, "[");
        for (size_t i = 0; i < v->len; i++) {
            if (i) JSON_LIT(b, ",");
            put_value(b, &v->items[i], NULL);
        }
        JSON_LIT(b, "]");
        break;
    case JSON_OBJECT: {
        JSON_LIT(b, "{");
        bool first = true;
        for (size_t i = 0; i < v->len; i++) {
            bool skipped = false;
            for (int k = 0; skip && skip[k]; k++) skipped |= !strcmp(v->members[i].key, skip[k]);
            if (skipped) continue;
            if (!first) JSON_LIT(b, ",");
            first = false;
            json_buf_string(b, v->members[i].key, v->members[i].key_len);
            JSON_LIT(b, ":");
            put_value(b, &v->members[i].value, NULL);
        }
        JSON_LIT(b, "}");
        break;
    }
    }
}

/* The rendered chat prompt of a body that batch_parse_request already accepted (so roles and
 * contents are known to be well-formed). NULL when out of memory. */
static char *render_chat(const struct json_value *body, enum rwkv7_think think) {
    const struct json_value *msgs = json_get(body, "messages");
    struct rwkv7_chat_msg *cm = calloc(msgs->len, sizeof *cm);
    struct json_buf *texts = calloc(msgs->len, sizeof *texts);
    char *out = NULL;
    bool ok = cm && texts;
    for (size_t i = 0; ok && i < msgs->len; i++) {
        const struct json_value *role = json_get(&msgs->items[i], "role"), *c = json_get(&msgs->items[i], "content");
        JSON_LIT(&texts[i], "");
        if (c && c->type == JSON_STRING) json_buf_raw(&texts[i], c->str, c->len);
        for (size_t k = 0; c && c->type == JSON_ARRAY && k < c->len; k++) {
            const struct json_value *t = json_get(&c->items[k], "text");
            json_buf_raw(&texts[i], t->str, t->len);
        }
        json_buf_raw(&texts[i], "", 1); /* the terminating NUL */
        ok = !texts[i].oom;
        cm[i].role = !strcmp(role->str, "developer") ? "system" : role->str;
        cm[i].content = texts[i].p;
    }
    if (ok && rwkv7_chat_render(NULL, cm, (int)msgs->len, think, &out) != RWKV7_OK) out = NULL;
    for (size_t i = 0; texts && i < msgs->len; i++) json_buf_free(&texts[i]);
    free(texts);
    free(cm);
    return out;
}

int serve_parse(struct serve *s, bool chat, const char *body, size_t n, long long id, struct serve_job *job,
                char *err, size_t err_cap) {
    struct json_limits lim = {.max_depth = 64, .max_bytes = s->max_body, .max_keys = JSON_DEFAULT_MAX_KEYS};
    struct json_value v;
    enum rwkv7_status st = json_parse(body, n, &lim, &v);
    if (st != RWKV7_OK) {
        snprintf(err, err_cap, "invalid JSON body: %s", rwkv7_last_error());
        return st == RWKV7_ERR_OOM ? 500 : 400;
    }
    int status = 0;
    struct json_buf line = {0};
    struct batch_req *r = NULL;
    const struct json_value *stream = json_get(&v, "stream"), *so = json_get(&v, "stream_options");
    const struct json_value *iu = so && so->type == JSON_OBJECT ? json_get(so, "include_usage") : NULL;
    const struct json_value *lp = json_get(&v, "logprobs"), *tlp = json_get(&v, "top_logprobs");
    bool want_lp = false;
    int64_t n_top = 0;
    if (v.type != JSON_OBJECT) {
        snprintf(err, err_cap, "the body must be a JSON object, not %s", json_type_name(v.type));
        status = 400;
    } else if (stream && stream->type != JSON_NULL && stream->type != JSON_BOOL) {
        snprintf(err, err_cap, "body.stream must be true or false");
        status = 400;
    } else if ((so && so->type != JSON_NULL && so->type != JSON_OBJECT) || (iu && iu->type != JSON_BOOL)) {
        snprintf(err, err_cap, "body.stream_options must be an object like {\"include_usage\": true}");
        status = 400;
    } else if (chat) {
        /* chat: logprobs true/false, top_logprobs 0..20 alternatives */
        if (lp && lp->type != JSON_NULL && lp->type != JSON_BOOL) {
            snprintf(err, err_cap, "body.logprobs must be true or false");
            status = 400;
        } else if (tlp && tlp->type != JSON_NULL &&
                   (tlp->type != JSON_NUMBER || !tlp->is_int || tlp->i < 0 || tlp->i > BATCH_MAX_TOP_LOGPROBS)) {
            snprintf(err, err_cap, "body.top_logprobs must be an integer in [0, %d]", BATCH_MAX_TOP_LOGPROBS);
            status = 400;
        } else {
            want_lp = lp && lp->type == JSON_BOOL && lp->boolean;
            n_top = tlp && tlp->type == JSON_NUMBER ? tlp->i : 0;
            if (n_top > 0 && !want_lp) {
                snprintf(err, err_cap, "body.top_logprobs needs \"logprobs\": true");
                status = 400;
            }
        }
    } else {
        /* completions: logprobs N = the sampled token and N alternatives */
        if (lp && lp->type != JSON_NULL && !(lp->type == JSON_BOOL && !lp->boolean) &&
            (lp->type != JSON_NUMBER || !lp->is_int || lp->i < 0 || lp->i > BATCH_MAX_TOP_LOGPROBS)) {
            snprintf(err, err_cap, "body.logprobs must be an integer in [0, %d]", BATCH_MAX_TOP_LOGPROBS);
            status = 400;
        } else if (lp && lp->type == JSON_NUMBER) {
            want_lp = true;
            n_top = lp->i;
        }
    }
    if (!status) {
        static const char *const skip[] = {"stream", "stream_options", "logprobs", "top_logprobs", NULL};
        json_buf_printf(&line, "{\"custom_id\":\"http\",\"method\":\"POST\",\"url\":\"%s\",\"body\":",
                        chat ? "/v1/chat/completions" : "/v1/completions");
        put_value(&line, &v, skip);
        JSON_LIT(&line, "}");
        if (!(r = calloc(1, sizeof *r)) || line.oom ||
            batch_parse_request(line.p, line.n, (long)id, &s->defaults, s->tok, r) != RWKV7_OK) {
            snprintf(err, err_cap, "out of memory");
            status = 500;
        } else if (r->status) {
            snprintf(err, err_cap, "%s", r->error ? r->error : "invalid request");
            status = r->status;
        }
    }
    if (!status && chat) {
        /* Same rendering as batch_io.c, tokenized turn by turn (see the file comment). */
        enum rwkv7_think think = s->defaults.think;
        const struct json_value *th = json_get(&v, "think");
        if (th && th->type == JSON_STRING) rwkv7_think_parse(th->str, &think);
        char *text = render_chat(&v, think);
        int32_t *ids = NULL;
        size_t n_ids = 0, *ends = NULL;
        int n_ends = 0;
        if (!text || chat_tokenize_turns(s->tok, text, strlen(text), &ids, &n_ids, &ends, &n_ends) != RWKV7_OK) {
            snprintf(err, err_cap, "cannot tokenize the conversation: %s", text ? rwkv7_last_error() : "out of memory");
            status = 500;
        } else if ((long long)n_ids > s->defaults.max_prompt_tokens) {
            snprintf(err, err_cap, "prompt is %zu tokens, over the limit of %d (--max-prompt-tokens)", n_ids,
                     s->defaults.max_prompt_tokens);
            status = 400;
            free(ids);
            free(ends);
        } else {
            free(r->prompt);
            r->prompt = ids;
            r->n_prompt = n_ids;
            r->seg_ends = ends;
            r->n_seg = n_ends;
            r->keep_turn = think == RWKV7_THINK_OFF;
        }
        free(text);
    }
    if (!status) {
        job->chat = chat;
        job->stream = stream && stream->type == JSON_BOOL && stream->boolean;
        job->include_usage = iu && iu->boolean;
        job->logprobs = r->want_logprobs = want_lp;
        r->n_top_logprobs = (int)n_top;
        job->model = strdup(r->model ? r->model : s->model_name);
        if (!job->model) {
            snprintf(err, err_cap, "out of memory");
            status = 500;
        }
    }
    if (!status) {
        job->req = r;
        job->n_prompt = r->n_prompt;
    } else if (r) {
        free(r->seg_ends);
        batch_req_free(r);
        free(r);
    }
    json_buf_free(&line);
    json_free(&v);
    return status;
}

void serve_job_free(struct serve_job *j) {
    if (!j) return;
    if (j->req) {
        free(j->req->seg_ends);
        batch_req_free(j->req);
        free(j->req);
    }
    free(j->model);
    free(j->error);
    free(j->lp);
    json_buf_free(&j->text);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void serve_error_json(struct json_buf *b, int status, const char *msg) {
    const char *type = status == 401 ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = status == 401 ? "\"invalid_api_key\""
                       : status == 413 ? "\"request_too_large\""
                       : status == 429 ? "\"queue_full\""
                       : status == 503 ? "\"unavailable\"" : "null";
    JSON_LIT(b, "{\"error\":{\"message\":");
    json_buf_string(b, msg, strlen(msg));
    json_buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":%s}}\n", type, code);
}

static void put_head(struct json_buf *b, const struct serve_job *j, const char *object) {
    json_buf_printf(b, "{\"id\":\"%s-%lld\",\"object\":\"%s\",\"created\":%lld,\"model\":", j->chat ? "chatcmpl" : "cmpl",
                    j->id, object, j->created);
    json_buf_string(b, j->model, strlen(j->model));
}

static void put_usage(struct json_buf *b, const struct serve_job *j) {
    json_buf_printf(b, "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%d,\"total_tokens\":%zu,"
                       "\"prompt_tokens_details\":{\"cached_tokens\":%zu}}",
                    j->n_prompt, j->n_gen, j->n_prompt + (size_t)j->n_gen, j->n_cached);
}

/* A token's text as a JSON string; chat also gets its raw "bytes". */
static void put_token(struct json_buf *b, const struct serve *s, int32_t t, bool chat, size_t *len) {
    size_t n = 0;
    const char *p = rwkv7_token_piece(s->tok, t, &n);
    if (!p) n = 0;
    JSON_LIT(b, "\"token\":");
    json_buf_string(b, p ? p : "", n);
    if (chat) {
        JSON_LIT(b, ",\"bytes\":[");
        for (size_t i = 0; i < n; i++) json_buf_printf(b, "%s%u", i ? "," : "", (unsigned)(unsigned char)p[i]);
        JSON_LIT(b, "]");
    }
    if (len) *len = n;
}

/* "logprobs": OpenAI's chat form {"content": [{token, logprob, bytes, top_logprobs}]} or the
 * completions form {tokens, token_logprobs, top_logprobs, text_offset} for entries [from, to);
 * *off is the text offset of entry from and is advanced. null when not asked for. */
static void put_logprobs(struct json_buf *b, const struct serve *s, const struct serve_job *j, size_t from, size_t to,
                         size_t *off) {
    JSON_LIT(b, "\"logprobs\":");
    if (!j->logprobs) {
        JSON_LIT(b, "null");
        return;
    }
    if (j->chat) {
        JSON_LIT(b, "{\"content\":[");
        for (size_t i = from; i < to; i++) {
            const struct serve_logprob *e = &j->lp[i];
            if (i > from) JSON_LIT(b, ",");
            JSON_LIT(b, "{");
            put_token(b, s, e->token, true, NULL);
            json_buf_printf(b, ",\"logprob\":");
            json_buf_number(b, e->logprob);
            JSON_LIT(b, ",\"top_logprobs\":[");
            for (int k = 0; k < e->n_top; k++) {
                if (k) JSON_LIT(b, ",");
                JSON_LIT(b, "{");
                put_token(b, s, e->top[k], true, NULL);
                JSON_LIT(b, ",\"logprob\":");
                json_buf_number(b, e->top_logprob[k]);
                JSON_LIT(b, "}");
            }
            JSON_LIT(b, "]}");
        }
        JSON_LIT(b, "]}");
        return;
    }
    JSON_LIT(b, "{\"tokens\":[");
    for (size_t i = from; i < to; i++) {
        size_t n = 0;
        const char *p = rwkv7_token_piece(s->tok, j->lp[i].token, &n);
        if (i > from) JSON_LIT(b, ",");
        json_buf_string(b, p ? p : "", p ? n : 0);
    }
    JSON_LIT(b, "],\"token_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        if (i > from) JSON_LIT(b, ",");
        json_buf_number(b, j->lp[i].logprob);
    }
    JSON_LIT(b, "],\"top_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        const struct serve_logprob *e = &j->lp[i];
        if (i > from) JSON_LIT(b, ",");
        JSON_LIT(b, "{");
        /* Object keys must be unique: two pieces that are both invalid UTF-8 alone print as the
         * same U+FFFD, so only the first (most likely) of equal keys is kept. */
        struct json_buf keys[BATCH_MAX_TOP_LOGPROBS];
        memset(keys, 0, sizeof keys);
        bool first = true;
        for (int k = 0; k < e->n_top; k++) {
            size_t n = 0;
            const char *p = rwkv7_token_piece(s->tok, e->top[k], &n);
            json_buf_string(&keys[k], p ? p : "", p ? n : 0);
            bool dup = keys[k].oom;
            for (int q = 0; q < k && !dup; q++) dup = keys[q].n == keys[k].n && !memcmp(keys[q].p, keys[k].p, keys[k].n);
            if (dup) continue;
            if (!first) JSON_LIT(b, ",");
            first = false;
            json_buf_raw(b, keys[k].p, keys[k].n);
            JSON_LIT(b, ":");
            json_buf_number(b, e->top_logprob[k]);
        }
        for (int k = 0; k < e->n_top; k++) json_buf_free(&keys[k]);
        JSON_LIT(b, "}");
    }
    JSON_LIT(b, "],\"text_offset\":[");
    for (size_t i = from; i < to; i++) {
        size_t n = 0;
        rwkv7_token_piece(s->tok, j->lp[i].token, &n);
        json_buf_printf(b, "%s%zu", i > from ? "," : "", *off);
        *off += n;
    }
    JSON_LIT(b, "]}");
}

void serve_result_json(struct json_buf *b, const struct serve *s, const struct serve_job *j) {
    put_head(b, j, j->chat ? "chat.completion" : "text_completion");
    JSON_LIT(b, ",\"choices\":[{\"index\":0,");
    if (j->chat) {
        json_buf_printf(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        json_buf_string(b, j->text.p ? j->text.p : "", j->text.n);
        JSON_LIT(b, "}");
    } else {
        json_buf_printf(b, "\"text\":");
        json_buf_string(b, j->text.p ? j->text.p : "", j->text.n);
    }
    json_buf_printf(b, ",\"finish_reason\":\"%s\",", j->finish);
    size_t off = 0;
    put_logprobs(b, s, j, 0, j->n_lp, &off);
    JSON_LIT(b, "}],");
    put_usage(b, j);
    JSON_LIT(b, "}\n");
}

void serve_chunk_sse(struct json_buf *b, const struct serve *s, struct serve_job *j, const char *text, size_t n,
                     const char *finish) {
    JSON_LIT(b, "data: ");
    put_head(b, j, j->chat ? "chat.completion.chunk" : "text_completion");
    JSON_LIT(b, ",\"choices\":[{\"index\":0,");
    if (j->chat) {
        /* The first chunk carries the role, as OpenAI's do. */
        JSON_LIT(b, "\"delta\":{");
        if (j->sent == 0 && !finish) JSON_LIT(b, "\"role\":\"assistant\",");
        if (!finish) {
            JSON_LIT(b, "\"content\":");
            json_buf_string(b, text, n);
        }
        JSON_LIT(b, "}");
    } else {
        JSON_LIT(b, "\"text\":");
        json_buf_string(b, text, n);
    }
    if (finish) json_buf_printf(b, ",\"finish_reason\":\"%s\",", finish);
    else JSON_LIT(b, ",\"finish_reason\":null,");
    /* The entries of the tokens sampled since the last chunk (text may lag behind them by a
     * held-back stop-string prefix or UTF-8 sequence). */
    put_logprobs(b, s, j, j->lp_sent, j->n_lp, &j->lp_text_off);
    j->lp_sent = j->n_lp;
    JSON_LIT(b, "}]");
    if (finish) JSON_LIT(b, ",");
    /* usage rides on the final chunk always (every final response has it); with include_usage
     * OpenAI's extra usage-only chunk follows too. */
    if (finish) put_usage(b, j);
    JSON_LIT(b, "}\n\n");
    if (finish && j->include_usage) {
        JSON_LIT(b, "data: ");
        put_head(b, j, j->chat ? "chat.completion.chunk" : "text_completion");
        JSON_LIT(b, ",\"choices\":[],");
        put_usage(b, j);
        JSON_LIT(b, "}\n\n");
    }
}

void serve_models_json(struct json_buf *b, const struct serve *s, long long created) {
    JSON_LIT(b, "{\"object\":\"list\",\"data\":[{\"id\":");
    json_buf_string(b, s->model_name, strlen(s->model_name));
    json_buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"rwkv7\"}]}\n", created);
}

void serve_metrics_text(struct json_buf *b, const struct serve *s) {
    json_buf_printf(b, "# HELP rwkv7_requests_total HTTP requests answered, by status code.\n"
                       "# TYPE rwkv7_requests_total counter\n");
    for (int i = 0; i < SERVE_MAX_STATUS; i++)
        if (s->by_status[i]) json_buf_printf(b, "rwkv7_requests_total{status=\"%d\"} %llu\n", i, (unsigned long long)s->by_status[i]);
#define METRIC(name, type, help, fmt, val) \
    json_buf_printf(b, "# HELP rwkv7_" name " " help "\n# TYPE rwkv7_" name " " type "\nrwkv7_" name " " fmt "\n", val)
    METRIC("prompt_tokens_total", "counter", "Prompt tokens of finished requests.", "%lld", s->prompt_tokens);
    METRIC("prompt_tokens_cached_total", "counter", "Prompt tokens of finished requests restored from the state cache.", "%lld", s->cached_tokens);
    METRIC("generation_tokens_total", "counter", "Tokens generated for finished requests.", "%lld", s->gen_tokens);
    METRIC("prefill_tokens_total", "counter", "Prompt tokens evaluated by the engine.", "%lld", s->eval_prompt);
    METRIC("decode_tokens_total", "counter", "Tokens sampled by the engine.", "%lld", s->eval_gen);
    METRIC("queue_depth", "gauge", "Requests waiting for a slot.", "%d", s->n_waiting);
    METRIC("running_sequences", "gauge", "Requests being prefilled or decoded.", "%d", s->n_running);
    METRIC("slots", "gauge", "Sequences the engine runs at once (-np).", "%d", s->parallel);
    METRIC("prefill_tokens_per_second", "gauge", "Prompt tokens evaluated per second, last seconds.", "%.1f", s->prefill_tps);
    METRIC("decode_tokens_per_second", "gauge", "Tokens generated per second, last seconds.", "%.1f", s->decode_tps);
    METRIC("state_cache_hits_total", "counter", "Requests that restored a cached state.", "%llu", (unsigned long long)s->cache_hits);
    METRIC("state_cache_misses_total", "counter", "Requests that found no cached state.", "%llu", (unsigned long long)s->cache_misses);
    METRIC("state_cache_entries", "gauge", "States held in the cache.", "%llu", (unsigned long long)s->cache_entries);
    METRIC("state_cache_bytes", "gauge", "Bytes held by the state cache.", "%llu", (unsigned long long)s->cache_bytes_used);
    METRIC("model_loaded", "gauge", "1 once the model is loaded.", "%d", s->loaded ? 1 : 0);
#undef METRIC
}
