/** The SDK's configuration, with documented defaults. */

import { type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';

/** What the platform's server got from `POST /api/v1/sessions` (snake_case, as returned). */
export interface SessionInfo {
  readonly session_id: string;
  readonly learner_token: string;
  readonly ws_url: string;
  /** `face`: consent screen, camera and face check; `manual`: the non-face path. */
  readonly identity_check: 'face' | 'manual';
  readonly heartbeat_interval_ms?: number;
  readonly lesson_duration_ms?: number;
}

export interface Texts {
  readonly consentTitle: string;
  readonly consentBody: string;
  readonly consentAccept: string;
  readonly consentDecline: string;
  readonly consentDeclined: string;
  readonly cameraDenied: string;
  readonly cameraMissing: string;
  readonly cameraFailed: string;
  readonly retry: string;
  readonly faceChecking: string;
  readonly facePassed: string;
  readonly faceFailed: string;
  /** Shown before the active liveness steps. */
  readonly livenessIntro: string;
  readonly manualIdentity: string;
  readonly popupTitle: string;
  readonly popupDeadline: string;
  readonly popupMissed: string;
  readonly continueLabel: string;
  readonly otherTab: string;
  readonly movedToOtherTab: string;
  readonly replaced: string;
  readonly ended: string;
  readonly offline: string;
  readonly hidden: string;
}

export const DEFAULT_TEXTS: Texts = {
  consentTitle: '人脸信息授权 Face data consent',
  consentBody:
    'To count your study, this lesson checks that you are the enrolled learner: your camera takes a face check before the video and photos at random moments. The photos are kept as training evidence for 3 years and used for nothing else. 本课程将使用摄像头进行人脸核验并随机拍照留存，仅用于培训考核，保存3年。',
  consentAccept: '同意并继续 I agree',
  consentDecline: '不同意 I do not agree',
  consentDeclined:
    'Without face data consent this lesson cannot use the camera. Ask your training platform for the non-face check (人工核验).',
  cameraDenied:
    'The camera is blocked. Allow camera access for this site in the browser (the camera icon in the address bar), then press Retry.',
  cameraMissing: 'No camera was found. Connect a camera, then press Retry, or ask your platform for the non-face check.',
  cameraFailed: 'The camera could not be started. Close other apps using it, then press Retry.',
  retry: '重试 Retry',
  faceChecking: '正在核验 Checking your face…',
  facePassed: '核验通过 Face check passed.',
  faceFailed: 'The face check did not pass. Face the camera in good light, then press Retry.',
  livenessIntro: '活体检测 Liveness check: follow each instruction; a photo is taken at every step.',
  manualIdentity: 'Your identity is checked by a reviewer (non-face path); you can start the lesson.',
  popupTitle: '学习确认 Are you still here?',
  popupDeadline: 'Time left: {s} s',
  popupMissed: 'The check was missed: the study time since the last check earns no credit. Press Continue to go on.',
  continueLabel: '继续 Continue',
  otherTab: 'This lesson is open in another tab or window. Close it there to study here (one window at a time).',
  movedToOtherTab: 'This lesson was opened in another tab; study there.',
  replaced: 'This lesson was opened elsewhere; this window has stopped.',
  ended: 'The session has ended.',
  offline: 'Connection lost; reconnecting… (nothing you did is lost)',
  hidden: 'Paused while the page is hidden.',
};

export interface ProctorOptions {
  /** Pause while the page is hidden (no credit is earned then anyway). Default true. */
  readonly pauseWhenHidden: boolean;
  /** Pause while the window has no focus. Default true. */
  readonly pauseWhenUnfocused: boolean;
  /** Web Locks key for the one-tab courtesy lock; `false` disables it. Default `proctor-lesson`. */
  readonly tabLock: string | false;
  /** Lesson ms per media ms. Default: the server's `time_scale` (1 in production; a demo
   * server with `--time-scale N` plays an N× shorter video). */
  readonly mediaScale: number | undefined;
  /** Forward seeks within this many lesson ms of the furthest watched point are allowed. Default 1000. */
  readonly seekToleranceMs: number;
  /** Most messages kept while offline. Default 500 (heartbeats are dropped first). */
  readonly maxQueued: number;
  readonly backoff: BackoffOptions;
  /** Upload attempts for each face check or snapshot. Default 4. */
  readonly uploadAttempts: number;
  /** Base URL of the proctor API; default: derived from `ws_url`. */
  readonly apiBase: string | undefined;
  /** Re-inspect the page for tampering every N heartbeats. Default 12. */
  readonly tamperEvery: number;
  /** Start with the server's active liveness challenge (head turns in a random order, one
   * frame per step) instead of a single-frame face check. Default false; the SDK also
   * switches to it when the server refuses a plain check (a profile that requires it). */
  readonly activeLiveness: boolean;
  /** Time the learner gets for each liveness step before its frame is taken. Default 2500 ms. */
  readonly livenessStepMs: number;
  readonly texts: Texts;
}

export const DEFAULT_OPTIONS: ProctorOptions = {
  pauseWhenHidden: true,
  pauseWhenUnfocused: true,
  tabLock: 'proctor-lesson',
  mediaScale: undefined,
  seekToleranceMs: 1000,
  maxQueued: 500,
  backoff: DEFAULT_BACKOFF,
  uploadAttempts: 4,
  apiBase: undefined,
  tamperEvery: 12,
  activeLiveness: false,
  livenessStepMs: 2500,
  texts: DEFAULT_TEXTS,
};

export type ProctorConfig = Partial<Omit<ProctorOptions, 'texts'>> & { readonly texts?: Partial<Texts> };

export function resolveOptions(c: ProctorConfig | undefined): ProctorOptions {
  const texts = { ...DEFAULT_TEXTS, ...(c?.texts ?? {}) };
  const out: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  for (const [k, v] of Object.entries(c ?? {})) if (v !== undefined) out[k] = v;
  out['texts'] = texts;
  return out as unknown as ProctorOptions;
}

/** `ws://host/api/v1/sessions/ID/ws` → `http://host/api/v1`. */
export function apiBaseFrom(wsUrl: string): string {
  const http = wsUrl.replace(/^ws(s?):/, 'http$1:');
  const i = http.indexOf('/sessions/');
  return i >= 0 ? http.slice(0, i) : http;
}
