/* tokenizer.h: internal side of the RWKV World tokenizer (rwkv7-gguf.md section 6): building it
 * from `tokenizer.ggml.tokens`, batch detokenization, and a streaming UTF-8 assembler for pieces
 * that split multi-byte characters. The public encode/piece calls are declared in rwkv7.h.
 * Matches llama.cpp's LLM_VOCAB_TYPE_RWKV: unescape per section 6.2, greedy longest match over a
 * byte trie of all V tokens (later id wins on duplicates), except that an unmatched byte is an
 * error instead of token -1. */
#ifndef RWKV7_TOKENIZER_H
#define RWKV7_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "rwkv7.h"

/* Builds a tokenizer from n_vocab escaped token strings (as stored in GGUF; the strings need not
 * be NUL-terminated and are copied, so the caller may free them afterwards). Empty strings are
 * allowed and never match. RWKV7_ERR_ARG for n_vocab < 1, RWKV7_ERR_OOM, RWKV7_ERR_UNSUPPORTED
 * when the vocabulary is too large for the 32-bit trie (over 16M trie nodes). */
enum rwkv7_status rwkv7_tokenizer_init(const struct rwkv7_gguf_str *escaped, int n_vocab,
                                       struct rwkv7_tokenizer **out);
/* Reads `tokenizer.ggml.tokens` (array of string) and calls rwkv7_tokenizer_init.
 * RWKV7_ERR_FORMAT when the key is missing, not a string array, or empty. */
enum rwkv7_status rwkv7_tokenizer_from_gguf(const struct rwkv7_gguf *g,
                                            struct rwkv7_tokenizer **out);
void rwkv7_tokenizer_free(struct rwkv7_tokenizer *t);

/* Unescapes one stored token string per section 6.2 into dst (which needs n bytes; the result is
 * never longer than the input) and returns the byte count. An escape cut off by the end of the
 * string is dropped, as llama.cpp does. */
size_t rwkv7_token_unescape(const char *s, size_t n, unsigned char *dst);

/* Concatenates the pieces of n ids into out (at most cap bytes, not NUL-terminated) and returns
 * the byte count needed through *len. RWKV7_ERR_ARG names the first id out of range. */
enum rwkv7_status rwkv7_detokenize(const struct rwkv7_tokenizer *tok, const int32_t *ids,
                                   size_t n, char *out, size_t cap, size_t *len);

/* Streaming UTF-8 assembly for printing pieces as they are generated. A multi-byte sequence split
 * across pieces is held until it completes; bytes that can no longer start or continue a valid
 * sequence (stray continuation bytes, 0xC0/0xC1/0xF5..0xFF, overlongs, surrogates, truncated
 * sequences followed by a non-continuation byte) pass through unchanged so nothing is lost.
 * Zero-initialise (or call _init) before use; it holds no heap memory. */
struct rwkv7_utf8_stream {
    unsigned char pend[4]; /* bytes of an incomplete but so far valid sequence */
    int n_pend;            /* 0..3 */
};

/* Worst-case bytes feed can emit beyond its input: the held bytes of a previous call. */
#define RWKV7_UTF8_STREAM_EXTRA 3

void rwkv7_utf8_stream_init(struct rwkv7_utf8_stream *u);
/* Feeds n bytes; writes the bytes that are now complete into out, which must have room for
 * n + RWKV7_UTF8_STREAM_EXTRA bytes. Returns the number written. */
size_t rwkv7_utf8_stream_feed(struct rwkv7_utf8_stream *u, const char *in, size_t n, char *out);
/* End of text: writes the held bytes (at most RWKV7_UTF8_STREAM_EXTRA) as they are and empties the
 * stream. Returns the number written. */
size_t rwkv7_utf8_stream_flush(struct rwkv7_utf8_stream *u, char *out);

#endif
