/* cli_run.h: runs the rwkv7 binary from a test with a shell argument string, capturing stdout and
 * stderr into buffers; shared by the CLI tests of quantize and perplexity. */
#ifndef RWKV7_TEST_CLI_RUN_H
#define RWKV7_TEST_CLI_RUN_H

#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static char g_out[1 << 16], g_err[1 << 16];

static inline void cli_slurp(const char *p, char *dst, size_t cap) {
    size_t n = 0;
    char *o = test_read_file(p, &n);
    snprintf(dst, cap, "%.*s", o ? (int)(n < cap - 1 ? n : cap - 1) : 0, o ? o : "");
    free(o);
    unlink(p);
}

/* Returns the exit code (128 when the process did not exit normally). */
static inline int cli_run(const char *args) {
    char cmd[8192], po[64], pe[64];
    snprintf(po, sizeof po, "/tmp/rwkv7_cli_out.%d", (int)getpid());
    snprintf(pe, sizeof pe, "/tmp/rwkv7_cli_err.%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", RWKV7_CLI_PATH, args, po, pe);
    int st = system(cmd);
    cli_slurp(po, g_out, sizeof g_out);
    cli_slurp(pe, g_err, sizeof g_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static inline int cli_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#endif
