#!/usr/bin/env python3
"""serve_turns.py: one conversation sent turn by turn to a running `rwkv7 serve` (a long system
prompt, then short user turns, each request carrying the whole history as OpenAI clients do).
Prints per turn the prompt tokens, the tokens restored from the state cache, and the request
time; run it against a server with the default --state-cache and one with --state-cache 0.

    python3 bench/serve_turns.py --port 8080 --turns 5 --system-words 1500
"""
import argparse, http.client, json, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--system-words", type=int, default=1500)
    ap.add_argument("--max-tokens", type=int, default=32)
    a = ap.parse_args()
    system = " ".join(f"rule{i % 97} applies to item{i}." for i in range(a.system_words // 4))
    msgs = [{"role": "system", "content": system}]
    for t in range(a.turns):
        msgs.append({"role": "user", "content": f"Question {t + 1}: what does rule{t} say about item{t * 7}?"})
        c = http.client.HTTPConnection(a.host, a.port, timeout=600)
        t0 = time.monotonic()
        c.request("POST", "/v1/chat/completions", json.dumps({"messages": msgs, "max_tokens": a.max_tokens,
                                                              "temperature": 0, "seed": 1}),
                  {"Content-Type": "application/json"})
        r = json.loads(c.getresponse().read())
        dt = time.monotonic() - t0
        u = r["usage"]
        cached = u["prompt_tokens_details"]["cached_tokens"]
        print(f"turn {t + 1}: prompt {u['prompt_tokens']} tokens, {cached} restored, "
              f"{u['prompt_tokens'] - cached} prefilled; {u['completion_tokens']} generated; {1e3 * dt:.0f} ms")
        msgs.append(r["choices"][0]["message"])


if __name__ == "__main__":
    main()
