/* main.c: the rwkv7 command-line driver: subcommand dispatch and the helpers every command
 * shares (model loading with one-line errors, exit codes). The only file that calls exit(). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (!mo->model) {
        fprintf(stderr, "rwkv7 %s: no model given (-m FILE)\n", cmd);
        return 2;
    }
    struct rwkv7_model_params p = {mo->backend, mo->device, mo->threads, progress, false};
    enum rwkv7_status st = rwkv7_model_load(mo->model, &p, out);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 %s: cannot load '%s': %s\n", cmd, mo->model, rwkv7_last_error());
        return host_status_exit(st);
    }
    return 0;
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
    fprintf(stderr, "rwkv7: unknown command '%s' (see rwkv7 --help)\n", argv[1]);
    exit(2);
}
