/* test_serve_client.c: `rwkv7 serve` driven by real clients: the official openai npm package
 * (tests/serve_client/test.mjs; `npm ci` in tests/serve_client installs the pinned version) and
 * plain curl for the SSE framing. Skips (77) when node, the installed package or curl is absent.
 * Loopback only; one server; about ten seconds. */
#define _GNU_SOURCE
#include "testing.h"

#include "json.h"
#include "serve_testing.h"

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    st_require_serve();
    if (run("command -v node >/dev/null 2>&1") != 0) TEST_SKIP("node is not installed");
    if (!test_path_exists(RWKV7_SOURCE_DIR "/tests/serve_client/node_modules/openai/package.json"))
        TEST_SKIP("the openai npm package is not installed (run npm ci in tests/serve_client)");
    if (run("command -v curl >/dev/null 2>&1") != 0) TEST_SKIP("curl is not installed");
    char model[512], dir[200], cmd[2048];
    test_fixture(model, sizeof model, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    snprintf(dir, sizeof dir, "/tmp/rwkv7-test-serve-client-%d", (int)getpid());
    mkdir(dir, 0755);
    struct srv s;
    const char *args[] = {"-np", "4", "--api-key", "test-key", NULL};
    CHECK(st_start_ready(&s, dir, "client", model, args) == 0, "server starts");
    if (s.pid) {
        snprintf(cmd, sizeof cmd, "RWKV7_BASE_URL=http://127.0.0.1:%d/v1 RWKV7_API_KEY=test-key timeout 120 node '%s/tests/serve_client/test.mjs'",
                 s.port, RWKV7_SOURCE_DIR);
        CHECK(run(cmd) == 0, "the openai client tests pass");
        /* curl -N: the raw event stream, byte for byte */
        snprintf(cmd, sizeof cmd,
                 "curl -sN --max-time 60 -H 'Authorization: Bearer test-key' -H 'Content-Type: application/json' "
                 "-d '{\"prompt\":\"Hi\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"stream\":true}' "
                 "http://127.0.0.1:%d/v1/completions > '%s/curl.out'",
                 s.port, dir);
        CHECK(run(cmd) == 0, "curl ran");
        snprintf(cmd, sizeof cmd, "%s/curl.out", dir);
        size_t n = 0;
        char *out = test_read_file(cmd, &n);
        int events = 0;
        bool framed = out && n > 0, done = false;
        for (size_t a = 0; framed && a < n;) {
            char *end = memmem(out + a, n - a, "\n\n", 2);
            size_t len = end ? (size_t)(end - out - a) : 0;
            framed = end && len > 6 && !memcmp(out + a, "data: ", 6) && !done;
            if (!framed) break;
            if (len == 12 && !memcmp(out + a, "data: [DONE]", 12)) done = true;
            else {
                struct json_value v;
                framed = json_parse(out + a + 6, len - 6, NULL, &v) == RWKV7_OK;
                if (framed) json_free(&v);
                events++;
            }
            a += len + 2;
        }
        CHECK(framed && done && events >= 2, "curl sees data: events ending in [DONE] (%d events)", events);
        free(out);
        CHECK(st_stop(&s, 20) == 0, "server exits 0 on SIGTERM");
        CHECK(!st_sanitizer_report(&s), "no sanitizer report");
    }
    return test_finish("test_serve_client");
}
