/* serve.h: the pieces of `rwkv7 serve`, the OpenAI-compatible HTTP server (README "rwkv7
 * serve"). cmd_serve.c holds the flags, the engine thread (the batch scheduler of batch_sched.c,
 * shared with `rwkv7 batch`) and SIGTERM draining; serve_http.c the libmicrohttpd handlers;
 * serve_api.c turns request bodies into scheduler requests and results into OpenAI JSON.
 * Threads: libmicrohttpd runs one thread per connection; the engine thread alone touches the
 * model and the scheduler. Everything shared between them lives in struct serve and its jobs and
 * is guarded by serve.mu. */
#ifndef RWKV7_HOST_SERVE_H
#define RWKV7_HOST_SERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "json.h"

/* One sampled token's log-probability and its most likely alternatives (logprobs requests). */
struct serve_logprob {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top[BATCH_MAX_TOP_LOGPROBS];
    float top_logprob[BATCH_MAX_TOP_LOGPROBS];
};

/* One completion request, shared by its connection thread and the engine. */
struct serve_job {
    struct serve_job *next;  /* in the engine's list (waiting or running) */
    int refs;                /* connection + engine; freed at 0 */
    struct batch_req *req;   /* waiting: owned here; running: owned by the scheduler; done: NULL */
    bool chat, stream, include_usage;
    bool running, done, cancel;
    int status;              /* done without a result: 503 (drained) or 500 (engine failure) */
    char *error;             /* the scheduler's message for a failed sequence (e.g. non-finite logits) */
    long long id, created;
    char *model;             /* echoed "model" */
    struct json_buf text;    /* output so far */
    size_t sent;             /* streaming: bytes of text already sent */
    const char *finish;      /* "stop" | "length" when done */
    size_t n_prompt, n_cached;
    int n_gen;
    bool logprobs;           /* the request asked for logprobs */
    struct serve_logprob *lp; /* [n_lp] so far, one per sampled token */
    size_t n_lp, cap_lp;
    size_t lp_sent, lp_text_off; /* streaming: entries sent, bytes of their token texts */
    pthread_cond_t cv;       /* signalled on new text and when done */
};

#define SERVE_MAX_STATUS 600

struct serve {
    /* settings (read-only after start) */
    const char *model_name, *api_key;
    size_t max_body;
    int timeout_s, max_queue, parallel, chunk, drain_s;
    size_t cache_bytes;
    struct batch_defaults defaults;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t engine_cv;
    bool loaded, load_failed, draining, quit;
    const struct rwkv7_tokenizer *tok;
    struct serve_job *jobs; /* waiting and running, admission order */
    int n_waiting, n_running;
    long long next_id;
    uint64_t by_status[SERVE_MAX_STATUS];
    long long prompt_tokens, cached_tokens, gen_tokens;   /* over finished requests */
    long long eval_prompt, eval_gen;                     /* scheduler totals */
    double prefill_tps, decode_tps;                      /* over the last few seconds */
    uint64_t cache_hits, cache_misses, cache_entries, cache_bytes_used;
};

/* serve_api.c */
/* Parses a request body for /v1/completions (chat = false) or /v1/chat/completions into *job.
 * Returns 0, or an HTTP status (400; 500 when out of memory) with a message in err. Caller holds
 * no lock; s->tok and s->defaults must be set. */
int serve_parse(struct serve *s, bool chat, const char *body, size_t n, long long id, struct serve_job *job,
                char *err, size_t err_cap);
/* OpenAI error object. */
void serve_error_json(struct json_buf *b, int status, const char *msg);
/* The whole response of a finished non-streaming job. */
void serve_result_json(struct json_buf *b, const struct serve *s, const struct serve_job *j);
/* One SSE event: a chunk with text[0..n) (finish NULL), or the final chunk with usage. */
void serve_chunk_sse(struct json_buf *b, const struct serve *s, struct serve_job *j, const char *text, size_t n,
                     const char *finish);
void serve_models_json(struct json_buf *b, const struct serve *s, long long created);
void serve_metrics_text(struct json_buf *b, const struct serve *s);
void serve_job_free(struct serve_job *j);

/* serve_http.c */
struct serve_http;
/* Starts listening on host:port (port 0: any; *bound gets the port). Returns 0 or an exit code. */
int serve_http_start(struct serve *s, const char *host, int port, struct serve_http **out, int *bound);
/* Stops accepting new connections (the listening socket is closed); open ones go on. */
void serve_http_quiesce(struct serve_http *h);
/* Closes every connection and joins their threads. */
void serve_http_stop(struct serve_http *h);
/* Drops one reference to j (with s->mu held); frees it at 0. */
void serve_job_unref(struct serve_job *j);

#endif
