/* commands.h: the subcommands of the rwkv7 driver. Each returns the process exit code: 0 success,
 * 1 a runtime failure (device, memory), 2 bad usage or bad input (unknown flag, missing or
 * malformed file, wrong architecture). Only main.c calls exit(). */
#ifndef RWKV7_HOST_COMMANDS_H
#define RWKV7_HOST_COMMANDS_H

#include "args.h"
#include "rwkv7.h"

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
/* `rwkv7 bench --quality` (bench_quality.c); cmd_bench hands over when it sees the flag. */
int bench_quality(int argc, char **argv);

/* Loads the model named in mo, printing a one-line error on failure; returns an exit code. */
int host_load_model(const char *cmd, const struct model_opts *mo, bool progress, struct rwkv7_model **out);
/* Checks a logits row for NaN/Inf (after `token` tokens of the sequence): 0 when finite, else
 * prints "non-finite logits at token N" (suggesting --check-tensors) and returns 1, the exit code. */
int host_check_logits(const char *cmd, const float *logits, size_t n_vocab, uint64_t token);
/* Checks sampling options before any model work (the sampler's own rules): 0 or 2 with a message. */
int host_check_sampling(const char *cmd, const struct rwkv7_sampler_params *sp);
/* Checks that path can be written (its folder, and the file if it exists) before any model work,
 * so a bad --state-out or -o fails at once rather than after a whole run: 0 or 2 with a message. */
int host_check_writable(const char *cmd, const char *path);
/* Exit code for a failed library call: 2 for input problems, 1 for runtime ones. */
int host_status_exit(enum rwkv7_status st);
/* Tokenizes text into a malloc'ed array; prints the error and returns NULL on failure. */
int32_t *host_tokenize(const char *cmd, const struct rwkv7_tokenizer *tok, const char *text, size_t n, size_t *n_ids);

#endif
