/* main.c: the rwkv7 command-line driver: subcommand dispatch and the helpers every command
 * shares (model loading with one-line errors, exit codes). The only file that calls exit(). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_tensors.h"
#include "commands.h"

int host_status_exit(enum rwkv7_status st) {
    switch (st) {
    case RWKV7_OK: return 0;
    case RWKV7_ERR_ARG:
    case RWKV7_ERR_IO:
    case RWKV7_ERR_FORMAT:
    case RWKV7_ERR_UNSUPPORTED: return 2;
    default: return 1;
    }
}

int host_load_model(const char *cmd, const struct model_opts *mo, bool progress, struct rwkv7_model **out) {
    if (mo->threads < 0 || mo->threads > 1024) {
        fprintf(stderr, "rwkv7 %s: -t must be in [1, 1024] (or 0 = all physical cores), got %d\n", cmd, mo->threads);
        return 2;
    }
    if (!mo->model) {
        fprintf(stderr, "rwkv7 %s: no model given (-m FILE)\n", cmd);
        return 2;
    }
    struct rwkv7_model_params p = {mo->backend, mo->device, mo->threads, progress, false};
    enum rwkv7_status st = rwkv7_model_load(mo->model, &p, out);
    if (st != RWKV7_OK) {
        host_errorf("rwkv7 %s: cannot load '%s': %s\n", cmd, mo->model, rwkv7_last_error());
        return host_status_exit(st);
    }
    if (mo->check_tensors) {
        double t0 = now_ms();
        int64_t n = 0;
        if ((st = rwkv7_model_check_tensors(*out, mo->threads, &n)) != RWKV7_OK) {
            host_errorf("rwkv7 %s: '%s': %s\n", cmd, mo->model, rwkv7_last_error());
            rwkv7_model_free(*out);
            *out = NULL;
            return host_status_exit(st);
        }
        fprintf(stderr, "rwkv7 %s: --check-tensors: %lld tensors hold only finite numbers (%.0f ms)\n", cmd, (long long)n,
                now_ms() - t0);
    }
    return 0;
}

int host_check_sampling(const char *cmd, const struct rwkv7_sampler_params *sp) {
    /* The sampler treats top_p > 1 as off; as an option it is a mistake (OpenAI's range is [0, 1]). */
    if (sp->top_p > 1.0f) {
        fprintf(stderr, "rwkv7 %s: --top-p must be in [0, 1], got %g\n", cmd, (double)sp->top_p);
        return 2;
    }
    struct rwkv7_sampler *probe = NULL;
    if (rwkv7_sampler_init(sp, 2, &probe) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 %s: %s\n", cmd, rwkv7_last_error());
        return 2;
    }
    rwkv7_sampler_free(probe);
    return 0;
}

int host_check_writable(const char *cmd, const char *path) {
    /* State files are written to a temporary file beside the target and renamed: the folder must
     * be writable, and so must an existing file (or it is a folder: refused). */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    struct stat st;
    bool exists = stat(path, &st) == 0;
    const char *why = NULL;
    if (exists && S_ISDIR(st.st_mode)) why = "it is a folder";
    else if (exists && access(path, W_OK) != 0) why = strerror(errno);
    else if (access(dir, W_OK | X_OK) != 0) why = strerror(errno);
    if (!why) return 0;
    host_errorf("rwkv7 %s: cannot write '%s': %s\n", cmd, path, why);
    return 2;
}

int host_check_logits(const char *cmd, const float *logits, size_t n_vocab, uint64_t token) {
    int64_t i = rwkv7_logits_first_nonfinite(logits, n_vocab);
    if (i < 0) return 0;
    float v = logits[i];
    fprintf(stderr, "rwkv7 %s: non-finite logits at token %llu (%s at vocabulary index %lld); run with --check-tensors to "
                    "look for bad weights\n", cmd, (unsigned long long)token, v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf", (long long)i);
    return 1;
}

int32_t *host_tokenize(const char *cmd, const struct rwkv7_tokenizer *tok, const char *text, size_t n, size_t *n_ids) {
    size_t need = 0;
    enum rwkv7_status st = rwkv7_tokenize(tok, text, n, NULL, 0, &need);
    int32_t *ids = st == RWKV7_OK ? malloc((need ? need : 1) * sizeof(int32_t)) : NULL;
    if (ids) st = rwkv7_tokenize(tok, text, n, ids, need, &need);
    if (st != RWKV7_OK || !ids) {
        fprintf(stderr, "rwkv7 %s: cannot tokenize: %s\n", cmd, st != RWKV7_OK ? rwkv7_last_error() : "out of memory");
        free(ids);
        return NULL;
    }
    *n_ids = need;
    return ids;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"generate", cmd_generate, "generate text from a prompt, streaming it to stdout"},
    {"chat", cmd_chat, "interactive chat in the RWKV format, with state save/load and think modes"},
    {"batch", cmd_batch, "headless batch generation from an OpenAI batch JSONL file"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching and conversation state reuse"},
    {"bench", cmd_bench, "tokens/sec per model or quant format (llama-bench style)"},
    {"quantize", cmd_quantize, "convert an F32/F16/BF16 model to a llama.cpp file type (Q8_0, Q4_K_M, IQ3_M, ...)"},
    {"perplexity", cmd_perplexity, "perplexity of a text, and KL divergence against a base model's saved log-probs"},
    {"logits", cmd_logits, "write the logits of every token of an input to a float32 file"},
    {"tokenize", cmd_tokenize, "print the tokens of a text"},
    {"info", cmd_info, "show a model's metadata, hyper-parameters and tensors"},
    {"devices", cmd_devices, "list the compute devices this build can use"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: rwkv7 COMMAND [options]   (rwkv7 COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        exit(2);
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        exit(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("rwkv7 0.1.0\n");
        exit(0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) exit(commands[i].fn(argc, argv));
    host_errorf("rwkv7: unknown command '%s' (see rwkv7 --help)\n", argv[1]);
    exit(2);
}
