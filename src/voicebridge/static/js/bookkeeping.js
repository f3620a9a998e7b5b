// Small pure helpers for the page's bookkeeping, kept apart from the DOM so Node can test them.

export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Reconnect delay: exponential from 500 ms, capped at 8 s, with ±25 % jitter so tabs that lost the
// same server do not return in lockstep. `random` is injectable for tests.
export function backoffDelay(attempt, random = Math.random) {
  return Math.min(8000, 500 * 2 ** attempt) * (0.75 + random() * 0.5);
}

// After a deploy or scale-in (close 1012) every tab of the instance comes back at once, but the voice
// service takes only so many new connections a minute: the server says how long the instance's tabs
// need (`reconnect_within_s`, or the close reason), and each tab waits a uniform random share of it.
export function restartDelay(withinS, random = Math.random) {
  return withinS > 0 ? random() * withinS * 1000 : 0;
}

// The seconds a 1012 close reason names ("service restart; reconnect within N s"), or 0.
export function reconnectWithin(reason) {
  const match = /reconnect within (\d+) s/.exec(reason || "");
  return match ? Number(match[1]) : 0;
}

// Bytes carried by a base64 text, without decoding it (the worklet decodes; the page only counts).
export function base64ByteLength(text) {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}
