// Everything the page shows. State lives in app.js; this module only renders it.
import { median } from "./bookkeeping.js";
import { ACTIVE_STATES, ErrorCode, State, ToolStatus } from "./contract.js";

export const STATES = {
  [State.IDLE]: ["Not started", "Press Start session and allow the microphone when asked."],
  [State.CONNECTING]: ["Connecting…", "Opening a voice session."],
  [State.READY]: ["Ready", "Go ahead and speak."],
  [State.LISTENING]: ["Listening", "Pause when you are done and the assistant will answer."],
  [State.PROCESSING]: ["Thinking", "Working on a reply."],
  [State.SPEAKING]: ["Speaking", "Talk over the assistant at any time to interrupt."],
  [State.RECONNECTING]: ["Reconnecting…", "The connection dropped. Trying again."],
  [State.STOPPED]: ["Session ended", "Press Start session to talk again."],
  [State.ERROR]: ["Stopped by a problem", "See the message below."],
};

// A session without a microphone says what to do with the keyboard instead.
const TYPING_HINTS = {
  [State.READY]: "Type a message below and press Enter.",
  [State.SPEAKING]: "Type a new message at any time to interrupt.",
};

// The page's own problem before anything started (the microphone, the browser): nothing was stopped.
const NOT_STARTED = ["Could not start", "See the message below."];

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
const OR_TYPE = " Or type instead: the assistant answers typed messages too.";

// What a person can do about each failure. The server's own wording (which may name hosts, keys or
// identities) goes to the browser console, never onto the page (issue 22).
const CONTINUE = "Press Start session to continue the conversation.";
export const PROBLEMS = {
  [PageProblem.MIC_DENIED]: [
    "Microphone access is blocked",
    "Allow the microphone for this site (the icon in the address bar or the browser's site settings), then press Start session again." + OR_TYPE,
  ],
  [PageProblem.MIC_ABSENT]: ["No microphone found", "Connect a microphone or headset, then press Start session again." + OR_TYPE],
  [PageProblem.MIC_BUSY]: ["The microphone is in use", "Another app is holding the microphone. Close it, then press Start session again." + OR_TYPE],
  [PageProblem.UNSUPPORTED]: [
    "This browser cannot stream audio here",
    "The page needs AudioWorklet, microphone access and a secure (https) address. Use a current Chrome, Edge, Firefox or Safari." + OR_TYPE,
  ],
  [PageProblem.AUDIO_FAILED]: ["The microphone or speakers could not be opened", "Press Start session to try again." + OR_TYPE],
  [PageProblem.UNREACHABLE]: ["Cannot reach the voicebridge server", "Check your network connection, then press Start session again."],
  [ErrorCode.UPSTREAM_AUTH]: [
    "The voice service did not accept this server",
    "This is a setup problem on the server, not on your side. Tell the operator; the details are in the server's log.",
  ],
  [ErrorCode.UPSTREAM_UNAVAILABLE]: ["The voice service is unreachable", "It may be a short outage. Try again in a minute."],
  [ErrorCode.UPSTREAM_TIMEOUT]: ["The voice service did not answer in time", "Try again in a minute."],
  [ErrorCode.UPSTREAM_LOST]: ["The connection to the voice service was lost", CONTINUE],
  [ErrorCode.TOO_MANY_SESSIONS]: ["The server is busy", "Too many conversations are running. Try again in a few minutes."],
  [ErrorCode.TOO_MANY_SESSIONS_FOR_USER]: [
    "You have too many sessions open",
    "Stop a session in another tab or window (or close it), then press Start session again.",
  ],
  [ErrorCode.SESSION_TIME_LIMIT]: ["The session reached its time limit", CONTINUE],
  [ErrorCode.IDLE_TIMEOUT]: ["The session ended because nothing was said", "Press Start session when you want to talk again."],
  [PageProblem.ENDED_BY_SERVER]: ["The session was ended by the server", CONTINUE],
  [ErrorCode.INTERNAL]: ["The server hit an unexpected error", "Press Start session to try again. If it keeps happening, tell the operator."],
};

// A reply the service could not give, in the page's words by the reason the server names.
export const REPLY_FAILED_REASONS = {
  rate_limit_exceeded: "The assistant is busy right now and could not answer. Say or type it again in a moment.",
  content_filter: "The content filter stopped that reply. Try putting it another way.",
};

// Errors after which the session goes on: a line in the notice, not the problem box.
export const NOTICES = {
  [REPLY_FAILED]: "The assistant could not answer that. Say or type it again.",
  [ErrorCode.UPSTREAM_ERROR]: "The voice service reported a problem with the last request. The session goes on.",
  [ErrorCode.AUDIO_RATE]: "Audio is arriving faster than a microphone sends it; the excess is not passed on.",
  [ErrorCode.SERVER_DRAINING]: "The server is restarting. Reconnecting automatically; nothing to do.",
  [ErrorCode.NOT_STARTED]: "The session was not ready yet. Try again in a moment.",
  [ErrorCode.BAD_JSON]: "The server could not read something this page sent. The session goes on.",
  [ErrorCode.BAD_MESSAGE]: "The server could not use something this page sent. The session goes on.",
  [ErrorCode.UNKNOWN_TYPE]: "The server could not use something this page sent. The session goes on.",
  [ErrorCode.BAD_AUDIO]: "The server could not use some of the microphone audio. The session goes on.",
};

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
    const [label, hint] = state === State.ERROR && !started ? NOT_STARTED : STATES[state];
    const changed = state !== this.state;
    this.state = state;
    document.body.dataset.state = state;
    $("state-text").textContent = label;
    // A wait for a free line is shown for as long as the state it was announced in lasts.
    if (changed || !document.body.dataset.waiting) {
      delete document.body.dataset.waiting;
      $("state-hint").textContent = (this.typing && TYPING_HINTS[state]) || hint;
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
    if (changed) this.announce(`${label}. ${$("state-hint").textContent}`);
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
  waiting(seconds) {
    const about = Number.isFinite(seconds) && seconds > 0 ? ` — about ${Math.round(seconds)} s` : "…";
    const text = `Waiting for a free line${about}`;
    document.body.dataset.waiting = "true";
    $("state-hint").textContent = text;
    this.announce(text);
  }

  // Known codes get a title and an action for the user; anything else a generic line. Nothing of the
  // server's own wording is shown: that is for the log.
  showProblem(code) {
    const [title, action] = PROBLEMS[code] ?? ["Something went wrong", "Press Start session to try again."];
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
      who.textContent = role === "user" ? "You" : "Assistant";
      entry.append(who, document.createElement("p"));
      this.entries.set(item, entry);
      $("transcript-empty").hidden = true;
    }
    const body = entry.lastChild;
    body.textContent = final ? text : body.textContent + text;
    if (interrupted) entry.dataset.interrupted = "true";
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
    const what = label || `Using ${name.replaceAll("_", " ")}${server ? ` on ${server}` : ""}`;
    entry.dataset.status = status;
    entry.textContent = status === ToolStatus.RUNNING ? `${what}…` : status === ToolStatus.DONE ? `${what} — done` : `${what} — failed`;
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
    entry.dataset.interrupted = "true";
    entry.dataset.final = "true";
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
    const fmt = (v) => (v == null ? "–" : `${Math.round(v)} ms`);
    const column = (key) => turns.map((t) => t[key]).filter((v) => v != null);
    const last = turns.at(-1) ?? {};
    $("lat-response").textContent = fmt(last.responseMs);
    $("lat-response-median").textContent = fmt(median(column("responseMs")));
    $("lat-interrupt").textContent = fmt(last.interruptMs);
    $("lat-interrupt-median").textContent = fmt(median(column("interruptMs")));
    $("lat-turns").textContent = String(turns.length);
  }
}
