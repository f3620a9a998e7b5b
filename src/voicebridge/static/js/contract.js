// The browser ↔ bridge contract (docs/protocol.md), generated from src/voicebridge/protocol.py by
// `python -m voicebridge.contract`. Do not edit: change protocol.py and generate again.

// PCM16 mono both ways; a frame over MAX_FRAME_BYTES closes the socket (CloseCode.MESSAGE_TOO_BIG).
export const SAMPLE_RATE = 24000;
export const MAX_FRAME_BYTES = 1048576;
export const MAX_TEXT_CHARS = 4000;

// session.start's `history`: at most this many items and UTF-8 bytes of text in all.
export const MAX_START_HISTORY_ITEMS = 40;
export const MAX_START_HISTORY_BYTES = 16384;

export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  READY: "ready",
  LISTENING: "listening",
  PROCESSING: "processing",
  SPEAKING: "speaking",
  RECONNECTING: "reconnecting",
  STOPPED: "stopped",
  ERROR: "error",
});

// Audio flows both ways in these states.
export const ACTIVE_STATES = Object.freeze(["ready", "listening", "processing", "speaking"]);

export const ClientType = Object.freeze({
  SESSION_START: "session.start",
  AUDIO: "audio",
  PLAYBACK: "playback",
  TEXT: "text",
  SESSION_STOP: "session.stop",
  SESSION_RESUME: "session.resume",
  APPROVAL: "approval",
});

export const ServerType = Object.freeze({
  STATE: "state",
  AUDIO: "audio",
  AUDIO_CLEAR: "audio.clear",
  TRANSCRIPT: "transcript",
  TOOL: "tool",
  ERROR: "error",
  SESSION: "session",
  WARNING: "warning",
  WORD: "word",
  APPROVAL: "approval",
  APPROVAL_DONE: "approval.done",
});

export const ToolStatus = Object.freeze({
  RUNNING: "running",
  DONE: "done",
  FAILED: "failed",
});

export const ApprovalEnd = Object.freeze({
  ANSWERED: "answered",
  TIMEOUT: "timeout",
  INTERRUPTED: "interrupted",
  ENDED: "ended",
});

export const Role = Object.freeze({
  USER: "user",
  ASSISTANT: "assistant",
});

export const ErrorCode = Object.freeze({
  BAD_JSON: "bad_json",
  BAD_MESSAGE: "bad_message",
  UNKNOWN_TYPE: "unknown_type",
  BAD_AUDIO: "bad_audio",
  NOT_STARTED: "not_started",
  UPSTREAM_AUTH: "upstream_auth",
  UPSTREAM_UNAVAILABLE: "upstream_unavailable",
  UPSTREAM_TIMEOUT: "upstream_timeout",
  UPSTREAM_LOST: "upstream_lost",
  UPSTREAM_ERROR: "upstream_error",
  UPSTREAM_REJECTED: "upstream_rejected",
  REPLY_FAILED: "reply_failed",
  SERVER_DRAINING: "server_draining",
  TOO_MANY_SESSIONS: "too_many_sessions",
  RESUME_EXPIRED: "resume_expired",
  TOO_MANY_SESSIONS_FOR_USER: "too_many_sessions_for_user",
  SESSION_TIME_LIMIT: "session_time_limit",
  SESSION_TOKEN_LIMIT: "session_token_limit",
  IDLE_TIMEOUT: "idle_timeout",
  AUDIO_RATE: "audio_rate",
  INTERNAL: "internal",
});

export const WarningCode = Object.freeze({
  SESSION_TIME_LIMIT: "session_time_limit",
  SESSION_TOKEN_LIMIT: "session_token_limit",
  UPSTREAM_BUSY: "upstream_busy",
});

// After these the server has ended (or never started) the session: retrying would only repeat them.
export const FATAL_ERRORS = Object.freeze(["upstream_auth", "upstream_unavailable", "upstream_timeout", "upstream_lost", "upstream_rejected", "too_many_sessions", "resume_expired", "too_many_sessions_for_user", "session_time_limit", "session_token_limit", "idle_timeout", "internal"]);

export const CloseCode = Object.freeze({
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
});
