// The page's kept conversation (issue 12): what goes back as session.start's history, and what a reload finds.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Conversation } from "../../src/voicebridge/static/js/conversation.js";
import { MAX_START_HISTORY_BYTES, MAX_START_HISTORY_ITEMS } from "../../src/voicebridge/static/js/contract.js";

class MemoryStorage {
  constructor() {
    this.data = new Map();
  }
  getItem(key) {
    return this.data.has(key) ? this.data.get(key) : null;
  }
  setItem(key, value) {
    this.data.set(key, String(value));
  }
}

const final = (role, item, text, interrupted = false) => ({ role, item_id: item, text, final: true, interrupted });

test("finals are kept in order, a later final of the same item replaces it, and a reload finds them", () => {
  const storage = new MemoryStorage();
  const kept = new Conversation(storage);
  kept.add(final("user", "u1", "Hello"));
  kept.add(final("assistant", "a1", "Hi there, how"));
  kept.add(final("assistant", "a1", "Hi there, how can I help?"));
  const reloaded = new Conversation(storage);
  assert.deepEqual(reloaded.history(), [
    { role: "user", text: "Hello" },
    { role: "assistant", text: "Hi there, how can I help?" },
  ]);
  reloaded.clear();
  assert.equal(new Conversation(storage).empty, true);
});

test("the history sent is the most recent that fits the server's limits", () => {
  const kept = new Conversation(new MemoryStorage());
  for (let n = 0; n < 50; n++) kept.add(final(n % 2 ? "assistant" : "user", `i${n}`, `turn ${n}`));
  const history = kept.history();
  assert.equal(history.length, MAX_START_HISTORY_ITEMS);
  assert.equal(history.at(-1).text, "turn 49");
  assert.equal(history[0].text, "turn 10");

  const big = new Conversation(new MemoryStorage());
  for (let n = 0; n < 5; n++) big.add(final("user", `b${n}`, "é".repeat(2000))); // 4000 bytes each
  const fitting = big.history();
  assert.equal(fitting.length, 4);
  assert.ok(fitting.reduce((sum, h) => sum + new TextEncoder().encode(h.text).length, 0) <= MAX_START_HISTORY_BYTES);
});

test("empty texts are not sent and broken storage is survived", () => {
  const storage = new MemoryStorage();
  storage.setItem("voicebridge.conversation", "{not json");
  const kept = new Conversation(storage);
  assert.equal(kept.empty, true);
  kept.add(final("assistant", "a", "   ", true));
  assert.deepEqual(kept.history(), []);
  assert.deepEqual(new Conversation(null).history(), []);
});

const partial = (role, item, text) => ({ role, item_id: item, text, final: false });

test("a message keeps the place where it began: a reply interrupted by a typed message stays before it", () => {
  const storage = new MemoryStorage();
  const kept = new Conversation(storage);
  kept.add({ ...final("user", "u1", "Tell me a story"), typed: true });
  kept.add(partial("assistant", "a1", "Once upon"));
  // The typed interruption is echoed at once; the interrupted reply's final text arrives after it.
  kept.add({ ...final("user", "u2", "Stop, a question"), typed: true });
  kept.add(final("assistant", "a1", "Once upon a", true));
  kept.add(final("assistant", "a2", "Yes?"));
  const order = [["user", "Tell me a story"], ["assistant", "Once upon a"], ["user", "Stop, a question"], ["assistant", "Yes?"]];
  assert.deepEqual(kept.shown.map((i) => [i.role, i.text]), order);
  assert.deepEqual(new Conversation(storage).shown.map((i) => [i.role, i.text]), order, "and so after a reload");
  assert.deepEqual(new Conversation(storage).history().map((h) => [h.role, h.text]), order, "and in the history sent");
});

test("spoken turns fill the place kept when the user began speaking; typed ones never take it", () => {
  const kept = new Conversation(new MemoryStorage());
  kept.expectUser();
  kept.add(partial("assistant", "a1", "Hi"));
  kept.add({ ...final("user", "u9", "typed later"), typed: true });
  kept.add(final("user", "u1", "(1.2 s of speech)")); // the transcript of the speech, after the reply began
  kept.add(final("assistant", "a1", "Hi there"));
  assert.deepEqual(kept.shown.map((i) => i.item), ["u1", "a1", "u9"]);
});

test("a reply still arriving when the page went away comes back marked interrupted; empty places are dropped", () => {
  const storage = new MemoryStorage();
  const kept = new Conversation(storage);
  kept.add(final("user", "u1", "Hello"));
  kept.add(partial("assistant", "a1", "Hello, I am "));
  kept.expectUser(); // speech that never got a transcript
  const reloaded = new Conversation(storage);
  assert.deepEqual(reloaded.items.map((i) => [i.item, i.final, i.interrupted]), [["u1", true, false], ["a1", true, true]]);
  assert.deepEqual(reloaded.history(), [{ role: "user", text: "Hello" }, { role: "assistant", text: "Hello, I am " }]);
});

test("a reply cut before any of it was heard stays shown, marked, through a reload, and is not sent back", () => {
  const storage = new MemoryStorage();
  const kept = new Conversation(storage);
  kept.add({ ...final("user", "u1", "Tell me a story"), typed: true });
  kept.add(partial("assistant", "a1", "Once upon"));
  kept.add({ ...final("user", "u2", "Stop"), typed: true });
  kept.add({ ...final("assistant", "a1", "", true), heard: true }); // truncated at 0 ms: nothing heard
  kept.add(final("assistant", "a2", "Yes?"));
  const order = [["user", "Tell me a story", false], ["assistant", "", true], ["user", "Stop", false], ["assistant", "Yes?", false]];
  const seen = (c) => c.shown.map((i) => [i.role, i.text, i.interrupted]);
  assert.deepEqual(seen(kept), order);
  assert.deepEqual(seen(new Conversation(storage)), order, "and so after a reload");
  assert.deepEqual(new Conversation(storage).history().map((h) => h.text), ["Tell me a story", "Stop", "Yes?"]);
});

test("a lost connection cuts the replies still arriving, and a late fragment does not reopen them", () => {
  const kept = new Conversation(new MemoryStorage());
  kept.add(partial("assistant", "a1", "Part"));
  assert.deepEqual(kept.interruptOpen(), ["a1"]);
  kept.add(partial("assistant", "a1", " more"));
  assert.deepEqual([kept.items[0].text, kept.items[0].final, kept.items[0].interrupted], ["Part more", true, true]);
  assert.deepEqual(kept.interruptOpen(), []);
});
