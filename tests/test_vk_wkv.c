/* test_vk_wkv.c: vulkan/wkv.c's choice between the serial and the chunked WKV-7 kernels, without a
 * device: the measured default rule, RWKV7_VK_WKV's overrides, the shapes the chunked kernels
 * cannot run (head size, shared memory, scratch) and the token windows of long or wide runs.
 * The kernels themselves are checked against the CPU by test_ops (-o wkv7, both defaults and
 * RWKV7_VK_WKV=chunked: test_ops_vk_wkv_chunked). */
#include <string.h>

#include "abi.h"
#include "testing.h"
#include "wkv.h"

static struct rwkv7_vk_wkv_shape shape(int head_size, int n_head, int n_seq, int n_tok) {
    return (struct rwkv7_vk_wkv_shape){head_size, n_head, n_seq, n_tok, 32 * 1024, false};
}

int main(void) {
    const char *why = NULL;
    struct rwkv7_vk_wkv_shape s = shape(64, 12, 1, 512);
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 512, "0.1B prefill of 512: chunked, one window (%s)", why);
    CHECK(rwkv7_vk_wkv_pick(&s, "serial", &why) == 0 && strstr(why, "RWKV7_VK_WKV"), "RWKV7_VK_WKV=serial");
    CHECK(rwkv7_vk_wkv_pick(&s, "bogus", &why) == 512, "an unknown value keeps the rule");
    /* CPU devices (lavapipe): serial by default, chunked only forced. */
    s.cpu_device = true;
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 0 && strstr(why, "CPU"), "CPU device: serial (%s)", why);
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 512, "CPU device, forced: chunked");
    s.cpu_device = false;
    s.n_tok = 100;
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 112, "100 tokens: 7 chunks of 16 (%s)", why);
    s = shape(128, 16, 1, 100);
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 0, "head size 128: serial by default (%s)", why);
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 104, "head size 128 forced: chunks of 8 (%s)", why);
    /* Decode and short runs stay serial; forcing reaches down to 2 tokens. */
    s = shape(64, 12, 4, 1);
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 0, "decode is serial");
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 0, "decode is serial even forced");
    s.n_tok = RWKV7_VK_WKV_MIN_TOK - 1;
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == 0, "below RWKV7_VK_WKV_MIN_TOK: serial");
    s.n_tok = 5;
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 16 && strstr(why, "RWKV7_VK_WKV"), "forced: one ragged chunk");
    s.n_tok = RWKV7_VK_WKV_MIN_TOK;
    CHECK(rwkv7_vk_wkv_pick(&s, NULL, &why) == (RWKV7_VK_WKV_MIN_TOK + 15) / 16 * 16, "at RWKV7_VK_WKV_MIN_TOK: chunked (%s)", why);
    /* What the chunked kernels cannot run. */
    s = shape(32, 8, 1, 256);
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 0, "head size 32: serial");
    s = shape(64, 12, 1, 256);
    s.shared_bytes = 16 * 1024;
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 0 && strstr(why, "shared"), "16 KiB shared memory: serial");
    s.shared_bytes = RWKV7_VK_WKV_PREP_SHARED(64, 16);
    CHECK(RWKV7_VK_WKV_STATE_SHARED(64, 16) <= RWKV7_VK_WKV_PREP_SHARED(64, 16) &&
              rwkv7_vk_wkv_pick(&s, "chunked", &why) == 256,
          "exactly the prep pass's shared memory suffices (%s)", why);
    s.shared_bytes--;
    CHECK(rwkv7_vk_wkv_pick(&s, "chunked", &why) == 0, "one byte less: serial");
    CHECK(RWKV7_VK_WKV_STATE_SHARED(128, 8) <= 32 * 1024 && RWKV7_VK_WKV_PREP_SHARED(128, 8) <= 32 * 1024,
          "both head sizes fit 32 KiB");
    /* Wide runs: windows of whole chunks that fit the scratch; one chunk too many: serial. */
    const unsigned blk = RWKV7_VK_WKV_CHUNK_BLOCK(64, 16) * 4u;
    s = shape(64, 32, 8, 4096);
    int win = rwkv7_vk_wkv_pick(&s, NULL, &why);
    unsigned chunks = RWKV7_VK_WKV_SCRATCH / (8u * 32u * blk);
    CHECK(win == (int)chunks * 16 && win < 4096 && (unsigned)win / 16 * 8u * 32u * blk <= RWKV7_VK_WKV_SCRATCH,
          "8 x 32 heads x 4096 tokens: windows of %u chunks, got %d tokens", chunks, win);
    s = shape(64, 32, 1000, 64);
    CHECK(RWKV7_VK_WKV_SCRATCH / (1000u * 32u * blk) == 0 && rwkv7_vk_wkv_pick(&s, "chunked", &why) == 0 &&
              strstr(why, "scratch"),
          "1000 sequences x 32 heads: one chunk exceeds the scratch: serial");
    return test_finish("test_vk_wkv");
}
