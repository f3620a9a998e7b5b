// The page: one voice session over /ws, driven by the Start/Stop buttons.
// Audio never touches the main thread sample by sample: the worklets exchange base64 with it.
import { Approvals } from "./approval.js";
import { AudioEngine, AudioUnsupported } from "./audio.js";
import { backoffDelay, base64ByteLength, median, reconnectWithin, restartDelay } from "./bookkeeping.js";
import { ACTIVE_STATES, ClientType, CloseCode, ErrorCode, FATAL_ERRORS, ServerType, State } from "./contract.js";
import { Conversation } from "./conversation.js";
import { WIRE_RATE } from "./dsp.js";
import { SpokenWords } from "./spoken.js";
import { PageProblem, UPSTREAM_BUSY, View, noticeWords, warningWords } from "./ui.js";
import { t } from "./words.js";

const SENDING = new Set(ACTIVE_STATES);
// Errors after which the server ends the session: reconnecting would only repeat them.
const FATAL = new Set(FATAL_ERRORS);
const MAX_RECONNECTS = 6; // about 30 s of backoff, the same window the server gives its upstream
const VOICE_LEVEL = 0.01; // chunk RMS (about -40 dBFS): above a quiet room, below soft speech
const REPORT_MS = 250;
const MAX_REPORTS = 100;
const NORMAL_CLOSURE = 1000;

const params = new URLSearchParams(location.search);
const on = (name) => params.get(name) !== "0";
const constraints = { echoCancellation: on("ec"), noiseSuppression: on("ns"), autoGainControl: on("agc") };

const view = new View();
const spoken = new SpokenWords(); // the word being played, highlighted (Azure voices' word timings)
// MCP tool calls that need the person's approval (approval.js); answered on the current run's socket.
const approvals = new Approvals((message) => run?.send(message) ?? false);
// What was said survives reloads, deploys and lost sockets (issue 12); only Stop forgets it.
const conversation = new Conversation(window.sessionStorage);

function problemOf(err) {
  if (err instanceof AudioUnsupported) return PageProblem.UNSUPPORTED;
  return { NotAllowedError: PageProblem.MIC_DENIED, SecurityError: PageProblem.MIC_DENIED,
    NotFoundError: PageProblem.MIC_ABSENT, OverconstrainedError: PageProblem.MIC_ABSENT,
    NotReadableError: PageProblem.MIC_BUSY, AbortError: PageProblem.MIC_BUSY }[err.name] ?? PageProblem.AUDIO_FAILED;
}

// One press of Start until Stop or the next Start: it owns everything that session needs. Once ended it
// is dead, and a callback arriving late (a microphone grant, a socket event, a timer) finds it so.
class Run {
  // `microphone`: false for a typed conversation (no microphone, or the person chose so): replies still
  // play if the browser can.
  constructor({ microphone = true } = {}) {
    this.alive = true;
    this.microphone = microphone;
    this.state = State.IDLE;
    this.stats = {
      samplesCaptured: 0, samplesSent: 0, samplesReceived: 0, samplesPlayed: 0, samplesQueued: 0, clears: 0, underruns: 0, overruns: 0,
      chunkMs: null, uplinkMs: null, socketBufferedBytes: 0, lastTurn: null,
      medianResponseMs: null, medianInterruptMs: null,
    };
    this.turns = [];
    this.reports = []; // playback messages sent (with why), newest last: what the server was told was heard
    this.audio = null;
    this.ws = null;
    this.stopping = false;
    this.terminal = false; // the server ended the session: do not reconnect unless it asks (1012)
    this.restartWithin = 0; // seconds a drain's `reconnecting` spreads the reconnect over (issue 23)
    this.attempt = 0;
    this.retryTimer = null;
    this.token = null; // the server's resume token: a new socket may take this session over with it
    this.resuming = false; // the next socket resumes (after an unexpected close) rather than starts
    this.recovering = false; // the next ready follows a reconnect: say the conversation was kept
    this.items = new Map(); // assistant item id → { receivedAt, latencyMs, latencySent, reported }
    this.muted = new Set(); // items flushed by audio.clear: late deltas of them must stay silent
    this.receiving = null; // the item whose audio arrived last
    this.progress = null; // the playback worklet's latest report
    this.lastVoiceAt = null;
    // What the next reply answers: speech (measured from its last loud chunk) or a typed message
    // (measured from its send), whichever came last.
    this.turnBy = null;
    this.typedAt = null;
    this.clearAt = null;
    this.flushing = []; // items flushed by audio.clear whose "what was heard" report is still owed
    this.reportTimer = setInterval(() => this.progress?.item && this.report(this.progress.item, this.progress.played, "periodic"), REPORT_MS);
  }

  // Still starting, talking or reconnecting: a second Start waits for Stop.
  get busy() {
    return Boolean(this.audio) || SENDING.has(this.state) || this.state === State.CONNECTING || this.state === State.RECONNECTING;
  }

  end() {
    this.alive = false;
    approvals.clear();
    clearInterval(this.reportTimer);
    clearTimeout(this.retryTimer);
  }

  setState(next) {
    this.state = next;
    view.setState(next);
  }

  send(message) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Called synchronously from the click: the AudioContext must be created inside the user gesture.
  begin() {
    view.clearProblem();
    view.clearNotice();
    view.typing = !this.microphone;
    if (conversation.empty) view.clearTranscript();
    else this.recovering = true; // a reload, or Start after a failure: the conversation goes on
    view.latency(this.turns);
    this.setState(State.CONNECTING);
    const handlers = { onChunk: (m) => this.onChunk(m), onPlayback: (m) => this.onPlayback(m) };
    AudioEngine.open(constraints, handlers, { microphone: this.microphone }).then(
      (engine) => {
        if (!this.alive) return engine.close();
        this.audio = engine;
        this.connect();
      },
      (err) => {
        if (!this.alive) return;
        if (!this.microphone) {
          // No audio at all in this browser: the typed conversation still works, silently.
          console.info("voicebridge: replies will not play here:", err);
          return this.connect();
        }
        const code = problemOf(err);
        // The browser's own wording goes to the console; the page says what it means and what to do.
        console.warn(`voicebridge: the microphone could not be opened (${code}):`, err);
        this.fail(code, { started: false });
      },
    );
  }

  // `started`: false when nothing was opened yet (the microphone was refused): the page says it could
  // not start, not that something stopped.
  fail(code, { started = true } = {}) {
    this.terminal = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(NORMAL_CLOSURE);
    this.release();
    this.interruptOpen();
    view.showProblem(code);
    this.state = State.ERROR;
    view.setState(State.ERROR, { started });
  }

  // A connection that went away cuts every reply still arriving: mark it, on the page and in what is
  // kept, as a user's interruption would.
  interruptOpen() {
    conversation.interruptOpen();
    view.interruptOpen();
  }

  release() {
    this.audio?.close();
    this.audio = null;
    this.progress = null;
  }

  connect() {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`);
    this.ws = socket;
    socket.onopen = () => this.hello();
    const mine = () => this.alive && socket === this.ws; // a socket of an ended run, or a replaced one, is ignored
    socket.onmessage = (event) => {
      if (!mine()) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return console.warn("voicebridge: ignoring a frame that is not JSON");
      }
      this.onServer(message);
    };
    socket.onclose = (event) => mine() && this.onClose(event);
  }

  // The first word on a socket: take the old session over if the server may still hold it, else start
  // one that is told the conversation so far.
  hello() {
    if (this.resuming && this.token) return this.send({ type: ClientType.SESSION_RESUME, resume: this.token });
    this.startWithHistory();
  }

  startWithHistory() {
    this.resuming = false;
    const history = conversation.history();
    this.send(history.length ? { type: ClientType.SESSION_START, history } : { type: ClientType.SESSION_START });
  }

  onClose(event) {
    this.ws = null;
    this.audio?.clear(); // what was queued is not heard; the server truncates the reply at the last report
    this.progress = null;
    this.interruptOpen();
    if (this.stopping) return this.finishStop();
    if (this.terminal && event.code !== CloseCode.SERVICE_RESTART) return this.release();
    if (this.attempt >= MAX_RECONNECTS) return this.fail(PageProblem.UNREACHABLE);
    // A deploy or scale-in (1012) closed the upstream too: a fresh session, told the conversation, on
    // another instance. Any other unexpected close: the server keeps the session a while for a resume.
    this.resuming = event.code !== CloseCode.SERVICE_RESTART && Boolean(this.token);
    if (!this.resuming) this.token = null;
    this.terminal = false;
    this.recovering = true;
    this.setState(State.RECONNECTING);
    // A drain spreads the instance's tabs over the time the voice service's quota needs for them all.
    const within = event.code === CloseCode.SERVICE_RESTART ? this.restartWithin || reconnectWithin(event.reason) : 0;
    this.restartWithin = 0;
    const delay = within > 0 ? restartDelay(within) : backoffDelay(this.attempt);
    this.attempt++;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  stop() {
    if (this.state === State.IDLE || this.state === State.STOPPED || this.state === State.ERROR) return;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    if (this.send({ type: ClientType.SESSION_STOP })) {
      // The server confirms with state "stopped"; close anyway if it does not answer promptly.
      const socket = this.ws;
      setTimeout(() => socket.readyState !== WebSocket.CLOSED && socket.close(NORMAL_CLOSURE), 1500);
    } else {
      this.ws?.close(NORMAL_CLOSURE);
      this.finishStop();
    }
  }

  finishStop() {
    this.end();
    this.ws = null;
    this.stopping = false;
    this.release();
    this.setState(State.STOPPED);
  }

  onServer(message) {
    switch (message.type) {
      case ServerType.STATE:
        if (message.state === State.RECONNECTING) this.restartWithin = Number(message.reconnect_within_s) || 0;
        return this.onState(message.state);
      case ServerType.AUDIO:
        return this.onAudio(message);
      case ServerType.AUDIO_CLEAR:
        return this.onClear();
      case ServerType.TRANSCRIPT:
        conversation.add(message); // every fragment: a reply keeps the place where it began
        return view.transcript(message);
      case ServerType.TOOL:
        return view.tool(message);
      case ServerType.WORD:
        return spoken.word(message);
      case ServerType.APPROVAL:
        return approvals.request(message);
      case ServerType.APPROVAL_DONE:
        return approvals.settled(message);
      case ServerType.SESSION:
        this.token = message.resume;
        return;
      case ServerType.WARNING:
        return this.onWarning(message);
      case ServerType.ERROR:
        return this.onError(message);
    }
  }

  onWarning({ code, seconds, message }) {
    // The upstream has no free line yet: how long the server expects, while the session keeps connecting.
    if (code === UPSTREAM_BUSY && (this.state === State.CONNECTING || this.state === State.RECONNECTING)) return view.waiting(seconds);
    // The page's words for a warning it knows (the time limit's); the server's, written for a person, else.
    const text = warningWords(code, seconds, message);
    if (text) view.showNotice(text, { kind: "warning", code });
  }

  onError({ code, message, reason }) {
    // The server's wording may name hosts and credentials: it is for the log, the page says its own.
    console.warn(`voicebridge: the server reported ${code}: ${message ?? ""}`);
    if (code === ErrorCode.RESUME_EXPIRED) {
      // Another instance or worker, or too late: start afresh with the conversation on this socket.
      this.token = null;
      approvals.clear(); // they belonged to the session that is gone
      return this.startWithHistory();
    }
    if (FATAL.has(code)) {
      this.terminal = true;
      return view.showProblem(code);
    }
    // The session goes on (the states that follow say so); a code this page does not know yet is told
    // in the server's words, which is all the page has.
    const text = noticeWords(code, reason, message);
    if (text) view.showNotice(text, { kind: "warning", code });
  }

  onState(next) {
    if (this.stopping) {
      if (next === State.STOPPED) this.ws.close(NORMAL_CLOSURE, "session stopped");
      return;
    }
    if (next === State.STOPPED) {
      this.terminal = true;
      // A limit says why in its error, just before: keep that, not the generic line.
      if (!view.problemShown) view.showProblem(PageProblem.ENDED_BY_SERVER);
    } else if (next === State.ERROR) {
      this.terminal = true;
      if (!view.problemShown) view.showProblem(ErrorCode.INTERNAL);
    } else if (next === State.READY && this.attempt > 0) {
      this.attempt = 0;
      view.clearProblem();
    }
    if (next === State.RECONNECTING) this.recovering = true; // the server is restoring its upstream
    if (next === State.READY && this.recovering) {
      this.recovering = false;
      if (!conversation.empty) view.showNotice(t("notice.remembered"));
    }
    if (next === State.LISTENING && this.state !== State.LISTENING) {
      view.clearNotice();
      view.expectUser();
      conversation.expectUser();
      this.turnBy = "voice";
    }
    const first = next === State.READY && !SENDING.has(this.state);
    this.setState(next);
    // Without a microphone the text box is where the person goes next.
    if (first && !this.microphone) view.say.focus();
    if (this.terminal) {
      this.interruptOpen();
      this.ws.close(NORMAL_CLOSURE);
      this.release();
    }
  }

  onAudio({ item_id: item, data }) {
    if (!this.audio || this.muted.has(item)) return;
    if (!this.items.has(item)) this.items.set(item, { receivedAt: Date.now(), latencyMs: null, latencySent: false, reported: 0 });
    this.receiving = item;
    this.stats.samplesReceived += base64ByteLength(data) / 2;
    this.audio.play(item, data);
  }

  onClear() {
    this.clearAt = Date.now();
    this.stats.clears++;
    if (this.receiving) {
      this.muted.add(this.receiving);
      this.flushing.push(this.receiving);
    }
    this.audio?.clear();
  }

  onChunk({ data, samples, level, at }) {
    const stats = this.stats;
    stats.samplesCaptured += samples;
    stats.chunkMs = (samples / WIRE_RATE) * 1000;
    if (level > VOICE_LEVEL) this.lastVoiceAt = at;
    if (!SENDING.has(this.state) || !this.send({ type: ClientType.AUDIO, data })) return;
    stats.samplesSent += samples;
    stats.uplinkMs = Date.now() - at;
    stats.socketBufferedBytes = this.ws.bufferedAmount;
  }

  onPlayback(message) {
    if (message.type === "started") return this.onStarted(message);
    Object.assign(this.stats, {
      samplesPlayed: message.total, samplesQueued: message.queued, underruns: message.underruns, overruns: message.overruns,
    });
    this.progress = message;
    // Nothing queued: the reply has played out (or was flushed), no word is being spoken.
    if (message.item && message.type === "progress" && message.queued > 0) {
      spoken.played(message.item, (message.played * 1000) / WIRE_RATE);
    } else spoken.clear();
    if (message.type === "cleared") {
      // The server truncates the interrupted reply at this report, so it is owed after every clear, even
      // when the count equals the last periodic report; an item still queued behind another was not heard.
      // (Two clears within one render quantum come back as one "cleared".)
      for (const item of this.flushing) {
        this.report(item, item === message.item ? message.played : 0, "clear", true);
        // Cut short only if something of it was not heard, or more of it was still to come: a clear
        // that arrives after a reply played out (the server cannot tell exactly) changes nothing.
        if (message.dropped > 0 || !conversation.finished(item)) {
          view.interrupted(item);
          conversation.interrupt(item);
        }
      }
      this.flushing = [];
      const turn = message.item && this.turns.findLast((t) => t.item === message.item);
      if (turn && this.clearAt) turn.interruptMs = message.at - this.clearAt;
      this.updateLatency();
    }
  }

  onStarted({ item, at }) {
    const info = this.items.get(item);
    if (!info) return;
    info.latencyMs = at - info.receivedAt;
    const heardAt = at + (this.audio?.outputLatencyMs ?? 0);
    // A typed turn is measured from its send; a spoken one from the end of the speech.
    const typed = this.turnBy === "text";
    const since = typed ? this.typedAt : this.lastVoiceAt;
    this.turnBy = null;
    this.turns.push({
      item,
      typed,
      heardAt,
      playoutMs: info.latencyMs,
      responseMs: since && since < heardAt ? heardAt - since : null,
      interruptMs: null,
    });
    this.updateLatency();
  }

  updateLatency() {
    const turns = this.turns;
    this.stats.lastTurn = turns.at(-1) ?? null;
    this.stats.medianResponseMs = median(turns.map((t) => t.responseMs).filter((v) => v != null));
    this.stats.medianInterruptMs = median(turns.map((t) => t.interruptMs).filter((v) => v != null));
    view.latency(turns);
  }

  // Tells the server how much of an item was really heard (it truncates the model's memory to that).
  // Periodic reports are skipped when nothing changed; the report after a flush never is.
  report(item, played, cause, flushed = false) {
    const info = this.items.get(item);
    if (!info || (!flushed && played === info.reported)) return;
    const message = { type: ClientType.PLAYBACK, item_id: item, played_ms: Math.floor((played * 1000) / WIRE_RATE) };
    if (flushed) message.cleared = true;
    if (info.latencyMs != null && !info.latencySent) message.latency_ms = Math.round(info.latencyMs);
    if (!SENDING.has(this.state) || !this.send(message)) return;
    info.reported = played;
    info.latencySent ||= message.latency_ms != null;
    this.reports.push({ ...message, cause });
    if (this.reports.length > MAX_REPORTS) this.reports.shift();
  }
}

let run = null; // the current run, or the last one (ended): the page's numbers are its numbers

function start({ microphone = true } = {}) {
  if (run?.busy) return;
  run?.end();
  run = new Run({ microphone });
  run.begin();
}

function stop() {
  conversation.clear(); // Stop is the one thing that forgets the conversation
  run?.stop();
}

// A typed turn; the server echoes it back as the user's transcript, so it shows once, in order.
function say(text) {
  const trimmed = text.trim();
  if (!trimmed || !SENDING.has(run?.state)) return false;
  const sentAt = Date.now();
  if (!run.send({ type: ClientType.TEXT, text: trimmed })) return false;
  run.turnBy = "text";
  run.typedAt = sentAt;
  return true;
}

view.start.addEventListener("click", () => start());
// Offered when the microphone is the obstacle: the same session, answered in text and (if the browser
// can) in speech.
view.typeInstead.addEventListener("click", () => start({ microphone: false }));
view.stop.addEventListener("click", stop);
view.compose.addEventListener("submit", (event) => {
  event.preventDefault(); // Enter in the box submits the form
  if (say(view.say.value)) view.say.value = "";
});
view.setState(State.IDLE);
view.restore(conversation.shown); // after a reload: what was said so far, continued by the next Start
// Leaving the page (reload, tab closed): end the upstream session now rather than park it for a resume
// that cannot come; the conversation itself stays in sessionStorage.
window.addEventListener("pagehide", () => run?.send({ type: ClientType.SESSION_STOP }));

window.voicebridge = {
  get stats() {
    return run?.stats ?? {};
  },
  get turns() {
    return run?.turns ?? [];
  },
  get reports() {
    return run?.reports ?? [];
  },
  get state() {
    return run?.state ?? State.IDLE;
  },
  get conversation() {
    return conversation.shown;
  },
  start,
  stop,
  say,
};
