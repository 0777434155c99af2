/* cmd_logits.c: `rwkv7 logits`: writes n_tokens x n_vocab float32 logits, row i = the logits after
 * token i from a zero state, either from one prefill call (default) or one call per token
 * (--serial). This is what the fixture tests compare with llama.cpp's reference logits. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

/* Parses whitespace-separated token ids; prints an error naming the bad item. */
static int32_t *parse_ids(const char *s, size_t *n_out) {
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    const char *p = s;
    while (ids) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff ||
            (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != ',')) {
            host_errorf("rwkv7 logits: bad token id '%.20s'\n", p);
            free(ids);
            return NULL;
        }
        if (n == cap) {
            int32_t *nb = realloc(ids, 2 * cap * sizeof *ids);
            if (!nb) { free(ids); return NULL; }
            ids = nb;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *n_out = n;
    return ids;
}

int cmd_logits(int argc, char **argv) {
    struct model_opts mo = {0};
    const char *tokens = NULL, *tokens_file = NULL, *prompt = NULL, *out = NULL;
    bool serial = false;
    const struct opt opts[] = {
        MODEL_OPTS(mo),
        {"--tokens", OPT_STR, &tokens, "\"ID ID ...\"", "input token ids"},
        {"--tokens-file", OPT_STR, &tokens_file, "FILE", "read the input ids (whitespace separated) from a file"},
        {"-p,--prompt", OPT_STR, &prompt, "TEXT", "tokenize this text as the input (\\n escapes decoded)"},
        {"-o,--output", OPT_STR, &out, "OUT.f32", "output file: n_tokens x n_vocab float32, little-endian (required)"},
        {"--serial", OPT_FLAG, &serial, NULL, "feed one token per call instead of one prefill call"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    const char *syn = "-m FILE (--tokens \"ID ...\" | --tokens-file F | -p TEXT) -o OUT.f32 [--serial] [--backend B]";
    int rc = args_parse("logits", syn, opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if ((tokens != NULL) + (tokens_file != NULL) + (prompt != NULL) != 1) {
        fprintf(stderr, "rwkv7 logits: give exactly one of --tokens, --tokens-file or -p\n");
        return 2;
    }
    if (!out) {
        fprintf(stderr, "rwkv7 logits: no output file (-o OUT.f32)\n");
        return 2;
    }
    if ((rc = host_check_writable("logits", out))) return rc;
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokens || tokens_file) {
        char *text = tokens_file ? read_text_file(tokens_file, NULL) : NULL;
        if (tokens_file && !text) return 2;
        ids = parse_ids(tokens ? tokens : text, &n);
        free(text);
        if (!ids) return 2;
    }
    struct rwkv7_model *m = NULL;
    if ((rc = host_load_model("logits", &mo, true, &m))) {
        free(ids);
        return rc;
    }
    if (prompt) {
        char *text = strdup(prompt);
        size_t len = text ? unescape_prompt(text) : 0;
        ids = text ? host_tokenize("logits", rwkv7_model_tokenizer(m), text, len, &n) : NULL;
        free(text);
        if (!ids) {
            rwkv7_model_free(m);
            return 2;
        }
    }
    if (n == 0 || n > (1u << 24)) {
        fprintf(stderr, "rwkv7 logits: the input has %zu tokens\n", n);
        free(ids);
        rwkv7_model_free(m);
        return 2;
    }
    size_t V = (size_t)rwkv7_model_hparams(m)->n_vocab;
    float *logits = malloc(n * V * sizeof(float));
    struct rwkv7_ctx *ctx = NULL;
    enum rwkv7_status st = logits ? rwkv7_ctx_init(m, 1, &ctx) : RWKV7_ERR_OOM;
    int slot = 0;
    if (st == RWKV7_OK && serial) {
        for (size_t i = 0; i < n && st == RWKV7_OK; i++)
            st = rwkv7_ctx_eval(ctx, 1, &slot, 1, ids + i, RWKV7_LOGITS_LAST, logits + i * V);
    } else if (st == RWKV7_OK) {
        st = rwkv7_ctx_eval(ctx, 1, &slot, (int)n, ids, RWKV7_LOGITS_ALL, logits);
    }
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 logits: %s\n", logits ? rwkv7_last_error() : "out of memory");
        rc = host_status_exit(st);
    }
    /* Row i holds the logits after token i; nothing is written when one is not finite. */
    for (size_t i = 0; st == RWKV7_OK && !rc && i < n; i++) rc = host_check_logits("logits", logits + i * V, V, i + 1);
    if (st == RWKV7_OK && !rc) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(logits, sizeof(float), n * V, f) != n * V || fclose(f) != 0) {
            host_errorf("rwkv7 logits: cannot write '%s': %s\n", out, strerror(errno));
            rc = 1;
        } else {
            fprintf(stderr, "rwkv7 logits: wrote %zu x %zu logits to %s (%s)\n", n, V, out, rwkv7_model_device_desc(m));
        }
    }
    rwkv7_ctx_free(ctx);
    free(logits);
    free(ids);
    rwkv7_model_free(m);
    return rc;
}
