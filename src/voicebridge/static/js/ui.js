// Everything the page shows. State lives in app.js; this module only renders it.
import { median } from "./bookkeeping.js";
import { ACTIVE_STATES, ErrorCode, State, ToolStatus } from "./contract.js";
import { CONVERSATION_LANG, LANG, duration, has, milliseconds, number, seconds, t } from "./words.js";

// The page's words live in static/words/ (one catalog per language, English the source); here they are
// named by what they are for.
const label = (state) => t(`state.${state}.label`);
const hint = (state) => t(`state.${state}.hint`);

// A session without a microphone says what to do with the keyboard instead.
const TYPING_HINTS = new Set([State.READY, State.SPEAKING]);

// The page's own problem before anything started (the microphone, the browser): nothing was stopped.
const NOT_STARTED = "not_started";

// Problems the page finds itself (the server's come as ErrorCode).
export const PageProblem = Object.freeze({
  MIC_DENIED: "mic_denied",
  MIC_ABSENT: "mic_absent",
  MIC_BUSY: "mic_busy",
  UNSUPPORTED: "unsupported",
  UNREACHABLE: "unreachable",
  ENDED_BY_SERVER: "ended_by_server",
  AUDIO_FAILED: "audio_failed",
});

// Codes other engineers are adding to protocol.py (issues 19, 23); the contract's own constant wins once
// contract.js is regenerated with them.
export const REPLY_FAILED = ErrorCode.REPLY_FAILED ?? "reply_failed";
export const UPSTREAM_BUSY = ErrorCode.UPSTREAM_BUSY ?? "upstream_busy";

// Problems after which no microphone is the obstacle: a typed conversation is offered instead.
export const WITHOUT_MICROPHONE = new Set([
  PageProblem.MIC_DENIED, PageProblem.MIC_ABSENT, PageProblem.MIC_BUSY, PageProblem.UNSUPPORTED, PageProblem.AUDIO_FAILED,
]);

// What a person can do about each failure (`problem.<code>` in the catalog). The server's own wording
// (which may name hosts, keys or identities) goes to the browser console, never onto the page (issue 22).
export function problemWords(code) {
  const key = has(`problem.${code}.title`) ? code : "unknown";
  return [t(`problem.${key}.title`), t(`problem.${key}.action`)];
}

// An error after which the session goes on, in the page's words: a reply the service could not give by
// the reason the server names, else by its code (`notice.<code>`). A code this page does not know yet is
// told in the server's words, which is all the page has.
export function noticeWords(code, reason, message) {
  if (code === REPLY_FAILED && has(`reply_failed.${reason}`)) return t(`reply_failed.${reason}`);
  return has(`notice.${code}`) ? t(`notice.${code}`) : message;
}

// A warning: the page's words for the codes it knows (the time limit's says how long is left), else the
// server's, which are written for a person.
export function warningWords(code, seconds, message) {
  if (has(`warning.${code}`) && Number.isFinite(seconds)) return t(`warning.${code}`, { duration: duration(seconds) });
  return message;
}

const $ = (id) => document.getElementById(id);
const ENDED = [State.IDLE, State.STOPPED, State.ERROR];

export class View {
  constructor() {
    this.start = $("start");
    this.stop = $("stop");
    this.compose = $("compose");
    this.say = $("say");
    this.typeInstead = $("type-instead");
    this.entries = new Map();
    this.slots = [];
    this.state = null;
    this.typing = false; // a session without a microphone: hints speak of the keyboard
  }

  // `started`: false when the page's own check failed before any session began.
  setState(state, { started = true } = {}) {
    const shown = state === State.ERROR && !started ? NOT_STARTED : state;
    const changed = state !== this.state;
    this.state = state;
    document.body.dataset.state = state;
    $("state-text").textContent = label(shown);
    // A wait for a free line is shown for as long as the state it was announced in lasts.
    if (changed || !document.body.dataset.waiting) {
      delete document.body.dataset.waiting;
      $("state-hint").textContent = this.typing && TYPING_HINTS.has(state) ? t(`hint.typing.${state}`) : hint(shown);
    }
    const focused = document.activeElement;
    const live = !ENDED.includes(state);
    const flipped = this.start.disabled !== live;
    this.start.disabled = live;
    this.stop.disabled = !live;
    // Typing works whenever audio would: the session is up and not reconnecting.
    const talking = ACTIVE_STATES.includes(state);
    this.say.disabled = !talking;
    $("send").disabled = !talking;
    if (changed) this.announce(t("announce.state", { label: label(shown), hint: $("state-hint").textContent }));
    // A control that goes away under the keyboard focus hands it on, never to the page body (also when
    // the browser already moved it there: a session beginning or ending flips the two buttons).
    const lost = !focused || focused === document.body || focused.disabled || Boolean(focused.closest("[hidden]"));
    if (lost && (flipped || focused !== document.body)) this.focusAction();
  }

  // Where the keyboard goes when its control went away: what the problem box offers, else the enabled
  // one of Start and Stop.
  focusAction() {
    const target = [this.typeInstead, this.start, this.stop].find((b) => !b.disabled && !b.closest("[hidden]"));
    target?.focus();
  }

  // The polite live region: one sentence per change of state or notice, for screen readers.
  announce(text) {
    $("announce").textContent = text;
  }

  // The server waits for a free line upstream: how long it expects, instead of the connecting pulse.
  waiting(wait) {
    const text = Number.isFinite(wait) && wait > 0 ? t("waiting.about", { seconds: seconds(Math.round(wait)) }) : t("waiting");
    document.body.dataset.waiting = "true";
    $("state-hint").textContent = text;
    this.announce(text);
  }

  // Known codes get a title and an action for the user; anything else a generic line. Nothing of the
  // server's own wording is shown: that is for the log.
  showProblem(code) {
    const [title, action] = problemWords(code);
    $("error-title").textContent = title;
    $("error-action").textContent = action;
    $("error").dataset.code = code;
    this.typeInstead.hidden = !WITHOUT_MICROPHONE.has(code);
    $("error").hidden = false;
  }

  get problemShown() {
    return !$("error").hidden;
  }

  // A line worth reading that does not stop anything: the conversation survived a reconnect (good
  // news), a warning, an error after which the session goes on. It goes when the user speaks.
  showNotice(text, { kind = "good", code } = {}) {
    const notice = $("notice");
    notice.textContent = text;
    notice.dataset.kind = kind;
    if (code) notice.dataset.code = code;
    else delete notice.dataset.code;
    notice.hidden = false;
    this.announce(text);
  }

  clearNotice() {
    $("notice").hidden = true;
  }

  // The conversation kept in sessionStorage, shown again after a reload.
  restore(items) {
    for (const { role, item, text, interrupted } of items) this.transcript({ role, item_id: item, text, final: true, interrupted });
  }

  clearProblem() {
    $("error").hidden = true;
    delete $("error").dataset.code;
  }

  // The user's transcript arrives after the reply has begun, so a slot is reserved when the user
  // starts speaking and the next user transcript fills the oldest one: the log stays chronological.
  expectUser() {
    const slot = document.createElement("li");
    slot.hidden = true;
    $("transcript").append(slot);
    this.slots.push(slot);
  }

  // A partial carries a new fragment (appended); the final carries the whole text (replaces).
  transcript({ role, item_id: item, text, final, interrupted, typed }) {
    let entry = this.entries.get(item);
    if (!entry) {
      // A typed turn is shown when it is sent: it never fills a slot kept for speech being transcribed.
      const slot = role === "user" && !typed && this.slots.shift();
      entry = slot || $("transcript").appendChild(document.createElement("li"));
      entry.hidden = false;
      entry.className = `turn ${role}`;
      entry.dataset.item = item;
      entry.dataset.role = role;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = role === "user" ? t("turn.user") : t("turn.assistant");
      const body = document.createElement("p");
      // What was said is in the conversation's language, which is not the words' when they fell back.
      if (CONVERSATION_LANG !== LANG) body.lang = CONVERSATION_LANG;
      entry.append(who, body);
      this.entries.set(item, entry);
      $("transcript-empty").hidden = true;
    }
    const body = entry.querySelector("p");
    body.textContent = final ? text : body.textContent + text;
    if (interrupted) this.cut(entry);
    // Once cut short it stays cut: a late fragment does not make it look as if still arriving.
    entry.dataset.final = String(Boolean(final) || entry.dataset.interrupted === "true");
    this.reveal();
  }

  // One function call of the agent: a line in the conversation that follows the call's status.
  tool({ call_id: call, name, status, label, server }) {
    const key = `tool:${call}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = $("transcript").appendChild(document.createElement("li"));
      entry.className = "turn tool";
      entry.dataset.call = call;
      entry.dataset.tool = name;
      this.entries.set(key, entry);
      $("transcript-empty").hidden = true;
    }
    const tool = name.replaceAll("_", " ");
    const what = label || (server ? t("tool.using_on", { name: tool, server }) : t("tool.using", { name: tool }));
    entry.dataset.status = status;
    const shown = status === ToolStatus.RUNNING ? "tool.running" : status === ToolStatus.DONE ? "tool.done" : "tool.failed";
    entry.textContent = t(shown, { what });
    this.reveal();
  }

  // The newest line comes into view inside the conversation's own scroll box only: scrolling the page
  // would push the text box below the fold on a phone.
  reveal() {
    const log = $("log");
    log.scrollTop = log.scrollHeight;
  }

  // Cut short (by the user, or by a connection that went away): whatever text streamed so far is all
  // the reply there will be.
  interrupted(item) {
    const entry = this.entries.get(item);
    if (!entry) return;
    this.cut(entry);
    entry.dataset.final = "true";
  }

  // The mark is text in the page's words beside the speaker's name, not generated CSS content: it is
  // translated, a screen reader reads it, and it is not mistaken for words of the conversation.
  cut(entry) {
    if (entry.dataset.interrupted === "true") return;
    entry.dataset.interrupted = "true";
    const mark = document.createElement("span");
    mark.className = "cut";
    mark.textContent = t("turn.interrupted");
    entry.querySelector(".who").after(mark);
  }

  // Every reply still arriving is cut where it stands (the connection went away).
  interruptOpen() {
    for (const entry of this.entries.values()) if (entry.dataset.role === "assistant" && entry.dataset.final === "false") this.interrupted(entry.dataset.item);
  }

  clearTranscript() {
    for (const entry of [...this.entries.values(), ...this.slots]) entry.remove();
    this.entries.clear();
    this.slots = [];
    $("transcript-empty").hidden = false;
  }

  latency(turns) {
    const fmt = (v) => (v == null ? "–" : milliseconds(Math.round(v)));
    const column = (key) => turns.map((t) => t[key]).filter((v) => v != null);
    const last = turns.at(-1) ?? {};
    $("lat-response").textContent = fmt(last.responseMs);
    $("lat-response-median").textContent = fmt(median(column("responseMs")));
    $("lat-interrupt").textContent = fmt(last.interruptMs);
    $("lat-interrupt-median").textContent = fmt(median(column("interruptMs")));
    $("lat-turns").textContent = number(turns.length);
  }
}
