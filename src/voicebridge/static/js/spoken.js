// The word being spoken, highlighted in the conversation as it plays (issue 24, "karaoke").
// With Azure voices the server sends {"type":"word"} messages: where each word of an assistant item
// sits in its audio. The playback worklet reports how far into an item it has played; the word whose
// span holds that position is highlighted with the CSS Custom Highlight API, which marks a text range
// without touching the DOM the transcript view owns. Without that API (or without word messages) the
// page simply shows no highlight.
const KEEP_ITEMS = 4; // recent items whose word timings are kept
const KEEP_WORDS = 2000; // per item
const NAME = "spoken-word";

export class SpokenWords {
  constructor(doc = globalThis.document, css = globalThis.CSS, HighlightClass = globalThis.Highlight) {
    this.doc = doc;
    this.items = new Map(); // item id → [{ start, end }] in item milliseconds, in order
    this.shown = null; // "item:index" of the highlighted word
    this.highlight = css?.highlights && HighlightClass ? new HighlightClass() : null;
    if (this.highlight) css.highlights.set(NAME, this.highlight);
  }

  word({ item_id: item, start_ms: start, end_ms: end }) {
    let words = this.items.get(item);
    if (!words) {
      if (this.items.size >= KEEP_ITEMS) this.items.delete(this.items.keys().next().value);
      words = [];
      this.items.set(item, words);
    }
    if (words.length < KEEP_WORDS) words.push({ start, end });
  }

  // The word of `item` playing at `ms`: the last one that has begun, while it lasts (a pause between
  // words keeps the previous one lit, as a reader's eye rests there).
  indexAt(item, ms) {
    const words = this.items.get(item);
    if (!words) return -1;
    let at = -1;
    for (let n = 0; n < words.length && words[n].start <= ms; n++) at = n;
    return at;
  }

  played(item, ms) {
    const index = this.indexAt(item, ms);
    const key = index < 0 ? null : `${item}:${index}`;
    if (key === this.shown) return;
    this.clear();
    if (key === null) return;
    const range = this.rangeOf(item, index);
    if (!range) return;
    this.highlight.add(range);
    this.shown = key;
  }

  // The index-th word of the item's transcript text, as a DOM Range (null when it is not there yet).
  rangeOf(item, index) {
    if (!this.highlight) return null;
    const body = this.doc.querySelector(`li[data-item="${CSS.escape(item)}"] p`);
    const text = body?.firstChild;
    if (!text || text.nodeType !== 3) return null;
    const found = [...text.data.matchAll(/\S+/g)][index];
    if (!found) return null;
    const range = this.doc.createRange();
    range.setStart(text, found.index);
    range.setEnd(text, found.index + found[0].length);
    return range;
  }

  clear() {
    this.highlight?.clear();
    this.shown = null;
  }
}
