// The spoken-word highlight (issue 24): which word of an item is playing at a playback position.
import assert from "node:assert/strict";
import { test } from "node:test";

import { SpokenWords } from "../../src/voicebridge/static/js/spoken.js";

const words = (spans) => {
  const spoken = new SpokenWords(null, undefined, undefined); // no DOM, no highlight API: timings only
  for (const [start, end] of spans) spoken.word({ item_id: "a", text: "w", start_ms: start, end_ms: end });
  return spoken;
};

test("the word playing is the last one that has begun, and a pause keeps it", () => {
  const spoken = words([[0, 200], [250, 500], [520, 900]]);
  assert.equal(spoken.indexAt("a", 0), 0);
  assert.equal(spoken.indexAt("a", 230), 0); // the pause after the first word
  assert.equal(spoken.indexAt("a", 250), 1);
  assert.equal(spoken.indexAt("a", 5000), 2);
});

test("an item without timings (an OpenAI voice) has no word playing", () => {
  const spoken = words([[0, 200]]);
  assert.equal(spoken.indexAt("other", 100), -1);
  spoken.played("other", 100); // without a highlight API nothing is drawn, nothing fails
  assert.equal(spoken.shown, null);
});

test("only the most recent items keep their timings", () => {
  const spoken = new SpokenWords(null, undefined, undefined);
  for (const item of ["a", "b", "c", "d", "e"]) spoken.word({ item_id: item, text: "w", start_ms: 0, end_ms: 10 });
  assert.equal(spoken.indexAt("a", 5), -1);
  assert.equal(spoken.indexAt("e", 5), 0);
});
