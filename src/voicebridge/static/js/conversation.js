// The conversation the page shows, kept so it survives what the connection does not (issue 12): a
// deploy or scale-in (close 1012), a socket that could not be resumed, a reload. It lives in
// sessionStorage (this tab only, gone when the tab closes) and goes back to the server as
// session.start's `history`, which the bridge replays into the new Voice Live session.
//
// Every message keeps the place where it began (issue 22), exactly as the page shows it: a reply is
// placed at its first fragment, not when its final text arrives (which, for a reply interrupted by a
// typed message, is after that message), and spoken user turns fill a place reserved when the user
// started speaking (their transcript arrives after the reply has begun).
// Pure apart from the storage it is given, so Node can test it.
import { MAX_START_HISTORY_BYTES, MAX_START_HISTORY_ITEMS } from "./contract.js";

const KEY = "voicebridge.conversation";
const KEEP = 200; // what the page shows back after a reload; the history sent is bounded below
const utf8 = new TextEncoder();

// Worth showing: what has words, and a reply cut before any of it was heard (the server truncates it
// to nothing, and the page still shows that the assistant began and was interrupted). Only words go
// back as history: the model remembers nothing of a reply truncated to nothing.
const shows = (i) => !i.pending && (Boolean(i.text.trim()) || (i.role === "assistant" && i.interrupted));

export class Conversation {
  constructor(storage) {
    this.storage = storage;
    this.items = this.load();
  }

  // What a reload finds: places never filled are dropped, and a message still arriving when the page
  // went away is all there will be of it (a reply playing during F5 was cut there).
  load() {
    try {
      const items = JSON.parse(this.storage?.getItem(KEY) ?? "[]");
      if (!Array.isArray(items)) return [];
      return items
        .filter((i) => i && typeof i.text === "string" && typeof i.role === "string")
        .map((i) => ({
          ...i,
          pending: false,
          final: true,
          interrupted: Boolean(i.interrupted) || (i.final === false && i.role === "assistant"),
        }))
        .filter(shows);
    } catch {
      return [];
    }
  }

  // The user started speaking: their transcript, whenever it comes, belongs here.
  expectUser() {
    this.items.push({ role: "user", item: null, text: "", final: false, interrupted: false, pending: true });
    this.trim();
  }

  // A transcript message, partial or final: a new item at the place it begins, or more of one kept.
  // A typed turn never fills a place kept for speech still being transcribed (the page does the same).
  add({ role, item_id: item, text, final, interrupted, typed }) {
    let kept = this.items.find((i) => i.item === item && !i.pending);
    if (!kept) {
      kept = (role === "user" && !typed && this.items.find((i) => i.pending)) || null;
      if (kept) Object.assign(kept, { item, pending: false });
      else {
        kept = { role, item, text: "", final: false, interrupted: false, pending: false };
        this.items.push(kept);
        this.trim();
      }
    }
    kept.text = final ? text : kept.text + text;
    if (interrupted) kept.interrupted = true;
    kept.final = Boolean(final) || kept.interrupted; // once cut short it stays cut
    this.save();
  }

  // Cut short where it stands (the user interrupted, or the connection to the server went away).
  interrupt(item) {
    const kept = this.items.find((i) => i.item === item && !i.pending);
    if (!kept || kept.final) return;
    Object.assign(kept, { final: true, interrupted: true });
    this.save();
  }

  // Its final text has arrived (or it was cut): nothing more of it is to come.
  finished(item) {
    return Boolean(this.items.find((i) => i.item === item && !i.pending)?.final);
  }

  // Every reply still arriving: what streamed so far is all there will be. Returns their item ids.
  interruptOpen() {
    const open = this.items.filter((i) => !i.pending && !i.final && i.role === "assistant");
    for (const kept of open) Object.assign(kept, { final: true, interrupted: true });
    if (open.length) this.save();
    return open.map((i) => i.item);
  }

  clear() {
    this.items = [];
    this.save();
  }

  get empty() {
    return !this.items.some((i) => i.text.trim());
  }

  // What the page shows, in the order the items began.
  get shown() {
    return this.items.filter(shows);
  }

  // The most recent items that fit session.start's limits, oldest first.
  history(maxItems = MAX_START_HISTORY_ITEMS, maxBytes = MAX_START_HISTORY_BYTES) {
    const out = [];
    let bytes = 0;
    for (let n = this.items.length - 1; n >= 0 && out.length < maxItems; n--) {
      const { role, text, pending } = this.items[n];
      if (pending || !text.trim() || (role !== "user" && role !== "assistant")) continue;
      bytes += utf8.encode(text).length;
      if (bytes > maxBytes) break;
      out.push({ role, text });
    }
    return out.reverse();
  }

  trim() {
    if (this.items.length > KEEP) this.items.splice(0, this.items.length - KEEP);
  }

  save() {
    try {
      this.storage?.setItem(KEY, JSON.stringify(this.items));
    } catch {
      // Storage full or blocked (private mode): the conversation still lives in memory for this page.
    }
  }
}
