// The page's own words in the page's language (issue 24; words.py on the server). The server renders the
// page in them and embeds the same catalog as JSON, read here before anything is drawn: what this script
// writes is in the language of what the server wrote, from the first paint on. Numbers and durations go
// through Intl in that language.
const embedded = (() => {
  try {
    return JSON.parse(globalThis.document?.getElementById("page-words")?.textContent ?? "{}");
  } catch {
    return {};
  }
})();

// The language the words are in (the page's `lang`), and the one the conversation is expected in: they
// differ when the configured language has no catalog and the words fall back to English.
export const LANG = embedded.lang || "en";
export const CONVERSATION_LANG = embedded.conversation || LANG;
const WORDS = embedded.words ?? {};

// The words under `key`, with `{name}` placeholders filled from `values`. A key missing from the page
// shows as itself: a visible defect, never an exception that would stop the page.
export function t(key, values = {}) {
  const text = WORDS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export const has = (key) => Object.hasOwn(WORDS, key);

const formats = new Map();
function format(options) {
  const key = JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.NumberFormat(LANG, options));
  return formats.get(key);
}

export const number = (n) => format({}).format(n);
export const milliseconds = (ms) => format({ style: "unit", unit: "millisecond", unitDisplay: "short" }).format(ms);
export const seconds = (s) => format({ style: "unit", unit: "second", unitDisplay: "long" }).format(s);

// A duration as a person says it: whole minutes from two minutes on, else seconds.
export function duration(s) {
  if (s >= 120) return format({ style: "unit", unit: "minute", unitDisplay: "long", maximumFractionDigits: 1 }).format(s / 60);
  if (s === 60) return format({ style: "unit", unit: "minute", unitDisplay: "long" }).format(1);
  return seconds(s);
}
