// Assistant audio: 24 kHz PCM16 (base64) → context rate, through a preallocated ring, counting what
// was really rendered per assistant item so the server can truncate the model's memory to what was heard.
import { MAX_FRAME_BYTES } from "./contract.js";
import { decodeBase64, pcm16ToFloat, Resampler, RingBuffer, WIRE_RATE } from "./dsp.js";

const MAX_DELTA_BYTES = MAX_FRAME_BYTES; // a delta's audio is smaller than the frame that carries it
const MAX_SEGMENTS = 64;
const REPORT_FRAMES = 1024; // progress to the page about every 20 ms while playing

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const seconds = (options.processorOptions && options.processorOptions.bufferSeconds) || 120;
    this.ring = new RingBuffer(Math.ceil(seconds * sampleRate));
    this.resampler = new Resampler(WIRE_RATE, sampleRate);
    this.bytes = new Uint8Array(MAX_DELTA_BYTES);
    this.wire = new Float32Array(MAX_DELTA_BYTES / 2);
    this.resampled = new Float32Array(this.resampler.maxOutput(this.wire.length));
    // Which item each stretch of the ring belongs to: a fixed circular queue of [id, end position].
    this.segIds = new Array(MAX_SEGMENTS).fill(null);
    this.segEnds = new Float64Array(MAX_SEGMENTS);
    this.segHead = 0;
    this.segCount = 0;
    this.playingId = null;
    this.playedFrames = 0;
    this.totalFrames = 0;
    this.sinceReport = 0;
    this.clearRequested = false;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (msg.type === "audio") this.enqueue(msg.item, msg.data);
    else if (msg.type === "clear") this.clearRequested = true;
  }

  enqueue(id, base64) {
    const byteCount = decodeBase64(base64, this.bytes);
    if (byteCount <= 0) return;
    const samples = pcm16ToFloat(this.bytes, byteCount, this.wire);
    const frames = this.resampler.process(this.wire, samples, this.resampled);
    const last = (this.segHead + this.segCount - 1) % MAX_SEGMENTS;
    if (this.segCount > 0 && this.segIds[last] === id && this.segEnds[last] === this.ring.writePos) {
      this.ring.write(this.resampled, frames);
      this.segEnds[last] = this.ring.writePos;
      return;
    }
    if (this.ring.available === 0) this.ring.boundary();
    if (this.segCount === MAX_SEGMENTS) this.popSegment();
    this.ring.write(this.resampled, frames);
    this.segIds[(this.segHead + this.segCount) % MAX_SEGMENTS] = id;
    this.segEnds[(this.segHead + this.segCount) % MAX_SEGMENTS] = this.ring.writePos;
    this.segCount++;
  }

  popSegment() {
    this.segIds[this.segHead] = null;
    this.segHead = (this.segHead + 1) % MAX_SEGMENTS;
    this.segCount--;
  }

  process(_inputs, outputs) {
    const channels = outputs[0];
    const out = channels[0];
    if (this.clearRequested) {
      // Silent from this very quantum on; what was queued is dropped, not paused.
      this.clearRequested = false;
      const dropped = this.ring.available; // queued and now never heard: the reply was cut, not finished
      this.ring.clear();
      this.resampler.reset();
      while (this.segCount > 0) this.popSegment();
      out.fill(0);
      this.report("cleared", { dropped: toWire(dropped) });
      this.playingId = null;
      this.playedFrames = 0;
    } else {
      this.attribute(this.ring.read(out, out.length));
    }
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    return true;
  }

  // Credits rendered frames to the items they came from.
  attribute(frames) {
    let left = frames;
    let offset = 0;
    while (left > 0 && this.segCount > 0) {
      const id = this.segIds[this.segHead];
      if (id !== this.playingId) {
        this.playingId = id;
        this.playedFrames = 0;
        this.port.postMessage({ type: "started", item: id, at: Date.now() + (offset / sampleRate) * 1000 });
      }
      const take = Math.min(left, this.segEnds[this.segHead] - (this.ring.readPos - left));
      this.playedFrames += take;
      left -= take;
      offset += take;
      if (this.ring.readPos - left >= this.segEnds[this.segHead]) this.popSegment();
    }
    this.totalFrames += frames;
    this.sinceReport += frames;
    const drained = frames > 0 && this.ring.available === 0;
    if (this.sinceReport >= REPORT_FRAMES || drained) this.report("progress");
  }

  report(type, extra = {}) {
    this.sinceReport = 0;
    this.port.postMessage({
      type,
      item: this.playingId,
      played: toWire(this.playedFrames),
      total: toWire(this.totalFrames),
      queued: toWire(this.ring.available),
      underruns: this.ring.underruns,
      overruns: toWire(this.ring.overruns),
      at: Date.now(),
      ...extra,
    });
  }
}

// Context-rate frames → 24 kHz samples, rounded down so a report never claims more than was heard.
const toWire = (frames) => Math.floor((frames * WIRE_RATE) / sampleRate);

registerProcessor("voicebridge-playback", PlaybackProcessor);
