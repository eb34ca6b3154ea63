/**
 * The learner WebSocket protocol (docs/protocol.md) as types. Positions are integer
 * milliseconds of lesson time, rates integer per-mille (1000 = 1.0×).
 */

/** A played range `[from_ms, to_ms]` (the xAPI played-segments, as numbers). */
export type Segment = readonly [number, number];

/** What a client may send; `seq` is added by the outbox. */
export type ClientBody =
  | { readonly type: 'initialized'; readonly duration_ms?: number }
  | { readonly type: 'played'; readonly position_ms: number }
  | { readonly type: 'paused'; readonly position_ms: number }
  | { readonly type: 'seeked'; readonly from_ms: number; readonly to_ms: number }
  | { readonly type: 'rate_changed'; readonly position_ms: number; readonly rate_permille: number }
  | {
      readonly type: 'heartbeat';
      readonly position_ms: number;
      readonly rate_permille: number;
      readonly paused: boolean;
      readonly visible: boolean;
      readonly focused: boolean;
      readonly played?: readonly Segment[];
    }
  | { readonly type: 'visibility_changed'; readonly visible: boolean; readonly position_ms: number }
  | { readonly type: 'focus_changed'; readonly focused: boolean; readonly position_ms: number }
  | { readonly type: 'challenge_answered'; readonly nonce: string; readonly answer: string }
  | { readonly type: 'signal'; readonly name: string; readonly detail: string }
  | { readonly type: 'terminated'; readonly reason: 'ended'; readonly position_ms?: number };

export type ClientType = ClientBody['type'];

/** A numbered client message as it goes on the wire. */
export type ClientFrame = ClientBody & { readonly seq: number };

/** `liveness` is the active challenge the SDK itself asks for at session start; it may come
 * back in `welcome.outstanding` after a reconnect (its `choices` are the pose steps). */
export const CHALLENGE_KINDS = ['popup', 'snapshot', 'face_recheck', 'liveness'] as const;
export type ChallengeKind = (typeof CHALLENGE_KINDS)[number];

export interface Challenge {
  readonly nonce: string;
  readonly kind: ChallengeKind;
  /** Server time (ms) of the deadline. */
  readonly deadline: number;
  readonly deadline_in_ms: number;
  readonly choices?: readonly string[];
  readonly prompt: string;
}

export interface Welcome {
  readonly type: 'welcome';
  readonly session_id: string;
  readonly last_seq: number;
  readonly server_time: number;
  readonly time_scale: number;
  readonly heartbeat_interval_ms: number;
  readonly lesson_duration_ms: number;
  readonly outstanding: readonly Challenge[];
}

export interface Credit {
  readonly type: 'credit';
  readonly credited_ms: number;
  readonly provisional_ms: number;
  readonly lesson_coverage_ms: number;
  readonly lesson_complete: boolean;
}

export interface Warning {
  readonly type: 'warning';
  readonly rule: string;
  readonly code: string;
  readonly message: string;
}

export type ServerMsg =
  | Welcome
  | { readonly type: 'ack'; readonly seq: number; readonly duplicate: boolean }
  | { readonly type: 'gap'; readonly expected: number; readonly got: number }
  | ({ readonly type: 'challenge' } & Challenge)
  | Credit
  | Warning
  | { readonly type: 'error'; readonly seq: number; readonly code: string; readonly detail: string }
  | { readonly type: 'token'; readonly token: string; readonly expires_at: number }
  | { readonly type: 'ended'; readonly reason: string };

const SERVER_TYPES = ['welcome', 'ack', 'gap', 'challenge', 'credit', 'warning', 'error', 'token', 'ended'] as const;

/** Parses one server frame; `undefined` for anything that is not a known server message. */
export function parseServerMsg(text: string): ServerMsg | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const t = (v as { type?: unknown }).type;
  return (SERVER_TYPES as readonly unknown[]).includes(t) ? (v as ServerMsg) : undefined;
}

/** WebSocket close codes of the protocol. */
export const CLOSE = {
  normal: 1000,
  tooBig: 1009,
  restarting: 1012,
  malformed: 4400,
  replaced: 4409,
  ended: 4410,
  backpressure: 4503,
} as const;

/** What a close code means for the client: reconnect, or stop for good. */
export type CloseAction = 'reconnect' | 'ended' | 'replaced' | 'fatal' | 'stop';

export function closeAction(code: number, byUs: boolean): CloseAction {
  if (byUs) return 'stop';
  switch (code) {
    case CLOSE.ended:
      return 'ended';
    case CLOSE.replaced:
      return 'replaced';
    case CLOSE.malformed:
    case CLOSE.tooBig:
      // Resending the same message would be refused the same way.
      return 'fatal';
    default:
      return 'reconnect';
  }
}
