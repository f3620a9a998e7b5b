// The page's audio graph: microphone → capture worklet, and playback worklet → speakers.

export class AudioUnsupported extends Error {}

const moduleUrl = (name) => new URL(name, import.meta.url).href;

export class AudioEngine {
  // Must be called synchronously from the click handler: the AudioContext is created (and resumed)
  // inside the user gesture, or Safari and Chromium's autoplay policy keep it suspended.
  // `microphone: false`: playback only (a typed conversation), no capture and no permission prompt.
  static open(constraints, handlers, { microphone = true } = {}) {
    if (!window.AudioContext || !window.AudioWorkletNode || (microphone && (!window.isSecureContext || !navigator.mediaDevices))) {
      return Promise.reject(new AudioUnsupported());
    }
    // No sampleRate option: the device's native rate avoids a second, hidden resampler in the browser.
    const ctx = new AudioContext({ latencyHint: "interactive" });
    ctx.resume();
    return new AudioEngine(ctx, handlers).init(microphone ? constraints : null);
  }

  constructor(ctx, handlers) {
    this.ctx = ctx;
    this.handlers = handlers;
    this.stream = null;
  }

  // `constraints`: the microphone's, or null for playback only.
  async init(constraints) {
    try {
      if (!this.ctx.audioWorklet) throw new AudioUnsupported();
      await Promise.all([
        constraints && this.ctx.audioWorklet.addModule(moduleUrl("capture-worklet.js")),
        this.ctx.audioWorklet.addModule(moduleUrl("playback-worklet.js")),
      ]);
      if (constraints) {
        this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, ...constraints } });
        const source = this.ctx.createMediaStreamSource(this.stream);
        this.capture = new AudioWorkletNode(this.ctx, "voicebridge-capture", {
          numberOfOutputs: 1,
          outputChannelCount: [1],
          channelCount: 1,
          channelCountMode: "explicit",
        });
        this.capture.port.onmessage = (e) => this.handlers.onChunk(e.data);
        source.connect(this.capture);
        // The capture output is silent; connecting it keeps Chromium pulling the node.
        this.capture.connect(this.ctx.destination);
      }
      this.playback = new AudioWorkletNode(this.ctx, "voicebridge-playback", {
        numberOfInputs: 0,
        outputChannelCount: [1],
      });
      this.playback.port.onmessage = (e) => this.handlers.onPlayback(e.data);
      this.playback.connect(this.ctx.destination);
      return this;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  // Milliseconds between rendering a sample and the listener hearing it (0 where the browser cannot tell).
  get outputLatencyMs() {
    return ((this.ctx.outputLatency || 0) + (this.ctx.baseLatency || 0)) * 1000;
  }

  play(item, data) {
    this.playback.port.postMessage({ type: "audio", item, data });
  }

  clear() {
    this.playback?.port.postMessage({ type: "clear" });
  }

  close() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    if (this.ctx.state !== "closed") this.ctx.close();
  }
}
