// The page's reconnect timing after a drain (issue 23): every tab of an instance fits the voice service's
// connection quota only if each waits its own share of the time the server names.
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, reconnectWithin, restartDelay } from "../../src/voicebridge/static/js/bookkeeping.js";

test("a drain's reconnect is spread uniformly over the seconds the server names", () => {
  assert.equal(restartDelay(600, () => 0), 0);
  assert.equal(restartDelay(600, () => 0.5), 300_000);
  assert.ok(restartDelay(600, () => 0.999) < 600_000);
});

test("no hint, or a hint of 0: reconnect at once", () => {
  assert.equal(restartDelay(0, () => 0.9), 0);
});

test("the close reason carries the hint when the reconnecting message did not arrive", () => {
  assert.equal(reconnectWithin("service restart; reconnect within 42 s"), 42);
  assert.equal(reconnectWithin("service restart"), 0);
  assert.equal(reconnectWithin(""), 0);
  assert.equal(reconnectWithin(undefined), 0);
});

test("other losses keep the exponential backoff with jitter", () => {
  assert.equal(backoffDelay(0, () => 0.5), 500);
  assert.equal(backoffDelay(10, () => 0.5), 8000);
});
