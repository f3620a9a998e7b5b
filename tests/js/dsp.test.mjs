// The audio path's pure parts, run by Node's built-in runner: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  decodeBase64,
  encodeBase64,
  floatToPcm16,
  pcm16ToFloat,
  Resampler,
  RingBuffer,
  WIRE_RATE,
} from "../../src/voicebridge/static/js/dsp.js";
import { backoffDelay, base64ByteLength, median } from "../../src/voicebridge/static/js/bookkeeping.js";

const sine = (freq, rate, seconds, amplitude = 0.5) =>
  Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amplitude * Math.sin((2 * Math.PI * freq * i) / rate));

// Feeds the signal in render-quantum blocks, as the worklet does, to exercise the streaming state.
function resample(signal, inRate, outRate, block = 128) {
  const r = new Resampler(inRate, outRate);
  const out = new Float32Array(r.maxOutput(signal.length) + block);
  const scratch = new Float32Array(r.maxOutput(block));
  let n = 0;
  for (let i = 0; i < signal.length; i += block) {
    const len = Math.min(block, signal.length - i);
    const got = r.process(signal.subarray(i, i + len), len, scratch);
    out.set(scratch.subarray(0, got), n);
    n += got;
  }
  return out.subarray(0, n);
}

const rms = (x) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

// Frequency by counting upward zero crossings over the steady part (skips the filter's warm-up).
function frequency(x, rate) {
  const body = x.subarray(200, x.length - 200);
  let crossings = 0;
  for (let i = 1; i < body.length; i++) if (body[i - 1] < 0 && body[i] >= 0) crossings++;
  return (crossings * rate) / body.length;
}

for (const inRate of [44100, 48000, 16000]) {
  test(`a 1 kHz sine resampled ${inRate} → 24000 keeps its frequency and level`, () => {
    const out = resample(sine(1000, inRate, 1), inRate, WIRE_RATE);
    assert.ok(Math.abs(out.length - WIRE_RATE) <= 2, `length ${out.length}`);
    assert.ok(Math.abs(frequency(out, WIRE_RATE) - 1000) < 5, `frequency ${frequency(out, WIRE_RATE)}`);
    const level = rms(out.subarray(200));
    assert.ok(Math.abs(level - 0.5 / Math.SQRT2) < 0.01, `rms ${level}`);
  });
}

test("a 24 kHz sine upsampled to 48000 keeps its frequency and level", () => {
  const out = resample(sine(440, WIRE_RATE, 1), WIRE_RATE, 48000);
  assert.ok(Math.abs(out.length - 48000) <= 2);
  assert.ok(Math.abs(frequency(out, 48000) - 440) < 3);
  assert.ok(Math.abs(rms(out.subarray(200)) - 0.5 / Math.SQRT2) < 0.01);
});

test("content above the new Nyquist is filtered instead of folding into the voice band", () => {
  // 20 kHz at 48 kHz would alias to 4 kHz at 24 kHz without the low-pass.
  const out = resample(sine(20000, 48000, 0.5), 48000, WIRE_RATE);
  assert.ok(rms(out.subarray(200)) < 0.01, `alias rms ${rms(out.subarray(200))}`);
});

test("block size does not change the resampled stream", () => {
  const signal = sine(700, 44100, 0.2);
  const a = resample(signal, 44100, WIRE_RATE, 128);
  const b = resample(signal, 44100, WIRE_RATE, 37);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
});

test("PCM16 conversion is little endian, clips, and round-trips", () => {
  const bytes = new Uint8Array(8);
  floatToPcm16(Float32Array.of(1, -1, 2, 0.5), 4, bytes);
  const view = new DataView(bytes.buffer);
  assert.deepEqual([0, 2, 4, 6].map((o) => view.getInt16(o, true)), [32767, -32768, 32767, 16384]);
  const back = new Float32Array(4);
  assert.equal(pcm16ToFloat(bytes, bytes.length, back), 4);
  assert.ok(Math.abs(back[0] - 1) < 1e-4 && back[1] === -1 && Math.abs(back[3] - 0.5) < 1e-4);
});

test("base64 matches Node's encoder for every tail length and rejects junk", () => {
  const codes = new Uint8Array(64);
  const out = new Uint8Array(64);
  for (let n = 0; n <= 12; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 13) & 0xff);
    const text = encodeBase64(bytes, n, codes);
    assert.equal(text, Buffer.from(bytes).toString("base64"));
    assert.equal(decodeBase64(text, out), n);
    assert.equal(base64ByteLength(text), n);
    assert.deepEqual(out.subarray(0, n), bytes);
  }
  assert.equal(decodeBase64("ab$d", out), -1);
  assert.equal(decodeBase64("A".repeat(400), out), -1, "must not write past the buffer");
});

test("ring buffer wraps around and returns samples in order", () => {
  const ring = new RingBuffer(8);
  const out = new Float32Array(5);
  ring.write(Float32Array.of(1, 2, 3, 4, 5, 6), 6);
  assert.equal(ring.read(out, 5), 5);
  ring.write(Float32Array.of(7, 8, 9, 10, 11), 5); // wraps past the end of the array
  assert.equal(ring.available, 6);
  const rest = new Float32Array(6);
  assert.equal(ring.read(rest, 6), 6);
  assert.deepEqual([...rest], [6, 7, 8, 9, 10, 11]);
  assert.equal(ring.overruns, 0);
  assert.equal(ring.underruns, 0);
});

test("ring buffer counts overruns as dropped samples", () => {
  const ring = new RingBuffer(4);
  assert.equal(ring.write(Float32Array.of(1, 2, 3, 4, 5, 6), 6), 4);
  assert.equal(ring.overruns, 2);
});

test("ring buffer counts an underrun when a stream runs dry and then resumes, not at its end", () => {
  const ring = new RingBuffer(16);
  const out = new Float32Array(4);
  assert.equal(ring.read(out, 4), 0, "idle before any stream");
  ring.write(Float32Array.of(1, 2), 2);
  assert.equal(ring.read(out, 4), 2);
  assert.deepEqual([...out], [1, 2, 0, 0], "the short read is padded with silence");
  assert.equal(ring.underruns, 0, "not yet known whether that was the end");
  ring.write(Float32Array.of(3), 1);
  assert.equal(ring.underruns, 1, "the stream resumed: the gap was audible");
  ring.read(out, 4);
  ring.boundary();
  ring.write(Float32Array.of(4), 1);
  assert.equal(ring.underruns, 1, "a new stream after the end of the last one is not an underrun");
  ring.clear();
  assert.equal(ring.available, 0);
});

test("median and backoff", () => {
  assert.equal(median([]), null);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(backoffDelay(0, () => 0.5), 500);
  assert.equal(backoffDelay(2, () => 0.5), 2000);
  assert.equal(backoffDelay(20, () => 0.5), 8000);
  assert.equal(backoffDelay(1, () => 0), 750);
});
