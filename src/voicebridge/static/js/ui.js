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

// Problems the page finds itself (the server's come as ErrorCode).
export const PageProblem = Object.freeze({
  MIC_DENIED: "mic_denied",
  MIC_ABSENT: "mic_absent",
  MIC_BUSY: "mic_busy",
  UNSUPPORTED: "unsupported",
  UNREACHABLE: "unreachable",
  ENDED_BY_SERVER: "ended_by_server",
});

// What a person can do about each failure.
export const PROBLEMS = {
  [PageProblem.MIC_DENIED]: [
    "Microphone access is blocked",
    "Allow the microphone for this site (the icon in the address bar or the browser's site settings), then press Start session again.",
  ],
  [PageProblem.MIC_ABSENT]: ["No microphone found", "Connect a microphone or headset, then press Start session again."],
  [PageProblem.MIC_BUSY]: ["The microphone is in use", "Another app is holding the microphone. Close it, then press Start session again."],
  [PageProblem.UNSUPPORTED]: [
    "This browser cannot stream audio here",
    "The page needs AudioWorklet, microphone access and a secure (https) address. Use a current Chrome, Edge, Firefox or Safari.",
  ],
  [PageProblem.UNREACHABLE]: ["Cannot reach the voicebridge server", "Check your network connection, then press Start session again."],
  [ErrorCode.UPSTREAM_AUTH]: [
    "The voice service rejected the server's credentials",
    "This is a server setup problem: an administrator needs to check the Voice Live key or the managed identity's role.",
  ],
  [ErrorCode.UPSTREAM_UNAVAILABLE]: ["The voice service is unreachable", "It may be a short outage. Try again in a minute."],
  [ErrorCode.UPSTREAM_TIMEOUT]: ["The voice service did not answer in time", "Try again in a minute."],
  [ErrorCode.UPSTREAM_LOST]: ["The connection to the voice service was lost", "Press Start session to begin a new conversation."],
  [ErrorCode.TOO_MANY_SESSIONS]: ["The server is busy", "Too many conversations are running. Try again in a few minutes."],
  [ErrorCode.SERVER_DRAINING]: ["The server is restarting", "Reconnecting automatically; nothing to do."],
  [ErrorCode.TOO_MANY_SESSIONS_FOR_USER]: [
    "You have too many sessions open",
    "Stop a session in another tab or window (or close it), then press Start session again.",
  ],
  [ErrorCode.SESSION_TIME_LIMIT]: ["The session reached its time limit", "Press Start session to begin a new one."],
  [ErrorCode.IDLE_TIMEOUT]: ["The session ended because nothing was said", "Press Start session when you want to talk again."],
  [PageProblem.ENDED_BY_SERVER]: ["The session was ended by the server", "Press Start session to begin a new one."],
  [ErrorCode.INTERNAL]: ["The server hit an unexpected error", "Press Start session to try again. If it keeps happening, tell the operator."],
};

const $ = (id) => document.getElementById(id);

export class View {
  constructor() {
    this.start = $("start");
    this.stop = $("stop");
    this.compose = $("compose");
    this.say = $("say");
    this.entries = new Map();
    this.slots = [];
  }

  setState(state) {
    const [label, hint] = STATES[state];
    document.body.dataset.state = state;
    $("state-text").textContent = label;
    $("state-hint").textContent = hint;
    const live = ![State.IDLE, State.STOPPED, State.ERROR].includes(state);
    this.start.disabled = live;
    this.stop.disabled = !live;
    // Typing works whenever audio would: the session is up and not reconnecting.
    const talking = ACTIVE_STATES.includes(state);
    this.say.disabled = !talking;
    $("send").disabled = !talking;
  }

  // Known codes get a title and an action for the user; the server's wording goes underneath as detail.
  showProblem(code, serverMessage) {
    const [title, action] = PROBLEMS[code] ?? ["Something went wrong", ""];
    $("error-title").textContent = title;
    $("error-action").textContent = action;
    $("error-detail").textContent = serverMessage ? `Details: ${serverMessage}` : "";
    $("error").dataset.code = code;
    $("error").hidden = false;
  }

  // Good news worth a line (the conversation survived a reconnect); it goes when the user speaks.
  showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
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
    entry.dataset.final = String(Boolean(final));
    if (interrupted) entry.dataset.interrupted = "true";
    entry.scrollIntoView({ block: "nearest" });
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
    entry.scrollIntoView({ block: "nearest" });
  }

  // Cut short by the user: whatever text streamed so far is all the reply there will be.
  interrupted(item) {
    const entry = this.entries.get(item);
    if (!entry) return;
    entry.dataset.interrupted = "true";
    entry.dataset.final = "true";
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
