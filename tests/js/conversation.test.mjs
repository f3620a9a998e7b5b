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
