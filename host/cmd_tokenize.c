/* cmd_tokenize.c: `rwkv7 tokenize -m FILE (-p TEXT | -f FILE) [--ids]`: the World tokenizer from
 * the model's vocabulary. Only the GGUF metadata is needed, but loading through the model keeps
 * one code path (on the CPU backend, zero-copy). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int cmd_tokenize(int argc, char **argv) {
    struct model_opts mo = {0};
    const char *prompt = NULL, *file = NULL;
    bool ids_only = false, no_escape = false;
    const struct opt opts[] = {
        {"-m,--model", OPT_STR, &mo.model, "FILE", "RWKV-7 GGUF model file (required)"},
        {"-p,--prompt", OPT_STR, &prompt, "TEXT", "text to tokenize (\\n, \\t, \\xHH escapes are decoded)"},
        {"-f,--file", OPT_STR, &file, "FILE", "read the text from a file (taken verbatim)"},
        {"--ids", OPT_FLAG, &ids_only, NULL, "print only the ids, on one line separated by spaces"},
        {"--no-escape", OPT_FLAG, &no_escape, NULL, "take -p literally"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("tokenize", "-m FILE (-p TEXT | -f FILE) [--ids]", opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if (!prompt == !file) {
        fprintf(stderr, "rwkv7 tokenize: give exactly one of -p TEXT or -f FILE\n");
        return 2;
    }
    char *text;
    size_t n;
    if (file) {
        if (!(text = read_text_file(file, &n))) return 2;
    } else {
        text = strdup(prompt);
        if (!text) return 1;
        n = no_escape ? strlen(text) : unescape_prompt(text);
    }
    mo.backend = "cpu";
    mo.threads = 1;
    struct rwkv7_model *m = NULL;
    if ((rc = host_load_model("tokenize", &mo, false, &m))) {
        free(text);
        return rc;
    }
    const struct rwkv7_tokenizer *tok = rwkv7_model_tokenizer(m);
    size_t n_ids = 0;
    int32_t *ids = host_tokenize("tokenize", tok, text, n, &n_ids);
    if (!ids) rc = 2;
    for (size_t i = 0; ids && i < n_ids; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        size_t len;
        const char *piece = rwkv7_token_piece(tok, ids[i], &len);
        printf("%6d '", ids[i]);
        for (size_t j = 0; j < len; j++) {
            unsigned char ch = (unsigned char)piece[j];
            if (ch == '\n') printf("\\n");
            else if (ch == '\t') printf("\\t");
            else if (ch == '\\') printf("\\\\");
            else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
            else putchar(ch);
        }
        printf("'\n");
    }
    if (ids && ids_only) printf("\n");
    free(ids);
    free(text);
    rwkv7_model_free(m);
    return rc;
}
