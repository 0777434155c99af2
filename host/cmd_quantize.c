/* cmd_quantize.c: `rwkv7 quantize IN.gguf OUT.gguf TYPE`: an F32/F16/BF16 RWKV-7 GGUF to any file
 * type llama-quantize writes for rwkv7, with its per-tensor type choices (quantize_model.c). Every
 * refusal (unknown type, a type that needs an importance matrix, an output path that is a
 * directory or the input itself, an already-quantized input without --allow-requantize) is one
 * line and exit 2, before anything is written; the file itself is written atomically (temporary
 * file + rename), so no partial output is ever left behind. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "commands.h"
#include "dtype.h"
#include "quantize.h"
#include "quantize_model.h"

static bool needs_imatrix(const struct bench_ftype *ft) {
    static const char *const names[] = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(ft->name, names[i])) return true;
    return false;
}

/* TYPE as an ftype name (Q4_K_M), a weight type name (q4_k) or llama_ftype number (15). */
static const struct bench_ftype *find_ftype(const char *s) {
    char *end;
    long id = strtol(s, &end, 10);
    if (*s && !*end) {
        int n;
        const struct bench_ftype *l = bench_ftype_list(&n);
        for (int i = 0; i < n; i++)
            if (l[i].id == id) return &l[i];
        return NULL;
    }
    return bench_ftype_find(s);
}

/* A file type we can write: every tensor type it may need has a quantizer. */
static bool ftype_writable(const struct bench_ftype *ft) {
    return rwkv7_quantize_supported(ft->body) && rwkv7_quantize_supported(ft->embd) &&
           rwkv7_quantize_supported(ft->output) && !needs_imatrix(ft);
}

static void list_types(FILE *f) {
    int n;
    const struct bench_ftype *l = bench_ftype_list(&n);
    fprintf(f, "file types:");
    for (int i = 0; i < n; i++)
        if (ftype_writable(&l[i])) fprintf(f, " %s", l[i].name);
    fprintf(f, "\n");
}

int cmd_quantize(int argc, char **argv) {
    int threads = 0;
    bool allow_requant = false, no_progress = false;
    const char *imatrix = NULL;
    const struct opt opts[] = {
        {"-t,--threads", OPT_INT, &threads, "N", "threads (default: all physical cores)"},
        {"--allow-requantize", OPT_FLAG, &allow_requant, NULL, "accept an already-quantized input (dequantized, then quantized again: lossy)"},
        {"--imatrix", OPT_STR, &imatrix, "FILE", "importance matrix (not implemented yet; the IQ2/IQ1 types that need one are refused)"},
        {"--no-progress", OPT_FLAG, &no_progress, NULL, "no progress line on stderr"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    const char *syn = "IN.gguf OUT.gguf TYPE [-t N] [--allow-requantize]\n"
                      "  TYPE: a llama.cpp file type (F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0\n"
                      "  IQ4_NL IQ4_XS Q3_K_L Q3_K_M Q3_K_S IQ3_M IQ3_S IQ3_XS IQ3_XXS Q2_K Q2_K_S TQ1_0 TQ2_0 F32), its\n"
                      "  number (15 = Q4_K_M), or a weight type (q4_k = Q4_K_M)";
    /* positionals are the arguments that are neither options nor option values */
    const char *pos[3];
    int n_pos = 0;
    char **rest = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!rest) return 1;
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i < 2 || a[0] == '-') {
            rest[n_rest++] = argv[i];
            bool takes_value = (!strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--imatrix"));
            if (i >= 2 && takes_value && i + 1 < argc) rest[n_rest++] = argv[++i];
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "rwkv7 quantize: unexpected argument '%s' (see rwkv7 quantize --help)\n", a);
            free(rest);
            return 2;
        }
    }
    int rc = args_parse("quantize", syn, opts, n_rest, rest, 2);
    free(rest);
    if (rc) {
        if (rc == 1) list_types(stdout);
        return rc == 1 ? 0 : rc;
    }
    if (n_pos != 3) {
        fprintf(stderr, "rwkv7 quantize: need IN.gguf OUT.gguf TYPE (see rwkv7 quantize --help)\n");
        return 2;
    }
    const char *in_path = pos[0], *out_path = pos[1];
    const struct bench_ftype *ft = find_ftype(pos[2]);
    if (!ft) {
        fprintf(stderr, "rwkv7 quantize: unknown file type '%s' (see rwkv7 quantize --help)\n", pos[2]);
        return 2;
    }
    if (needs_imatrix(ft)) {
        fprintf(stderr, "rwkv7 quantize: %s needs an importance matrix%s\n", ft->name,
                imatrix ? ", and --imatrix is not implemented yet" : " (--imatrix FILE)");
        return 2;
    }
    if (imatrix) {
        fprintf(stderr, "rwkv7 quantize: --imatrix is not implemented yet\n");
        return 2;
    }
    if (!ftype_writable(ft)) {
        fprintf(stderr, "rwkv7 quantize: writing %s is not supported\n", ft->name);
        return 2;
    }
    struct stat si, so;
    if (stat(out_path, &so) == 0) {
        if (S_ISDIR(so.st_mode)) {
            fprintf(stderr, "rwkv7 quantize: output '%s' is a directory\n", out_path);
            return 2;
        }
        if (stat(in_path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
            fprintf(stderr, "rwkv7 quantize: output '%s' is the input file\n", out_path);
            return 2;
        }
    }
    /* the output's directory must be writable now, not after minutes of work */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out_path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    if (access(slash ? dir : ".", W_OK) != 0) {
        fprintf(stderr, "rwkv7 quantize: cannot write to directory '%s': %s\n", slash ? dir : ".", strerror(errno));
        return 2;
    }
    struct rwkv7_gguf *g = NULL;
    enum rwkv7_status st = rwkv7_gguf_open(in_path, &g);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 quantize: cannot open '%s': %s\n", in_path, rwkv7_last_error());
        return host_status_exit(st);
    }
    const double t0 = now_ms();
    struct quant_model_opts qo = {ft, threads > 0 ? threads : rwkv7_n_physical_cores(), allow_requant, !no_progress};
    struct quant_model *q = NULL;
    st = quant_model_build(g, &qo, &q);
    const double t1 = now_ms();
    if (st == RWKV7_OK) st = rwkv7_gguf_writer_write_file(q->w, out_path);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 quantize: %s\n", rwkv7_last_error());
        quant_model_free(q);
        rwkv7_gguf_free(g);
        return host_status_exit(st);
    }
    const double t2 = now_ms();
    fprintf(stderr, "quantize: %s -> %s (%s): %lld tensors converted, %.2f MiB -> %.2f MiB (%.3f bits per weight), "
                    "quantize %.2f s, write %.2f s, %d threads\n",
            in_path, out_path, ft->name, (long long)q->n_converted, (double)q->bytes_in / 1048576.0,
            (double)q->bytes_out / 1048576.0, 8.0 * (double)q->bytes_out / (double)(q->n_params ? q->n_params : 1),
            (t1 - t0) / 1000.0, (t2 - t1) / 1000.0, qo.n_threads);
    quant_model_free(q);
    rwkv7_gguf_free(g);
    return 0;
}
