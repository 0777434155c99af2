/* test_iq_tables.c: the generated runtime/iq_tables.c against its sources: every table equals
 * tests/data/iq-tables.txt entry for entry, and every table's SHA-256 (serialized
 * little-endian in its element type) equals the digest in quant-formats.md section 3.8, which
 * also covers iq1s_grid_gpu (derived by the generator, not in the text file). */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "iq_tables.h"
#include "testing.h"

/* ---- SHA-256 (FIPS 180-4), enough for a few kilobytes of tables ---- */

struct sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    uint64_t len;
};

static const uint32_t k_sha[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return x >> n | x << (32 - n); }

static void sha_block(struct sha256 *s, const uint8_t *p) {
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + k_sha[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) s->h[i] += v[i];
}

static void sha_init(struct sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
}

static void sha_byte(struct sha256 *s, uint8_t b) {
    s->buf[s->len++ % 64] = b;
    if (s->len % 64 == 0) sha_block(s, s->buf);
}

static void sha_hex(struct sha256 *s, char out[65]) {
    uint64_t bits = s->len * 8;
    sha_byte(s, 0x80);
    while (s->len % 64 != 56) sha_byte(s, 0);
    for (int i = 7; i >= 0; i--) sha_byte(s, (uint8_t)(bits >> 8 * i));
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", (unsigned)(s->h[i / 4] >> (24 - 8 * (i % 4))) & 0xFF);
}

/* ---- the tables under test, as (name, width in bytes, count, pointer) ---- */

struct table {
    const char *name;
    int width;        /* 8, 4 or 1 */
    int is_signed;
    int count;
    const void *data;
    const char *sha;  /* quant-formats.md section 3.8 */
};

static const struct table g_tables[] = {
    {"iq2xxs_grid", 8, 0, 256, rwkv7_iq2xxs_grid, "05826b5d3e472a3a78f196be62ac78acf81df0f909626e12ab9fa2a5d490dd54"},
    {"iq2xs_grid", 8, 0, 512, rwkv7_iq2xs_grid, "06e47aaca60b4dc1d9b5a3f34540437058a6b142b4d7a59d5ded769b4d1bf1de"},
    {"iq2s_grid", 8, 0, 1024, rwkv7_iq2s_grid, "e1aa1473412b0552c2174c30ef22ab4073f6a181b85a17056e8249bd2932fd88"},
    {"iq3xxs_grid", 4, 0, 256, rwkv7_iq3xxs_grid, "46e35f5a997efdee6c99ce57854c8a0d4f0ff8ca57e5e8a60c0793ea580acf5d"},
    {"iq3s_grid", 4, 0, 512, rwkv7_iq3s_grid, "bd1af4945a1717c65610b0284e4628b9a1ba3b306fae3a06f6e5f597356e349f"},
    {"iq1s_grid", 8, 0, 2048, rwkv7_iq1s_grid, "07540ffc1aeaf6ad4d97e96b0fcc765aae39671d4ae4a27bbd0e796fde167c6a"},
    {"iq1s_grid_gpu", 4, 0, 2048, rwkv7_iq1s_grid_gpu, "29bb0f4450fab4aa61d9fa9bc62a06b4a129acf31ebf38266adb6a62ef424117"},
    {"ksigns_iq2xs", 1, 0, 128, rwkv7_ksigns_iq2xs, "a76742a603f8beca5212ecce0f1f02f11a4887fd2f7c8b15aca0ea3eb3380c31"},
    {"kmask_iq2xs", 1, 0, 8, rwkv7_kmask_iq2xs, NULL},
    {"kvalues_iq4nl", 1, 1, 16, rwkv7_kvalues_iq4nl, "61aa47540aa024b5d6ddaa839b84ffe59f3d5a349af5c6c7ffcb5e0474b46163"},
    {"kvalues_mxfp4", 1, 1, 16, rwkv7_kvalues_mxfp4, "adf76b672d47eb7fc0afd4db132d548d59d3190aa0ad118fdbf569d5fd478f97"},
};
#define N_TABLES ((int)(sizeof g_tables / sizeof g_tables[0]))

/* Entry i as a 64-bit pattern (signed bytes sign-extended, as the text file writes them). */
static int64_t entry(const struct table *t, int i) {
    switch (t->width) {
    case 8: return (int64_t)((const uint64_t *)t->data)[i];
    case 4: return ((const uint32_t *)t->data)[i];
    default: return t->is_signed ? ((const int8_t *)t->data)[i] : ((const uint8_t *)t->data)[i];
    }
}

static void test_hashes(void) {
    for (int k = 0; k < N_TABLES; k++) {
        const struct table *t = &g_tables[k];
        if (!t->sha) continue;
        struct sha256 s;
        char hex[65];
        sha_init(&s);
        for (int i = 0; i < t->count; i++)
            for (int b = 0; b < t->width; b++) sha_byte(&s, (uint8_t)((uint64_t)entry(t, i) >> 8 * b));
        sha_hex(&s, hex);
        CHECK(strcmp(hex, t->sha) == 0, "%s: sha256 %s, want %s", t->name, hex, t->sha);
    }
}

/* iq1s_grid_gpu must be iq1s_grid repacked: byte j = (e_j + 1) | (e_{j+4} + 1) << 4. */
static void test_gpu_form(void) {
    int bad = 0;
    for (int i = 0; i < 2048; i++) {
        uint32_t want = 0;
        for (int j = 0; j < 4; j++) {
            int lo = (int8_t)(rwkv7_iq1s_grid[i] >> 8 * j) + 1, hi = (int8_t)(rwkv7_iq1s_grid[i] >> 8 * (j + 4)) + 1;
            want |= (uint32_t)(lo | hi << 4) << 8 * j;
        }
        bad += rwkv7_iq1s_grid_gpu[i] != want;
    }
    CHECK(bad == 0, "iq1s_grid_gpu: %d entries are not iq1s_grid repacked", bad);
}

static const struct table *find_table(const char *name) {
    for (int k = 0; k < N_TABLES; k++)
        if (strcmp(g_tables[k].name, name) == 0) return &g_tables[k];
    return NULL;
}

/* Reads iq-tables.txt: 'NAME TYPE COUNT' headers, then COUNT numbers (hex for u32/u64). */
static void test_text(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char tok[64], type[16];
    int n_seen = 0;
    while (fscanf(f, " %63s", tok) == 1) {
        if (tok[0] == '#') {
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {}
            continue;
        }
        int count = 0;
        CHECK(isalpha((unsigned char)tok[0]) && fscanf(f, "%15s %d", type, &count) == 2,
              "bad header at '%s'", tok);
        const struct table *t = find_table(tok);
        CHECK(t != NULL, "text table %s is not in iq_tables.c", tok);
        if (!t) break;
        int width = strcmp(type, "u64") == 0 ? 8 : strcmp(type, "u32") == 0 ? 4 : 1;
        CHECK(width == t->width && count == t->count, "%s: %s[%d] vs width %d count %d", tok, type,
              count, t->width, t->count);
        int bad = 0;
        for (int i = 0; i < count; i++) {
            unsigned long long u = 0;
            long long v = 0;
            int ok = width > 1 ? fscanf(f, "%llx", &u) == 1 : fscanf(f, "%lld", &v) == 1;
            if (!ok) {
                bad++;
                break;
            }
            int64_t want = width > 1 ? (int64_t)u : v;
            if (i < t->count && entry(t, i) != want) bad++;
        }
        CHECK(bad == 0, "%s: %d entries differ from %s", tok, bad, path);
        n_seen++;
    }
    fclose(f);
    CHECK(n_seen == N_TABLES - 1, "text file has %d tables, want %d", n_seen, N_TABLES - 1);
}

int main(void) {
    test_hashes();
    test_gpu_form();
    CHECK(rwkv7_iq2xxs_grid[255] == 0x2b2b2b1908081908ull && rwkv7_iq3xxs_grid[255] == 0x3e341c04u &&
          rwkv7_iq3s_grid[511] == 0x0f0f0101u && rwkv7_iq1s_grid[1] == 0xffffffffffffff01ull,
          "spot values of quant-formats.md 3.8");
    const char *path = RWKV7_FIXTURES_DIR "/iq-tables.txt";
    if (!test_path_exists(path)) {
        if (g_test_failures) return test_finish("test_iq_tables");
        TEST_SKIP("%s is absent (SHA-256 digests checked and matched)", path);
    }
    test_text(path);
    return test_finish("test_iq_tables");
}
