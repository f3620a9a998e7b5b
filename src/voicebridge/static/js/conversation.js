// The conversation the page shows, kept so it survives what the connection does not (issue 12): a
// deploy or scale-in (close 1012), a socket that could not be resumed, a reload. It lives in
// sessionStorage (this tab only, gone when the tab closes) and goes back to the server as
// session.start's `history`, which the bridge replays into the new Voice Live session.
// Pure apart from the storage it is given, so Node can test it.
import { MAX_START_HISTORY_BYTES, MAX_START_HISTORY_ITEMS } from "./contract.js";

const KEY = "voicebridge.conversation";
const KEEP = 200; // what the page shows back after a reload; the history sent is bounded below
const utf8 = new TextEncoder();

export class Conversation {
  constructor(storage) {
    this.storage = storage;
    this.items = this.load();
  }

  load() {
    try {
      const items = JSON.parse(this.storage?.getItem(KEY) ?? "[]");
      return Array.isArray(items) ? items.filter((i) => i && typeof i.text === "string" && typeof i.role === "string") : [];
    } catch {
      return [];
    }
  }

  // A final transcript: a new item, or the final text of one already kept (same item id).
  add({ role, item_id: item, text, interrupted }) {
    const kept = { role, item, text, interrupted: Boolean(interrupted) };
    const at = this.items.findIndex((i) => i.item === item);
    if (at >= 0) this.items[at] = kept;
    else this.items.push(kept);
    if (this.items.length > KEEP) this.items.splice(0, this.items.length - KEEP);
    this.save();
  }

  clear() {
    this.items = [];
    this.save();
  }

  get empty() {
    return !this.items.some((i) => i.text.trim());
  }

  // The most recent items that fit session.start's limits, oldest first.
  history(maxItems = MAX_START_HISTORY_ITEMS, maxBytes = MAX_START_HISTORY_BYTES) {
    const out = [];
    let bytes = 0;
    for (let n = this.items.length - 1; n >= 0 && out.length < maxItems; n--) {
      const { role, text } = this.items[n];
      if (!text.trim() || (role !== "user" && role !== "assistant")) continue;
      bytes += utf8.encode(text).length;
      if (bytes > maxBytes) break;
      out.push({ role, text });
    }
    return out.reverse();
  }

  save() {
    try {
      this.storage?.setItem(KEY, JSON.stringify(this.items));
    } catch {
      // Storage full or blocked (private mode): the conversation still lives in memory for this page.
    }
  }
}
