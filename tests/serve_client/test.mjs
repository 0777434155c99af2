// test.mjs: drives `rwkv7 serve` with the official openai client (pinned in package.json).
// Run by tests/test_serve_client.c with RWKV7_BASE_URL (http://127.0.0.1:PORT/v1) and
// RWKV7_API_KEY set; the server runs the byte-vocabulary fixture, so a prompt of n ASCII bytes is
// n tokens. Prints one line per failed check and exits 1 if any failed.
import OpenAI from 'openai';

const baseURL = process.env.RWKV7_BASE_URL;
const apiKey = process.env.RWKV7_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
let checks = 0, failures = 0;
function check(cond, msg) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL: ${msg}`);
  }
}

async function streamText(params, chat) {
  const stream = chat ? await client.chat.completions.create({ ...params, stream: true })
                      : await client.completions.create({ ...params, stream: true });
  let text = '', finish = null, usage = null, n = 0;
  for await (const chunk of stream) {
    n++;
    const c = chunk.choices[0];
    if (c) {
      text += chat ? (c.delta?.content ?? '') : (c.text ?? '');
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, finish, usage, n };
}

async function main() {
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id.endsWith('.gguf'), `models: ${JSON.stringify(models.data)}`);
  const model = models.data[0].id;

  // completions: usage numbers, finish_reason
  const c1 = await client.completions.create({ model, prompt: 'Hello', max_tokens: 10, temperature: 0, ignore_eos: true });
  check(c1.object === 'text_completion' && typeof c1.choices[0].text === 'string', 'completion object');
  check(c1.usage.prompt_tokens === 5 && c1.usage.completion_tokens === 10 && c1.usage.total_tokens === 15,
        `completion usage ${JSON.stringify(c1.usage)}`);
  check(c1.choices[0].finish_reason === 'length', `finish_reason ${c1.choices[0].finish_reason}`);

  // seed determinism, streaming and not
  const p = { model, prompt: 'Once upon', max_tokens: 30, temperature: 1.0, seed: 1234, ignore_eos: true };
  const a = await client.completions.create(p), b = await client.completions.create(p);
  check(a.choices[0].text === b.choices[0].text, 'same seed, same completion');
  const s = await streamText(p, false);
  check(s.text === a.choices[0].text, `streamed == plain: '${s.text}' vs '${a.choices[0].text}'`);
  check(s.finish === 'length' && s.usage && s.usage.completion_tokens === 30, `stream end ${s.finish} ${JSON.stringify(s.usage)}`);

  // stop strings
  const full = c1.choices[0].text;
  if (full.length >= 6) {
    const stop = full.slice(3, 5);
    const c2 = await client.completions.create({ model, prompt: 'Hello', max_tokens: 10, temperature: 0, ignore_eos: true, stop: [stop] });
    check(c2.choices[0].text === full.slice(0, full.indexOf(stop)) && c2.choices[0].finish_reason === 'stop',
          `stop '${stop}': '${c2.choices[0].text}' from '${full}'`);
  }

  // chat, streaming and not
  const cp = { model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }],
               max_tokens: 20, temperature: 0.8, seed: 77 };
  const ch = await client.chat.completions.create(cp);
  check(ch.object === 'chat.completion' && ch.choices[0].message.role === 'assistant', 'chat object');
  const rendered = 'System: Be brief.\n\nUser: Hi!\n\nAssistant:';
  check(ch.usage.prompt_tokens === rendered.length, `chat prompt_tokens ${ch.usage.prompt_tokens} != ${rendered.length}`);
  const cs = await streamText({ ...cp, stream_options: { include_usage: true } }, true);
  check(cs.text === ch.choices[0].message.content, `chat streamed == plain: '${cs.text}' vs '${ch.choices[0].message.content}'`);
  check(cs.usage && cs.usage.total_tokens === ch.usage.total_tokens, 'chat stream usage');

  // a follow-up turn restores the conversation's state
  const next = await client.chat.completions.create({ ...cp, messages: [...cp.messages, ch.choices[0].message,
                                                                        { role: 'user', content: 'More.' }] });
  const fresh = 'User: More.\n\nAssistant:'.length;
  check(next.usage.prompt_tokens - next.usage.prompt_tokens_details.cached_tokens === fresh,
        `follow-up prefilled ${next.usage.prompt_tokens - next.usage.prompt_tokens_details.cached_tokens} tokens, want ${fresh}`);

  // logprobs through the client's types
  const lp = await client.chat.completions.create({ ...cp, max_tokens: 5, logprobs: true, top_logprobs: 2 });
  const content = lp.choices[0].logprobs?.content ?? [];
  check(content.length >= 4 && content.every((e) => typeof e.logprob === 'number' && e.top_logprobs.length === 2),
        `chat logprobs ${JSON.stringify(lp.choices[0].logprobs).slice(0, 200)}`);

  // error objects
  for (const [what, call, status] of [
    ['bad temperature', () => client.completions.create({ model, prompt: 'a', temperature: 'hot' }), 400],
    ['no messages', () => client.chat.completions.create({ model, messages: [] }), 400],
    ['n = 2', () => client.completions.create({ model, prompt: 'a', n: 2 }), 400],
    ['wrong key', () => new OpenAI({ baseURL, apiKey: apiKey + 'x', maxRetries: 0 }).models.list(), 401],
  ]) {
    try {
      await call();
      check(false, `${what}: no error`);
    } catch (e) {
      check(e instanceof OpenAI.APIError && e.status === status && typeof e.error?.message === 'string',
            `${what}: ${e.status} ${e.message}`);
    }
  }
  console.error(`test.mjs: ${checks} checks, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
