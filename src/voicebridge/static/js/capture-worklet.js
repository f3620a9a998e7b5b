// Microphone → 24 kHz PCM16 in 20 ms chunks, base64-encoded here so the main thread only sends.
import { CHUNK_SAMPLES, encodeBase64, floatToPcm16, Resampler, WIRE_RATE } from "./dsp.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the context's real rate (44.1 kHz in Chromium here, often 48 kHz elsewhere).
    this.resampler = new Resampler(sampleRate, WIRE_RATE);
    this.scratch = new Float32Array(this.resampler.maxOutput(128));
    this.chunk = new Float32Array(CHUNK_SAMPLES);
    this.fill = 0;
    this.bytes = new Uint8Array(CHUNK_SAMPLES * 2);
    this.codes = new Uint8Array(Math.ceil(this.bytes.length / 3) * 4);
  }

  process(inputs) {
    // The node is configured for one explicit channel, so the browser has already mixed to mono.
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const produced = this.resampler.process(input, input.length, this.scratch);
    for (let i = 0; i < produced; i++) {
      this.chunk[this.fill++] = this.scratch[i];
      if (this.fill === CHUNK_SAMPLES) this.emit();
    }
    return true;
  }

  emit() {
    let energy = 0;
    for (let i = 0; i < CHUNK_SAMPLES; i++) energy += this.chunk[i] * this.chunk[i];
    floatToPcm16(this.chunk, CHUNK_SAMPLES, this.bytes);
    this.port.postMessage({
      data: encodeBase64(this.bytes, this.bytes.length, this.codes),
      samples: CHUNK_SAMPLES,
      level: Math.sqrt(energy / CHUNK_SAMPLES),
      // Date is the one clock both this scope and the page have (no `performance` in worklets).
      at: Date.now(),
    });
    this.fill = 0;
  }
}

registerProcessor("voicebridge-capture", CaptureProcessor);
