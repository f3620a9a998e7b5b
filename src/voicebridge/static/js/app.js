// The page: one voice session over /ws, driven by the Start/Stop buttons.
// Audio never touches the main thread sample by sample: the worklets exchange base64 with it.
import { AudioEngine, AudioUnsupported } from "./audio.js";
import { WIRE_RATE } from "./dsp.js";
import { backoffDelay, base64ByteLength, median } from "./bookkeeping.js";
import { View } from "./ui.js";

const SENDING = new Set(["ready", "listening", "processing", "speaking"]);
// Errors after which the server ends the session: reconnecting would only repeat them.
const FATAL = new Set(["upstream_auth", "upstream_unavailable", "upstream_timeout", "upstream_lost", "too_many_sessions", "internal"]);
const MAX_RECONNECTS = 6; // about 30 s of backoff, the same window the server gives its upstream
const VOICE_LEVEL = 0.01; // chunk RMS (about -40 dBFS): above a quiet room, below soft speech
const REPORT_MS = 250;
const MAX_REPORTS = 100;

const params = new URLSearchParams(location.search);
const on = (name) => params.get(name) !== "0";
const constraints = { echoCancellation: on("ec"), noiseSuppression: on("ns"), autoGainControl: on("agc") };

const view = new View();
const stats = {};
const turns = [];
const reports = []; // playback messages sent (with why), newest last: what the server was told was heard
let state = "idle";
let audio = null;
let ws = null;
let run = 0; // bumps on Start and Stop so late callbacks from an older run are ignored
let stopping = false;
let terminal = false; // the server ended the session: do not reconnect unless it asks (1012)
let attempt = 0;
let retryTimer = null;
let items = new Map(); // assistant item id → { receivedAt, latencyMs, latencySent, reported }
let muted = new Set(); // items flushed by audio.clear: late deltas of them must stay silent
let receiving = null; // the item whose audio arrived last
let progress = null; // the playback worklet's latest report
let lastVoiceAt = null;
let clearAt = null;
let flushing = []; // items flushed by audio.clear whose "what was heard" report is still owed

function resetRun() {
  Object.assign(stats, {
    samplesCaptured: 0, samplesSent: 0, samplesReceived: 0, samplesPlayed: 0, samplesQueued: 0, clears: 0, underruns: 0, overruns: 0,
    chunkMs: null, uplinkMs: null, socketBufferedBytes: 0, lastTurn: null,
    medianResponseMs: null, medianInterruptMs: null,
  });
  turns.length = 0;
  reports.length = 0;
  items = new Map();
  muted = new Set();
  flushing = [];
  receiving = progress = lastVoiceAt = clearAt = null;
  attempt = 0;
  stopping = terminal = false;
}

function setState(next) {
  state = next;
  view.setState(next);
}

function send(message) {
  if (ws?.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(message));
  return true;
}

function start() {
  if (audio || SENDING.has(state) || state === "connecting" || state === "reconnecting") return;
  const mine = ++run;
  resetRun();
  view.clearProblem();
  view.clearTranscript();
  view.latency(turns);
  setState("connecting");
  AudioEngine.open(constraints, { onChunk, onPlayback }).then(
    (engine) => {
      if (mine !== run) return engine.close();
      audio = engine;
      connect();
    },
    (err) => {
      if (mine !== run) return;
      const code = problemOf(err);
      // The browser's own wording ("Permission denied") adds nothing to ours for the known cases.
      fail(code, code === "internal" ? err.message : undefined);
    },
  );
}

function problemOf(err) {
  if (err instanceof AudioUnsupported) return "unsupported";
  return { NotAllowedError: "mic_denied", SecurityError: "mic_denied", NotFoundError: "mic_absent",
    OverconstrainedError: "mic_absent", NotReadableError: "mic_busy", AbortError: "mic_busy" }[err.name] ?? "internal";
}

function fail(code, detail) {
  terminal = true;
  clearTimeout(retryTimer);
  ws?.close(1000);
  release();
  view.showProblem(code, detail);
  setState("error");
}

function release() {
  audio?.close();
  audio = null;
  progress = null;
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`);
  ws = socket;
  socket.onopen = () => send({ type: "session.start" });
  socket.onmessage = (event) => {
    if (socket !== ws) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return console.warn("voicebridge: ignoring a frame that is not JSON");
    }
    onServer(message);
  };
  socket.onclose = (event) => socket === ws && onClose(event);
}

function onClose(event) {
  ws = null;
  audio?.clear(); // the upstream session that queued this audio is gone
  progress = null;
  if (stopping) return finishStop();
  if (terminal && event.code !== 1012) return release();
  if (attempt >= MAX_RECONNECTS) return fail("unreachable");
  // 1012 is the server draining for a deploy: a fresh session on another instance is expected to work.
  terminal = false;
  setState("reconnecting");
  retryTimer = setTimeout(connect, backoffDelay(attempt++));
}

function stop() {
  if (state === "idle" || state === "stopped" || state === "error") return;
  stopping = true;
  clearTimeout(retryTimer);
  if (send({ type: "session.stop" })) {
    // The server confirms with state "stopped"; close anyway if it does not answer promptly.
    const socket = ws;
    setTimeout(() => socket.readyState !== WebSocket.CLOSED && socket.close(1000), 1500);
  } else {
    ws?.close(1000);
    finishStop();
  }
}

function finishStop() {
  run++;
  ws = null;
  stopping = false;
  release();
  setState("stopped");
}

function onServer(message) {
  switch (message.type) {
    case "state":
      return onState(message.state);
    case "audio":
      return onAudio(message);
    case "audio.clear":
      return onClear();
    case "transcript":
      return view.transcript(message);
    case "error":
      if (FATAL.has(message.code)) terminal = true;
      return view.showProblem(message.code, message.message);
  }
}

function onState(next) {
  if (stopping) {
    if (next === "stopped") ws.close(1000, "session stopped");
    return;
  }
  if (next === "stopped") {
    terminal = true;
    view.showProblem("ended_by_server");
  } else if (next === "error") {
    terminal = true;
    if (document.getElementById("error").hidden) view.showProblem("internal");
  } else if (next === "ready" && attempt > 0) {
    attempt = 0;
    view.clearProblem();
  }
  if (next === "listening" && state !== "listening") view.expectUser();
  setState(next);
  if (terminal) {
    ws.close(1000);
    release();
  }
}

function onAudio({ item_id: item, data }) {
  if (!audio || muted.has(item)) return;
  if (!items.has(item)) items.set(item, { receivedAt: Date.now(), latencyMs: null, latencySent: false, reported: 0 });
  receiving = item;
  stats.samplesReceived += base64ByteLength(data) / 2;
  audio.play(item, data);
}

function onClear() {
  clearAt = Date.now();
  stats.clears++;
  if (receiving) {
    muted.add(receiving);
    view.interrupted(receiving);
    flushing.push(receiving);
  }
  audio?.clear();
}

function onChunk({ data, samples, level, at }) {
  stats.samplesCaptured += samples;
  stats.chunkMs = (samples / WIRE_RATE) * 1000;
  if (level > VOICE_LEVEL) lastVoiceAt = at;
  if (!SENDING.has(state) || !send({ type: "audio", data })) return;
  stats.samplesSent += samples;
  stats.uplinkMs = Date.now() - at;
  stats.socketBufferedBytes = ws.bufferedAmount;
}

function onPlayback(message) {
  if (message.type === "started") return onStarted(message);
  stats.samplesPlayed = message.total;
  stats.samplesQueued = message.queued;
  stats.underruns = message.underruns;
  stats.overruns = message.overruns;
  progress = message;
  if (message.type === "cleared") {
    // The server truncates the interrupted reply at this report, so it is owed after every clear, even
    // when the count equals the last periodic report; an item still queued behind another was not heard.
    // (Two clears within one render quantum come back as one "cleared".)
    for (const item of flushing) report(item, item === message.item ? message.played : 0, "clear", true);
    flushing = [];
    const turn = message.item && turns.findLast((t) => t.item === message.item);
    if (turn && clearAt) turn.interruptMs = message.at - clearAt;
    updateLatency();
  }
}

function onStarted({ item, at }) {
  const info = items.get(item);
  if (!info) return;
  info.latencyMs = at - info.receivedAt;
  const heardAt = at + (audio?.outputLatencyMs ?? 0);
  turns.push({
    item,
    playoutMs: info.latencyMs,
    responseMs: lastVoiceAt && lastVoiceAt < heardAt ? heardAt - lastVoiceAt : null,
    interruptMs: null,
  });
  updateLatency();
}

function updateLatency() {
  stats.lastTurn = turns.at(-1) ?? null;
  stats.medianResponseMs = median(turns.map((t) => t.responseMs).filter((v) => v != null));
  stats.medianInterruptMs = median(turns.map((t) => t.interruptMs).filter((v) => v != null));
  view.latency(turns);
}

// Tells the server how much of an item was really heard (it truncates the model's memory to that).
// Periodic reports are skipped when nothing changed; the report after a flush never is.
function report(item, played, cause, flushed = false) {
  const info = items.get(item);
  if (!info || (!flushed && played === info.reported)) return;
  const message = { type: "playback", item_id: item, played_ms: Math.floor((played * 1000) / WIRE_RATE) };
  if (flushed) message.cleared = true;
  if (info.latencyMs != null && !info.latencySent) message.latency_ms = Math.round(info.latencyMs);
  if (!SENDING.has(state) || !send(message)) return;
  info.reported = played;
  info.latencySent ||= message.latency_ms != null;
  reports.push({ ...message, cause });
  if (reports.length > MAX_REPORTS) reports.shift();
}

setInterval(() => progress?.item && report(progress.item, progress.played, "periodic"), REPORT_MS);

view.start.addEventListener("click", start);
view.stop.addEventListener("click", stop);
setState("idle");

window.voicebridge = {
  stats,
  turns,
  reports,
  get state() {
    return state;
  },
  start,
  stop,
};
