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

// Bytes carried by a base64 text, without decoding it (the worklet decodes; the page only counts).
export function base64ByteLength(text) {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}
