/* cmd_serve.c: `rwkv7 serve`, an OpenAI-compatible HTTP server (serve.h) on the continuous-
 * batching engine of `rwkv7 batch` (batch_sched.c). The HTTP side starts first, so /health
 * answers 503 while the engine thread loads the model. The engine thread alone owns the model
 * and the scheduler: it admits waiting jobs into free slots, cancels the jobs whose clients went
 * away, and runs one scheduler step at a time without holding the lock, so connection threads
 * only wait for the lock while it updates job state. SIGTERM/SIGINT: stop accepting, let the
 * requests in flight finish for up to --drain-timeout seconds, cancel the rest, exit 0.
 * Built without libmicrohttpd, the command only says so (exit 2). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "commands.h"

#ifndef RWKV7_HAVE_MHD
int cmd_serve(int argc, char **argv) {
    fprintf(stderr, "rwkv7 serve: this build has no HTTP support (it was configured without libmicrohttpd; "
                    "install libmicrohttpd-dev and rebuild)\n");
    return 2;
}
#else
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "prefix_cache.h"
#include "serve.h"
#include "status.h"

struct engine {
    struct serve *s;
    struct model_opts mo;
    struct batch_sched *sched;
    struct rwkv7_model *m;
    int rc; /* exit code of a failed start */
};

/* Removes j from the job list (s->mu held). */
static void unlink_job(struct serve *s, struct serve_job *j) {
    for (struct serve_job **p = &s->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            j->next = NULL;
            return;
        }
}

/* Ends j without a result (s->mu held): status 0 = cancelled by its client, else the error. */
static void end_job(struct serve *s, struct serve_job *j, int status) {
    if (j->running) s->n_running--;
    else s->n_waiting--;
    unlink_job(s, j);
    j->done = true;
    j->status = status ? status : 499;
    pthread_cond_broadcast(&j->cv);
    serve_job_unref(j);
}

static void on_emit(void *user, const struct batch_req *r, const char *text, size_t n) {
    struct serve *s = user;
    struct serve_job *j = r->user;
    pthread_mutex_lock(&s->mu);
    json_buf_raw(&j->text, text, n);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_logprob(void *user, const struct batch_req *r, int32_t token, float logprob, const int32_t *top,
                       const float *top_logprob, int n_top) {
    struct serve *s = user;
    struct serve_job *j = r->user;
    pthread_mutex_lock(&s->mu);
    if (j->n_lp == j->cap_lp) {
        size_t cap = j->cap_lp ? 2 * j->cap_lp : 64;
        struct serve_logprob *p = realloc(j->lp, cap * sizeof *p);
        if (p) j->lp = p, j->cap_lp = cap;
    }
    if (j->n_lp < j->cap_lp) { /* out of memory: the list stops growing, the text goes on */
        struct serve_logprob *e = &j->lp[j->n_lp++];
        e->token = token;
        e->logprob = logprob;
        e->n_top = n_top;
        memcpy(e->top, top, (size_t)n_top * sizeof *top);
        memcpy(e->top_logprob, top_logprob, (size_t)n_top * sizeof *top_logprob);
    }
    pthread_mutex_unlock(&s->mu);
}

static enum rwkv7_status on_done(void *user, const struct batch_req *r, const char *text, size_t n_text,
                                 const char *finish, int n_gen) {
    struct serve *s = user;
    struct serve_job *j = r->user;
    pthread_mutex_lock(&s->mu);
    j->finish = finish;
    /* A sequence the scheduler failed (non-finite logits) answers 500, not a short reply. */
    if (r->status >= 500) {
        j->status = r->status;
        if (r->error) j->error = strdup(r->error); /* NULL: the generic message */
    }
    j->n_gen = n_gen;
    j->n_prompt = r->n_prompt;
    j->n_cached = r->n_cached;
    j->req = NULL; /* the scheduler frees it */
    s->prompt_tokens += (long long)r->n_prompt;
    s->cached_tokens += (long long)r->n_cached;
    s->gen_tokens += n_gen;
    s->n_running--;
    unlink_job(s, j);
    j->done = true;
    bool oom = j->text.oom;
    pthread_cond_broadcast(&j->cv);
    serve_job_unref(j);
    pthread_mutex_unlock(&s->mu);
    return oom ? rwkv7_fail(RWKV7_ERR_OOM, "serve: out of memory") : RWKV7_OK;
}

static int load(struct engine *e) {
    struct serve *s = e->s;
    int rc = host_load_model("serve", &e->mo, false, &e->m);
    if (rc) return rc;
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(e->m);
    size_t per_seq = rwkv7_state_n_floats(hp) * sizeof(float) + (size_t)hp->n_vocab * sizeof(float);
    int parallel = s->parallel;
    if (parallel == 0) {
        /* As `rwkv7 batch` chooses: half the free device memory, at most 256 on a GPU, 64 on the CPU. */
        uint64_t free_b = 0, total_b = 0;
        uint64_t budget = rwkv7_model_device_memory(e->m, &free_b, &total_b) == RWKV7_OK ? free_b / 2 : (uint64_t)1 << 30;
        uint64_t cap = strcmp(rwkv7_model_backend_name(e->m), "cpu") ? 256 : 64, fit = budget / per_seq;
        parallel = fit < 1 ? 1 : fit > cap ? (int)cap : (int)fit;
    }
    size_t cache = s->cache_bytes < 2 * per_seq ? 0 : s->cache_bytes;
    rwkv7_model_set_batch_invariant(e->m, true);
    enum rwkv7_status st = batch_sched_init(e->m, parallel, s->chunk, cache, &e->sched);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 serve: cannot set up %d sequences: %s\n", parallel, rwkv7_last_error());
        return host_status_exit(st) ? host_status_exit(st) : 1;
    }
    batch_sched_set_emit(e->sched, on_emit, s);
    batch_sched_set_logprob(e->sched, on_logprob);
    fprintf(stderr, "rwkv7 serve: %s; %d sequences in flight (%.1f MiB state+logits each), state cache %zu MiB\n",
            rwkv7_model_device_desc(e->m), parallel, (double)per_seq / (1 << 20), cache >> 20);
    pthread_mutex_lock(&s->mu);
    s->parallel = parallel;
    s->tok = rwkv7_model_tokenizer(e->m);
    s->loaded = true;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Statistics for /metrics (s->mu held); rates over windows of at least 2 s. */
static void update_stats(struct engine *e, double *win_t, long long *win_p, long long *win_g) {
    struct serve *s = e->s;
    long long pt, ct, gt;
    batch_sched_counts(e->sched, &pt, &ct, &gt);
    s->eval_prompt = pt;
    s->eval_gen = gt;
    double t = now_ms();
    if (t - *win_t >= 2000) {
        s->prefill_tps = (double)(pt - *win_p) * 1e3 / (t - *win_t);
        s->decode_tps = (double)(gt - *win_g) * 1e3 / (t - *win_t);
        *win_t = t, *win_p = pt, *win_g = gt;
    }
    struct rwkv7_prefix_cache_stats cs;
    rwkv7_prefix_cache_get_stats(batch_sched_cache(e->sched), &cs);
    s->cache_hits = cs.hits;
    s->cache_misses = cs.misses;
    s->cache_entries = cs.n_entries;
    s->cache_bytes_used = cs.bytes;
}

static void *engine_main(void *arg) {
    struct engine *e = arg;
    struct serve *s = e->s;
    e->rc = load(e);
    pthread_mutex_lock(&s->mu);
    if (e->rc) {
        s->load_failed = true;
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    double win_t = now_ms();
    long long win_p = 0, win_g = 0;
    enum rwkv7_status st = RWKV7_OK;
    while (!s->quit && st == RWKV7_OK) {
        /* Cancel first, so a slot freed by a vanished client goes to the next waiting job. */
        for (struct serve_job *j = s->jobs, *next; j; j = next) {
            next = j->next;
            if (!j->cancel) continue;
            if (j->running && !batch_sched_cancel(e->sched, j->req)) continue; /* finishing now */
            if (j->running) j->req = NULL; /* freed by the scheduler */
            end_job(s, j, 0);
        }
        for (struct serve_job *j = s->jobs; j && batch_sched_free_slots(e->sched) > 0; j = j->next) {
            if (j->running) continue;
            j->req->user = j;
            if ((st = batch_sched_add(e->sched, j->req)) != RWKV7_OK) break;
            j->running = true; /* j->req is the scheduler's now; kept only to cancel it */
            s->n_waiting--;
            s->n_running++;
        }
        if (st != RWKV7_OK) break;
        if (batch_sched_running(e->sched) == 0) {
            update_stats(e, &win_t, &win_p, &win_g);
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_sec += 1;
            pthread_cond_timedwait(&s->engine_cv, &s->mu, &t);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        st = batch_sched_step(e->sched, on_done, s);
        pthread_mutex_lock(&s->mu);
        update_stats(e, &win_t, &win_p, &win_g);
    }
    if (st != RWKV7_OK) fprintf(stderr, "rwkv7 serve: engine failure: %s\n", rwkv7_last_error());
    /* Quit or failure: every job left ends now (503 while draining, 500 after a failure). */
    while (s->jobs) {
        struct serve_job *j = s->jobs;
        if (j->running) j->req = NULL; /* freed with the scheduler below */
        end_job(s, j, st == RWKV7_OK ? 503 : 500);
    }
    s->loaded = false;
    if (st != RWKV7_OK) s->load_failed = true;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int cmd_serve(int argc, char **argv) {
    struct serve s;
    memset(&s, 0, sizeof s);
    struct engine e = {0};
    struct batch_defaults *d = &s.defaults;
    rwkv7_sampler_params_default(&d->sp);
    uint64_t seed = RWKV7_SEED_RANDOM;
    const char *host = "127.0.0.1", *api_key = NULL, *think = NULL;
    int port = 8080, cache_mib = 256, timeout = 60, max_body_kib = 1024;
    s.chunk = 128;
    s.max_queue = 256;
    s.drain_s = 10;
    d->max_tokens = 512;
    d->max_prompt_tokens = 32768;
    const struct opt opts[] = {
        MODEL_OPTS(e.mo),
        {"--host", OPT_STR, &host, "ADDR", "address to listen on (default 127.0.0.1: this machine only)"},
        {"--port", OPT_INT, &port, "N", "TCP port; 0 = any free one, printed (default 8080)"},
        {"--api-key", OPT_STR, &api_key, "KEY", "require 'Authorization: Bearer KEY' on /v1/* (default: env RWKV7_API_KEY, else none)"},
        {"-np,--parallel", OPT_INT, &s.parallel, "N", "sequences in flight (default: as rwkv7 batch, at most 256 on a GPU, 64 on the CPU)"},
        {"--max-queue", OPT_INT, &s.max_queue, "N", "requests waiting for a slot before 429 (default 256)"},
        {"--state-cache", OPT_INT, &cache_mib, "MiB", "states of prompts and conversations kept for reuse, LRU; 0 = off (default 256)"},
        {"--max-body", OPT_INT, &max_body_kib, "KiB", "largest request body; larger gets 413 (default 1024)"},
        {"--timeout", OPT_INT, &timeout, "S", "close a connection idle (or not reading) for S seconds (default 60)"},
        {"--drain-timeout", OPT_INT, &s.drain_s, "S", "on SIGTERM, let requests in flight finish for S seconds, then cancel (default 10)"},
        {"-n,--max-tokens", OPT_INT, &d->max_tokens, "N", "max_tokens of requests that give none (default 512)"},
        {"--max-prompt-tokens", OPT_INT, &d->max_prompt_tokens, "N", "longer prompts get 400 (default 32768)"},
        {"--chunk", OPT_INT, &s.chunk, "N", "prefill tokens per sequence per step (default 128)"},
        SAMPLING_OPTS(d->sp, seed),
        {"--think", OPT_STR, &think, "MODE", "chat think mode of requests that give none: off|on|bit|lot|fake (default off)"},
        {"--ignore-eos", OPT_FLAG, &d->ignore_eos, NULL, "do not stop at token 0 unless a request says so"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("serve", "-m FILE [--host ADDR] [--port N] [--api-key KEY] [-np N] [sampling options]", opts, argc,
                        argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if (!e.mo.model) {
        fprintf(stderr, "rwkv7 serve: no model given (-m FILE)\n");
        return 2;
    }
    if (port < 0 || port > 65535 || s.parallel < 0 || s.parallel > 4096 || s.max_queue < 0 || cache_mib < 0 ||
        max_body_kib < 1 || max_body_kib > 1024 * 1024 || timeout < 1 || s.drain_s < 0 || d->max_tokens < 0 ||
        d->max_prompt_tokens < 1 || s.chunk < 1 || s.chunk > 4096) {
        fprintf(stderr, "rwkv7 serve: --port must be in [0, 65535], -np in [0, 4096], --chunk in [1, 4096], --max-body "
                        "in [1, 1048576] KiB, --timeout >= 1, --max-prompt-tokens >= 1, the others >= 0\n");
        return 2;
    }
    if (think && rwkv7_think_parse(think, &d->think) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 serve: --think must be off, on, bit, lot or fake, got '%s'\n", think);
        return 2;
    }
    /* The model loads after the server listens (so /health can say 503 meanwhile); a file that
     * cannot even be opened is refused first. */
    FILE *mf = fopen(e.mo.model, "rb");
    if (!mf) {
        fprintf(stderr, "rwkv7 serve: cannot open '%s': %s\n", e.mo.model, strerror(errno));
        return 2;
    }
    fclose(mf);
    struct rwkv7_sampler *probe = NULL;
    if (rwkv7_sampler_init(&d->sp, 2, &probe) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 serve: %s\n", rwkv7_last_error());
        return 2;
    }
    rwkv7_sampler_free(probe);
    if (!api_key) api_key = getenv("RWKV7_API_KEY");
    if (api_key && !*api_key) api_key = NULL;
    if (seed == RWKV7_SEED_RANDOM) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32)) & 0x7fffffffffffffffull;
    }
    d->batch_seed = seed;
    s.model_name = base_name(e.mo.model);
    s.api_key = api_key;
    s.max_body = (size_t)max_body_kib * 1024;
    s.timeout_s = timeout;
    s.cache_bytes = (size_t)cache_mib << 20;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.engine_cv, NULL);
    e.s = &s;

    /* Signals go to this thread only (sigtimedwait below); every thread started from here
     * inherits the mask. Writes to a vanished client must fail, not kill the process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct serve_http *http = NULL;
    int bound = port;
    if ((rc = serve_http_start(&s, host, port, &http, &bound))) return rc;
    fprintf(stderr, "rwkv7 serve: listening on http://%s%s%s:%d (model %s)%s\n", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", bound, s.model_name, api_key ? "; API key required" : "");
    if (strcmp(host, "127.0.0.1") && strcmp(host, "::1") && strcmp(host, "localhost") && !api_key)
        fprintf(stderr, "rwkv7 serve: warning: listening beyond this machine without an API key\n");
    fflush(stderr);

    pthread_t engine_thread;
    if (pthread_create(&engine_thread, NULL, engine_main, &e) != 0) {
        fprintf(stderr, "rwkv7 serve: cannot start the engine thread\n");
        serve_http_stop(http);
        return 1;
    }
    int sig = 0;
    for (;;) {
        struct timespec t = {0, 200 * 1000000L};
        siginfo_t info;
        int got = sigtimedwait(&set, &info, &t);
        if (got > 0) {
            sig = got;
            break;
        }
        pthread_mutex_lock(&s.mu);
        bool failed = s.load_failed;
        pthread_mutex_unlock(&s.mu);
        if (failed) break;
    }
    if (sig) {
        fprintf(stderr, "rwkv7 serve: %s: not accepting connections; finishing requests in flight (up to %d s)\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT", s.drain_s);
        serve_http_quiesce(http);
        pthread_mutex_lock(&s.mu);
        s.draining = true;
        pthread_mutex_unlock(&s.mu);
        double end = now_ms() + 1e3 * s.drain_s;
        for (;;) {
            pthread_mutex_lock(&s.mu);
            int busy = s.n_waiting + s.n_running;
            pthread_mutex_unlock(&s.mu);
            if (busy == 0 || now_ms() >= end) {
                if (busy) fprintf(stderr, "rwkv7 serve: cancelling %d requests still in flight\n", busy);
                break;
            }
            struct timespec t = {0, 50 * 1000000L};
            nanosleep(&t, NULL);
        }
    }
    pthread_mutex_lock(&s.mu);
    s.quit = true;
    pthread_cond_signal(&s.engine_cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(engine_thread, NULL);
    serve_http_stop(http); /* connection threads see their jobs ended and answer first */
    batch_sched_free(e.sched);
    rwkv7_model_free(e.m);
    pthread_cond_destroy(&s.engine_cv);
    pthread_mutex_destroy(&s.mu);
    if (e.rc) return e.rc;
    if (s.load_failed) return 1;
    fprintf(stderr, "rwkv7 serve: stopped\n");
    return 0;
}
#endif
