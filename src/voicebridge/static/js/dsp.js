// Pure signal processing shared by the AudioWorklets and the Node tests. Nothing here allocates
// after construction, because it runs on the audio thread where a GC pause is an audible click.
import { SAMPLE_RATE } from "./contract.js";

export const WIRE_RATE = SAMPLE_RATE; // the wire's PCM16: 24 kHz mono, 16-bit little endian
export const CHUNK_SAMPLES = 480; // 20 ms at WIRE_RATE: the uplink frame the bridge forwards as is

// Windowed-sinc low-pass (Blackman window), unity gain at DC. cutoff is in cycles per sample.
export function lowPassKernel(taps, cutoff) {
  const kernel = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let k = 0; k < taps; k++) {
    const x = k - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * k) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * k) / (taps - 1));
    kernel[k] = sinc * w;
    sum += kernel[k];
  }
  for (let k = 0; k < taps; k++) kernel[k] /= sum;
  return kernel;
}

// Streaming sample-rate converter: block boundaries are invisible in the output.
// Downsampling first low-passes below the new Nyquist (otherwise sibilants fold back into the voice
// band); upsampling needs no filter before linear interpolation.
export class Resampler {
  constructor(inRate, outRate, taps = 47) {
    this.step = inRate / outRate;
    this.kernel = inRate > outRate ? lowPassKernel(taps, (0.45 * outRate) / inRate) : null;
    // Each sample is stored twice so the newest `taps` samples are always contiguous.
    this.history = this.kernel ? new Float32Array(taps * 2) : null;
    this.reset();
  }

  reset() {
    this.pos = 0;
    this.prev = 0;
    this.head = 0;
    if (this.history) this.history.fill(0);
  }

  // Upper bound of output samples for `count` input samples: size output buffers with it.
  maxOutput(count) {
    return Math.ceil(count / this.step) + 1;
  }

  process(input, count, output) {
    const step = this.step;
    let pos = this.pos;
    let prev = this.prev;
    let written = 0;
    for (let i = 0; i < count; i++) {
      const y = this.kernel ? this.filter(input[i]) : input[i];
      while (pos < 1) {
        output[written++] = prev + (y - prev) * pos;
        pos += step;
      }
      pos -= 1;
      prev = y;
    }
    this.pos = pos;
    this.prev = prev;
    return written;
  }

  filter(x) {
    const kernel = this.kernel;
    const taps = kernel.length;
    const history = this.history;
    history[this.head] = x;
    history[this.head + taps] = x;
    this.head = (this.head + 1) % taps;
    let acc = 0;
    for (let k = 0, j = this.head; k < taps; k++, j++) acc += kernel[k] * history[j];
    return acc;
  }
}

// Float [-1, 1] → PCM16 LE bytes. Written byte by byte so the result does not depend on the host's
// endianness.
export function floatToPcm16(src, count, dst) {
  for (let i = 0; i < count; i++) {
    const s = src[i] < -1 ? -1 : src[i] > 1 ? 1 : src[i];
    const v = Math.round(s < 0 ? s * 0x8000 : s * 0x7fff);
    dst[2 * i] = v & 0xff;
    dst[2 * i + 1] = (v >> 8) & 0xff;
  }
}

// PCM16 LE bytes → float [-1, 1); returns the number of samples written.
export function pcm16ToFloat(bytes, byteLength, dst) {
  const count = byteLength >> 1;
  for (let i = 0; i < count; i++) {
    const v = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    dst[i] = (v >= 0x8000 ? v - 0x10000 : v) / 0x8000;
  }
  return count;
}

// Base64 in plain JS because AudioWorkletGlobalScope has no atob/btoa; doing it in the worklets keeps
// every per-byte loop off the main thread.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENCODE = new Uint8Array(64);
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ENCODE[i]] = i;
}

// `codes` is caller-owned scratch of at least 4 * ceil(length / 3) bytes.
export function encodeBase64(bytes, length, codes) {
  let o = 0;
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    codes[o++] = ENCODE[n >> 18];
    codes[o++] = ENCODE[(n >> 12) & 63];
    codes[o++] = ENCODE[(n >> 6) & 63];
    codes[o++] = ENCODE[n & 63];
  }
  if (i < length) {
    const n = (bytes[i] << 16) | (i + 1 < length ? bytes[i + 1] << 8 : 0);
    codes[o++] = ENCODE[n >> 18];
    codes[o++] = ENCODE[(n >> 12) & 63];
    codes[o++] = i + 1 < length ? ENCODE[(n >> 6) & 63] : 61;
    codes[o++] = 61;
  }
  return String.fromCharCode.apply(null, codes.subarray(0, o));
}

// Decodes into `out`; returns the byte count, or -1 when the text is not base64 or does not fit.
export function decodeBase64(text, out) {
  let len = text.length;
  while (len > 0 && text.charCodeAt(len - 1) === 61) len--;
  const bytes = Math.floor((len * 3) / 4);
  if (bytes > out.length || len % 4 === 1) return -1;
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c] : -1;
    if (v < 0) return -1;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return o;
}

// Single-producer single-consumer float FIFO over a fixed array. Positions are absolute sample counts,
// so callers can tell which stored sample is being read.
// overruns: samples dropped because the buffer was full.
// underruns: times the reader ran dry in the middle of a stream (more of it arrived afterwards).
export class RingBuffer {
  constructor(capacity) {
    this.data = new Float32Array(capacity);
    this.capacity = capacity;
    this.readPos = 0;
    this.writePos = 0;
    this.overruns = 0;
    this.underruns = 0;
    this.flowing = false;
    this.starved = false;
  }

  get available() {
    return this.writePos - this.readPos;
  }

  write(src, count) {
    const n = Math.min(count, this.capacity - this.available);
    this.overruns += count - n;
    if (n === 0) return 0;
    const start = this.writePos % this.capacity;
    const first = Math.min(n, this.capacity - start);
    this.data.set(src.subarray(0, first), start);
    if (first < n) this.data.set(src.subarray(first, n), 0);
    this.writePos += n;
    if (this.starved) this.underruns++;
    this.starved = false;
    this.flowing = true;
    return n;
  }

  // Fills dst[0..count) and pads with silence; returns how many real samples were read.
  read(dst, count) {
    const n = Math.min(count, this.available);
    const start = this.readPos % this.capacity;
    const first = Math.min(n, this.capacity - start);
    dst.set(this.data.subarray(start, start + first), 0);
    if (first < n) dst.set(this.data.subarray(0, n - first), first);
    if (n < count) {
      dst.fill(0, n, count);
      this.starved = this.flowing;
      this.flowing = false;
    }
    this.readPos += n;
    return n;
  }

  // A new stream begins: running dry before it was the end of the previous one, not an underrun.
  boundary() {
    this.starved = false;
  }

  // Drops everything queued (barge-in).
  clear() {
    this.readPos = this.writePos;
    this.flowing = false;
    this.starved = false;
  }
}
