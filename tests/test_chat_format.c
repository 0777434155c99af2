/* test_chat_format.c: exact prompt strings for every think mode, multi-turn and system prompts,
 * text cleaning (CRLF, newline runs, stripping), reasoning removal from assistant turns, and
 * argument errors (rwkv7-gguf.md section 6.5). */
#include <string.h>

#include "chat_format.h"
#include "testing.h"

static void expect(const char *what, const char *system, const struct rwkv7_chat_msg *m, int n,
                   enum rwkv7_think think, const char *want) {
    char *got = NULL;
    enum rwkv7_status st = rwkv7_chat_render(system, m, n, think, &got);
    CHECK(st == RWKV7_OK && got && strcmp(got, want) == 0, "%s: got \"%s\" want \"%s\" (%s)",
          what, got ? got : "(null)", want, st == RWKV7_OK ? "ok" : rwkv7_last_error());
    free(got);
}

static void test_clean(void) {
    static const struct { const char *in, *out; } c[] = {
        {"  hi  ", "hi"},
        {"a\r\nb", "a\nb"},
        {"a\n\n\nb", "a\nb"},
        {"a\r\n\r\nb", "a\nb"},
        {"\n\t x \n\n", "x"},
        {"a\rb", "a\rb"},
        {"a \n \n b", "a \n \n b"},
        {"", ""},
        {" \n\r\n ", ""},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char buf[64];
        size_t n = rwkv7_chat_clean(c[i].in, strlen(c[i].in), buf);
        buf[n] = 0;
        CHECK(strcmp(buf, c[i].out) == 0, "clean case %zu gave \"%s\"", i, buf);
    }
}

int main(void) {
    test_clean();
    const struct rwkv7_chat_msg one[] = {{"user", "hi"}};
    expect("off", NULL, one, 1, RWKV7_THINK_OFF, "User: hi\n\nAssistant:");
    expect("on", NULL, one, 1, RWKV7_THINK_ON, "User: hi\n\nAssistant: <think");
    expect("fake", NULL, one, 1, RWKV7_THINK_FAKE, "User: hi\n\nAssistant: <think>\n</think");
    expect("bit", NULL, one, 1, RWKV7_THINK_BIT, "User: hi think a bit\n\nAssistant: <think");
    expect("lot", NULL, one, 1, RWKV7_THINK_LOT, "User: hi think a lot\n\nAssistant: <think");

    const struct rwkv7_chat_msg multi[] = {
        {"user", "a"}, {"assistant", " b "}, {"User", "c\r\n\r\n\r\nd  "},
    };
    expect("multi-turn", NULL, multi, 3, RWKV7_THINK_OFF,
           "User: a\n\nAssistant: b\n\nUser: c\nd\n\nAssistant:");
    expect("multi-turn lot: only the last user turn", NULL, multi, 3, RWKV7_THINK_LOT,
           "User: a\n\nAssistant: b\n\nUser: c\nd think a lot\n\nAssistant: <think");
    expect("system", "  You are helpful.\n\n", one, 1, RWKV7_THINK_OFF,
           "System: You are helpful.\n\nUser: hi\n\nAssistant:");
    expect("empty system is none", "", one, 1, RWKV7_THINK_OFF, "User: hi\n\nAssistant:");
    const struct rwkv7_chat_msg sysmsg[] = {{"system", "Be brief."}, {"user", "What is 1+1?"}};
    expect("system message", NULL, sysmsg, 2, RWKV7_THINK_ON,
           "System: Be brief.\n\nUser: What is 1+1?\n\nAssistant: <think");

    const struct rwkv7_chat_msg reason[] = {
        {"user", "q"}, {"assistant", "<think>long\n\nreasoning</think>\n\nanswer"}, {"user", "r"},
    };
    expect("reasoning dropped", NULL, reason, 3, RWKV7_THINK_FAKE,
           "User: q\n\nAssistant: answer\n\nUser: r\n\nAssistant: <think>\n</think");
    const struct rwkv7_chat_msg asst[] = {{"user", "x"}, {"assistant", "y\n\n\nz"}};
    expect("assistant cleaned", NULL, asst, 2, RWKV7_THINK_OFF,
           "User: x\n\nAssistant: y\nz\n\nAssistant:");
    expect("no messages", NULL, NULL, 0, RWKV7_THINK_BIT, "Assistant: <think");
    const struct rwkv7_chat_msg nul[] = {{"user", NULL}};
    expect("NULL content", NULL, nul, 1, RWKV7_THINK_OFF, "User: \n\nAssistant:");

    char *out = (char *)1;
    const struct rwkv7_chat_msg bad[] = {{"tool", "x"}};
    CHECK(rwkv7_chat_render(NULL, bad, 1, RWKV7_THINK_OFF, &out) == RWKV7_ERR_ARG && !out,
          "unknown role accepted");
    CHECK(strstr(rwkv7_last_error(), "tool") != NULL, "message: %s", rwkv7_last_error());
    CHECK(rwkv7_chat_render(NULL, one, 1, (enum rwkv7_think)9, &out) == RWKV7_ERR_ARG,
          "bad think mode accepted");

    static const char *names[] = {"off", "on", "fake", "bit", "lot"};
    for (int i = 0; i < 5; i++) {
        enum rwkv7_think t = RWKV7_THINK_OFF;
        CHECK(rwkv7_think_parse(names[i], &t) == RWKV7_OK && (int)t == i, "parse %s", names[i]);
    }
    enum rwkv7_think t;
    CHECK(rwkv7_think_parse("maybe", &t) == RWKV7_ERR_ARG, "bad name accepted");
    return test_finish("test_chat_format");
}
