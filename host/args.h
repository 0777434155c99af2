/* args.h: table-driven command-line parsing for the rwkv7 subcommands. Each subcommand lists its
 * options once (names, value type, destination, help); the same table drives parsing, the
 * "unknown option" error and --help, so --help always documents every flag that is accepted. */
#ifndef RWKV7_HOST_ARGS_H
#define RWKV7_HOST_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "sampler.h"

enum opt_kind { OPT_FLAG, OPT_INT, OPT_FLOAT, OPT_STR, OPT_U64, OPT_LIST, OPT_END };

/* A repeatable string option (-r a -r b, or comma lists where the command splits them). */
struct str_list {
    const char **items;
    int n;
};

struct opt {
    const char *names; /* "-m,--model": comma-separated spellings */
    enum opt_kind kind;
    void *dest;        /* bool*, int*, float*, const char**, uint64_t*, struct str_list* */
    const char *meta;  /* value name in --help, e.g. "FILE" */
    const char *help;  /* one line; the default is stated inside */
};

/* Parses argv[first..argc) against opts. Returns 0 on success, 1 when --help was printed, 2 on
 * an error (message already printed: "rwkv7 generate: unknown option '--foo'"). */
int args_parse(const char *cmd, const char *synopsis, const struct opt *opts, int argc, char **argv, int first);
void args_usage(const char *cmd, const char *synopsis, const struct opt *opts);
void str_list_free(struct str_list *l);

/* Options shared by the commands that load a model. */
struct model_opts {
    const char *model;
    const char *backend;
    const char *device;
    int threads;
    bool check_tensors;
};
#define MODEL_OPTS(mo)                                                                                     \
    {"-m,--model", OPT_STR, &(mo).model, "FILE", "RWKV-7 GGUF model file (required)"},                     \
    {"--backend", OPT_STR, &(mo).backend, "NAME", "auto | cpu | vulkan | cuda (default: auto = CUDA, then Vulkan, then CPU)"}, \
    {"-dev,--device", OPT_STR, &(mo).device, "DEV", "device name, e.g. Vulkan0 or CUDA0 (default: the backend's best; see rwkv7 devices)"}, \
    {"-t,--threads", OPT_INT, &(mo).threads, "N", "CPU threads (default: all physical cores)"},             \
    {"--check-tensors", OPT_FLAG, &(mo).check_tensors, NULL, "scan every weight for NaN/Inf at load and name the first bad tensor"}

/* Sampling options (llama.cpp names, RWKV's --penalty-decay). */
#define SAMPLING_OPTS(sp, seed)                                                                            \
    {"--temp,--temperature", OPT_FLOAT, &(sp).temperature, "T", "temperature; <= 0 is greedy (default 0.8)"}, \
    {"--top-k", OPT_INT, &(sp).top_k, "K", "keep the K most likely tokens; 0 = off (default 40)"},          \
    {"--top-p", OPT_FLOAT, &(sp).top_p, "P", "nucleus sampling mass; 1 = off (default 0.95)"},             \
    {"--min-p", OPT_FLOAT, &(sp).min_p, "P", "drop tokens below P x the top probability; 0 = off (default 0.05)"}, \
    {"--repeat-penalty", OPT_FLOAT, &(sp).repeat_penalty, "X", "llama.cpp repeat penalty; 1 = off (default 1)"}, \
    {"--repeat-last-n", OPT_INT, &(sp).repeat_last_n, "N", "window of --repeat-penalty; 0 = off (default 64)"}, \
    {"--presence-penalty", OPT_FLOAT, &(sp).presence_penalty, "X", "subtract X from seen tokens (default 0)"}, \
    {"--frequency-penalty", OPT_FLOAT, &(sp).frequency_penalty, "X", "subtract X per occurrence (default 0)"}, \
    {"--penalty-decay,--alpha-decay", OPT_FLOAT, &(sp).penalty_decay, "D", "RWKV decay of occurrence counts per token; 1 = none (default 0.996)"}, \
    {"-s,--seed", OPT_U64, &(seed), "SEED", "random seed; same seed, same output (default: random, printed)"}

/* Reads a whole file (for -f); NULL with a message on failure. */
char *read_text_file(const char *path, size_t *n);
/* Turns \n, \t, \\, \" and \xHH escapes into bytes in place (llama.cpp's -e, on by default). */
size_t unescape_prompt(char *s);
double now_ms(void);
/* fprintf(stderr, ...) for messages that quote input (paths, option values, ids, chat lines):
 * control bytes become \xHH, so a hostile value cannot send terminal escape sequences or split
 * the one-line message; a final '\n' is kept. */
void host_errorf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
