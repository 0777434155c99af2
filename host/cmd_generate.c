/* cmd_generate.c: `rwkv7 generate`: prefill a prompt, then sample and stream tokens until -n,
 * token 0 (end of text), a stop token or a stop string. Ends with llama.cpp-style timing lines on
 * stderr (load, prompt eval, eval, sampling, total). --state-out saves the state with the last
 * sampled token still unfed (plus the sampler state), and --state-in feeds that token first, so
 * `-n N --state-out S` then `--state-in S -p "" -n M` prints exactly what `-n N+M` prints. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "sampler.h"
#include "state_file.h"
#include "tokenizer.h"

static void perf_line(const char *what, double ms, long n, const char *unit) {
    fprintf(stderr, "rwkv7_perf: %16s = %10.2f ms / %5ld %-6s (%8.2f ms per token, %8.2f tokens per second)\n", what,
            ms, n, unit, n ? ms / (double)n : 0.0, ms > 0 ? 1e3 * (double)n / ms : 0.0);
}

/* fwrite with an empty piece (the stop filter may hand back NULL, 0) is undefined behaviour. */
static void put(const char *s, size_t n) {
    if (n) fwrite(s, 1, n, stdout);
}

int cmd_generate(int argc, char **argv) {
    struct model_opts mo = {0};
    struct rwkv7_sampler_params sp;
    rwkv7_sampler_params_default(&sp);
    uint64_t seed = RWKV7_SEED_RANDOM;
    const char *prompt = NULL, *file = NULL, *state_in = NULL, *state_out = NULL;
    int n_predict = -1;
    bool ignore_eos = false, no_escape = false, no_perf = false;
    struct str_list stops = {0}, stop_tokens = {0};
    const struct opt opts[] = {
        MODEL_OPTS(mo),
        {"-p,--prompt", OPT_STR, &prompt, "TEXT", "prompt (\\n, \\t, \\xHH escapes decoded; default: empty = start of text)"},
        {"-f,--file", OPT_STR, &file, "FILE", "read the prompt from a file (verbatim)"},
        {"-n,--predict,--n-predict", OPT_INT, &n_predict, "N", "tokens to generate; -1 = until end of text or a stop (default -1)"},
        SAMPLING_OPTS(sp, seed),
        {"-r,--reverse-prompt,--stop", OPT_LIST, &stops, "TEXT", "stop when the output contains TEXT (repeatable; escapes decoded)"},
        {"--stop-token", OPT_LIST, &stop_tokens, "ID", "stop at this token id (repeatable; token 0 always stops unless --ignore-eos)"},
        {"--ignore-eos", OPT_FLAG, &ignore_eos, NULL, "do not stop at token 0 (end of text)"},
        {"--no-escape", OPT_FLAG, &no_escape, NULL, "take -p literally"},
        {"--no-perf", OPT_FLAG, &no_perf, NULL, "omit the timing summary"},
        {"--state-in", OPT_STR, &state_in, "FILE", "start from a saved state: feed its pending token, then the prompt (docs/state-format.md)"},
        {"--state-out", OPT_STR, &state_out, "FILE", "save the state at the end, the last sampled token unfed, for an exact --state-in resume"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("generate", "-m FILE [-p TEXT | -f FILE] [-n N] [sampling options] [--state-in F] [--state-out F]", opts, argc, argv, 2);
    if (rc) {
        str_list_free(&stops);
        str_list_free(&stop_tokens);
        return rc == 1 ? 0 : rc;
    }
    sp.seed = seed;
    char *text = NULL;
    size_t text_n = 0;
    struct rwkv7_model *m = NULL;
    struct rwkv7_ctx *ctx = NULL;
    struct rwkv7_sampler *smp = NULL;
    struct rwkv7_stop *stop = NULL;
    int32_t *ids = NULL, *stop_ids = NULL;
    float *logits = NULL;
    char **stop_copies = NULL;
    struct rwkv7_state_extra sx = {0};
    sx.pending_token = -1;
    void *sampler_blob = NULL;
    enum rwkv7_status st = RWKV7_OK;
    rc = 0;

    if (prompt && file) {
        fprintf(stderr, "rwkv7 generate: give only one of -p and -f\n");
        rc = 2;
        goto done;
    }
    /* Everything the user gave is checked before the model is loaded. */
    if (n_predict < -1) {
        fprintf(stderr, "rwkv7 generate: -n must be -1 (no limit) or >= 0, got %d\n", n_predict);
        rc = 2;
        goto done;
    }
    if ((rc = host_check_sampling("generate", &sp)) || (state_out && (rc = host_check_writable("generate", state_out))))
        goto done;
    if (file) {
        if (!(text = read_text_file(file, &text_n))) { rc = 2; goto done; }
    } else {
        text = strdup(prompt ? prompt : "");
        if (!text) { rc = 1; goto done; }
        text_n = no_escape ? strlen(text) : unescape_prompt(text);
    }
    stop_ids = calloc((size_t)stop_tokens.n + 1, sizeof *stop_ids);
    for (int i = 0; stop_ids && i < stop_tokens.n; i++) {
        char *end;
        long v = strtol(stop_tokens.items[i], &end, 10);
        if (*end || v < 0 || v > 0x7fffffff) {
            host_errorf("rwkv7 generate: bad --stop-token '%s'\n", stop_tokens.items[i]);
            rc = 2;
            goto done;
        }
        stop_ids[i] = (int32_t)v;
    }
    stop_copies = calloc((size_t)stops.n + 1, sizeof *stop_copies);
    for (int i = 0; stop_copies && i < stops.n; i++) {
        stop_copies[i] = strdup(stops.items[i]);
        if (!stop_copies[i]) { rc = 1; goto done; }
        if (!no_escape) unescape_prompt(stop_copies[i]);
        if (!stop_copies[i][0]) {
            fprintf(stderr, "rwkv7 generate: empty stop string\n");
            rc = 2;
            goto done;
        }
    }
    if (!stop_ids || !stop_copies) { rc = 1; goto done; }
    if ((st = rwkv7_stop_init((const char *const *)stop_copies, stops.n, &stop)) != RWKV7_OK) goto fail;

    double t0 = now_ms();
    if ((rc = host_load_model("generate", &mo, true, &m))) goto done;
    double t_load = now_ms() - t0;
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    const struct rwkv7_tokenizer *tok = rwkv7_model_tokenizer(m);
    size_t n_ids = 0, n_prompt = 0;
    int32_t *prompt_ids = host_tokenize("generate", tok, text, text_n, &n_prompt);
    if (!prompt_ids) { rc = 2; goto done; }
    /* Room for a pending token in front of the prompt, or for token 0. */
    ids = malloc((n_prompt + 1) * sizeof *ids);
    if (ids) memcpy(ids + 1, prompt_ids, n_prompt * sizeof *ids);
    free(prompt_ids);
    if (!ids) { rc = 1; goto done; }
    if ((st = rwkv7_sampler_init(&sp, hp->n_vocab, &smp)) != RWKV7_OK) { rc = 2; goto fail_msg; }
    if ((st = rwkv7_ctx_init(m, 1, &ctx)) != RWKV7_OK) goto fail;
    logits = malloc((size_t)hp->n_vocab * sizeof(float));
    if (!logits) { st = RWKV7_ERR_OOM; goto fail; }
    if (state_in) {
        if ((st = rwkv7_state_load_file(m, ctx, 0, state_in, &sx)) != RWKV7_OK) goto fail;
        if (!sx.has_hash)
            host_errorf("rwkv7 generate: note: '%s' names no model (an initial state?); its shapes match, using it\n", state_in);
        /* The saved penalties and random stream replace the fresh ones, so the run continues
         * exactly; --seed then only matters for states that carry no sampler part. */
        if (sx.sampler && (st = rwkv7_sampler_state_set(smp, sx.sampler, sx.sampler_size)) != RWKV7_OK) {
            host_errorf("rwkv7 generate: '%s' holds a sampler state these sampling options cannot take: %s\n",
                    state_in, rwkv7_last_error());
            rc = 2;
            goto done;
        }
    }
    int32_t *feed = ids + 1;
    n_ids = n_prompt;
    if (sx.pending_token >= 0) {
        *--feed = sx.pending_token;
        n_ids++;
    } else if (!state_in && n_ids == 0) {
        *--feed = 0; /* empty prompt: start of text (token 0 is the document separator) */
        n_ids++;
    }
    if (n_ids == 0 && !sx.logits) {
        host_errorf("rwkv7 generate: '%s' has no pending token or logits to continue from; give a prompt\n", state_in);
        rc = 2;
        goto done;
    }
    fprintf(stderr, "rwkv7 generate: %s; %zu prompt tokens; seed %llu\n", rwkv7_model_device_desc(m), n_ids,
            (unsigned long long)rwkv7_sampler_seed(smp));
    fwrite(text, 1, text_n, stdout);
    fflush(stdout);

    int slot = 0;
    double t1 = now_ms();
    if (n_ids == 0) memcpy(logits, sx.logits, (size_t)hp->n_vocab * sizeof(float));
    else if ((st = rwkv7_ctx_eval(ctx, 1, &slot, (int)n_ids, feed, RWKV7_LOGITS_LAST, logits)) != RWKV7_OK) goto fail;
    if ((rc = host_check_logits("generate", logits, (size_t)hp->n_vocab, sx.n_tokens + n_ids))) goto done;
    double t_prompt = now_ms() - t1, t_eval = 0, t_sample = 0;
    /* A pending token was accepted by the run that sampled it. */
    for (size_t i = sx.pending_token >= 0 ? 1 : 0; i < n_ids; i++) rwkv7_sampler_accept(smp, feed[i]);
    int32_t last = -1;
    struct rwkv7_utf8_stream u8;
    rwkv7_utf8_stream_init(&u8);
    long n_gen = 0, n_eval = 0;
    char out[256];
    for (;;) {
        if (n_predict >= 0 && n_gen >= n_predict) break;
        double ts = now_ms();
        int32_t t = rwkv7_sampler_sample(smp, logits);
        rwkv7_sampler_accept(smp, t);
        last = t;
        t_sample += now_ms() - ts;
        n_gen++;
        bool end = t == 0 && !ignore_eos;
        for (int i = 0; i < stop_tokens.n; i++) end |= t == stop_ids[i];
        if (end) break;
        size_t plen;
        const char *piece = rwkv7_token_piece(tok, t, &plen);
        int matched = -1;
        while (plen > 0 && matched < 0) {
            /* Feed the UTF-8 stream in slices so its output always fits the buffer. */
            size_t take = plen > 64 ? 64 : plen;
            size_t n_out = rwkv7_utf8_stream_feed(&u8, piece, take, out);
            piece += take;
            plen -= take;
            const char *emit;
            size_t n_emit;
            if ((st = rwkv7_stop_feed(stop, out, n_out, &matched, &emit, &n_emit)) != RWKV7_OK) goto fail;
            put(emit, n_emit);
        }
        fflush(stdout);
        if (matched >= 0) break;
        if (n_predict >= 0 && n_gen >= n_predict) break;
        double te = now_ms();
        if ((st = rwkv7_ctx_eval(ctx, 1, &slot, 1, &t, RWKV7_LOGITS_LAST, logits)) != RWKV7_OK) goto fail;
        t_eval += now_ms() - te;
        n_eval++;
        if ((rc = host_check_logits("generate", logits, (size_t)hp->n_vocab, sx.n_tokens + n_ids + (uint64_t)n_eval))) {
            printf("\n");
            goto done;
        }
    }
    {
        size_t n_out = rwkv7_utf8_stream_flush(&u8, out);
        const char *emit;
        size_t n_emit;
        int matched = -1;
        if ((st = rwkv7_stop_feed(stop, out, n_out, &matched, &emit, &n_emit)) != RWKV7_OK) goto fail;
        put(emit, n_emit);
        if (matched < 0) {
            rwkv7_stop_flush(stop, &emit, &n_emit);
            put(emit, n_emit);
        }
    }
    printf("\n");
    fflush(stdout);
    if (state_out) {
        /* Everything sampled was fed except the last token, which stays pending; with nothing
         * sampled (-n 0) the logits are kept instead so a resume can sample from them. */
        size_t blob_n = rwkv7_sampler_state_size(smp);
        if (!(sampler_blob = malloc(blob_n))) { st = RWKV7_ERR_OOM; goto fail; }
        rwkv7_sampler_state_get(smp, sampler_blob);
        struct rwkv7_state_extra save = {sx.n_tokens + n_ids + (uint64_t)n_eval, last,
                                        last < 0 ? logits : NULL, sampler_blob, blob_n,
                                        "rwkv7 generate", false, 0};
        if ((st = rwkv7_state_save_file(m, ctx, 0, &save, state_out)) != RWKV7_OK) goto fail;
    }
    if (!no_perf) {
        fprintf(stderr, "\nrwkv7_perf: %16s = %10.2f ms\n", "load time", t_load);
        perf_line("prompt eval time", t_prompt, (long)n_ids, "tokens");
        perf_line("eval time", t_eval, n_eval, "runs");
        perf_line("sampling time", t_sample, n_gen, "runs");
        fprintf(stderr, "rwkv7_perf: %16s = %10.2f ms / %5ld tokens\n", "total time", now_ms() - t0, (long)n_ids + n_gen);
    }
    goto done;

fail:
    rc = host_status_exit(st);
fail_msg:
    fprintf(stderr, "rwkv7 generate: %s\n", rwkv7_last_error());
done:
    if (stop_copies)
        for (int i = 0; i < stops.n; i++) free(stop_copies[i]);
    free(stop_copies);
    free(stop_ids);
    free(sampler_blob);
    rwkv7_state_extra_free(&sx);
    free(logits);
    free(ids);
    free(text);
    rwkv7_stop_free(stop);
    rwkv7_sampler_free(smp);
    rwkv7_ctx_free(ctx);
    rwkv7_model_free(m);
    str_list_free(&stops);
    str_list_free(&stop_tokens);
    return rc;
}
