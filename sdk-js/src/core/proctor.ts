/**
 * The learner session, platform-agnostic: ties the guard, the connection, the page, the UI and
 * the camera together. Every side effect goes through a port, so the whole flow runs in unit
 * tests with fakes and in browsers through `platform/browser.ts`.
 *
 * Order at start: one-tab lock → socket (resume) → identity (consent + camera + face check,
 * or the manual path) → playback allowed. Playback is held while a pop-up is open, the page
 * is hidden or unfocused, or identity is not settled.
 */

import { type ProctorConfig, type ProctorOptions, type SessionInfo, apiBaseFrom, resolveOptions } from './config.js';
import { Connection, type ConnectionState } from './connection.js';
import { MediaGuard } from './guard.js';
import { Outbox } from './outbox.js';
import type { HttpPort, PagePort, SocketFactory, TabLockPort, Timers } from './ports.js';
import type { Challenge, ClientBody, Credit, ServerMsg, Warning } from './protocol.js';
import { type Finding, inspectCameraLabels } from './tamper.js';
import { type Disposer, type MediaLike, once } from './types.js';

export const CAMERA_ERRORS = ['denied', 'missing', 'failed'] as const;
export type CameraErrorCode = (typeof CAMERA_ERRORS)[number];

export class CameraError extends Error {
  constructor(
    readonly code: CameraErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface CameraHandle {
  /** One frame as an image (JPEG). */
  grab(): Promise<Blob>;
  readonly labels: readonly string[];
  stop(): void;
}

export interface CameraPort {
  open(): Promise<CameraHandle>;
}

export const NOTICE_KINDS = ['info', 'warning', 'error'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export interface NoticeAction {
  readonly label: string;
  readonly run: () => void;
}

export interface UiPort {
  /** The face-data consent screen; resolves with the learner's choice. */
  consent(title: string, body: string, accept: string, decline: string): Promise<boolean>;
  /** A message; dismissed by the disposer (or by its action). */
  notice(kind: NoticeKind, text: string, action?: NoticeAction): Disposer;
  /** A pop-up check with a visible countdown to `deadlineAt` (platform ms, `timers.now()`). */
  popup(ch: Challenge, deadlineAt: number, onAnswer: (code: string) => void): Disposer;
}

export interface Ports {
  readonly socket: SocketFactory;
  readonly timers: Timers;
  readonly page: PagePort;
  readonly tabLock: TabLockPort | undefined;
  readonly http: HttpPort;
  readonly ui: UiPort;
  readonly camera: CameraPort | undefined;
  /** Page tamper findings (overridden APIs, automation). */
  readonly inspect: (media: MediaLike) => Finding[];
}

export const PROCTOR_STATES = [
  'idle',
  'starting',
  'identity',
  'ready',
  'ended',
  'refused',
  'failed',
  'stopped',
] as const;
export type ProctorState = (typeof PROCTOR_STATES)[number];

export interface ProctorEvents {
  state: { readonly state: ProctorState; readonly detail: string };
  connection: { readonly state: ConnectionState; readonly detail: string };
  credit: Credit;
  warning: Warning;
  challenge: Challenge;
  signal: Finding;
  identity: { readonly method: 'face' | 'manual'; readonly passed: boolean; readonly detail: string };
  upload: { readonly what: 'face-checks' | 'snapshots' | 'liveness'; readonly ok: boolean; readonly status: number };
  message: ServerMsg;
}

export type ProctorEventName = keyof ProctorEvents;

export class ProctorSession {
  readonly options: ProctorOptions;
  readonly guard: MediaGuard;
  readonly connection: Connection;
  private st: ProctorState = 'idle';
  private readonly listeners = new Map<ProctorEventName, Set<(e: never) => void>>();
  private readonly cleanup: Disposer[] = [];
  private hbTimer: unknown;
  private hbCount = 0;
  private initialized = false;
  private camera: CameraHandle | undefined;
  private readonly sentSignals = new Set<string>();
  private readonly popups = new Map<string, Disposer>();
  private lastCredit: Credit | undefined;
  private readonly apiBase: string;

  constructor(
    readonly session: SessionInfo,
    readonly media: MediaLike,
    private readonly ports: Ports,
    config?: ProctorConfig,
  ) {
    this.options = resolveOptions(config);
    this.apiBase = this.options.apiBase ?? apiBaseFrom(session.ws_url);
    this.guard = new MediaGuard(media, (b) => this.send(b), () => ports.timers.now(), {
      seekToleranceMs: this.options.seekToleranceMs,
      maxSegments: 256,
    });
    this.connection = new Connection({
      wsUrl: session.ws_url,
      token: session.learner_token,
      socket: ports.socket,
      timers: ports.timers,
      outbox: new Outbox({ maxQueued: this.options.maxQueued }),
      backoff: this.options.backoff,
      onMessage: (m) => this.onServer(m),
      onState: (s, d) => this.onConnection(s, d),
    });
  }

  get state(): ProctorState {
    return this.st;
  }

  get credit(): Credit | undefined {
    return this.lastCredit;
  }

  /** Subscribes to an event; returns the disposer. */
  on<K extends ProctorEventName>(name: K, fn: (e: ProctorEvents[K]) => void): Disposer {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    const f = fn as (e: never) => void;
    set.add(f);
    return once(() => set?.delete(f));
  }

  private emit<K extends ProctorEventName>(name: K, e: ProctorEvents[K]): void {
    for (const f of this.listeners.get(name) ?? []) {
      try {
        (f as (e: ProctorEvents[K]) => void)(e);
      } catch {
        // A listener's bug must not stop the session.
      }
    }
  }

  private setState(state: ProctorState, detail: string): void {
    this.st = state;
    this.emit('state', { state, detail });
  }

  /** Sends a protocol message (numbered and queued by the outbox). */
  send(body: ClientBody): void {
    this.connection.send(body);
  }

  /** Starts the session. Resolves once playback may begin (or the start was refused). */
  async start(): Promise<ProctorState> {
    if (this.st !== 'idle') return this.st;
    const { ports, options: o } = this;
    this.setState('starting', 'taking the one-tab lock');
    this.guard.hold('identity');
    this.cleanup.push(this.guard.attach());
    if (o.tabLock !== false && ports.tabLock) {
      const release = await ports.tabLock.acquire(o.tabLock, () => {
        this.guard.hold('tab');
        ports.ui.notice('warning', o.texts.movedToOtherTab);
      });
      if (!release) {
        ports.ui.notice('error', o.texts.otherTab);
        this.setState('refused', 'another tab holds the lesson');
        return this.st;
      }
      this.cleanup.push(release);
    }
    this.watchPage();
    this.connection.start();
    this.setState('identity', this.session.identity_check);
    const ok = await this.identity();
    if (!ok) return this.st;
    this.guard.release('identity');
    this.setState('ready', 'playback allowed');
    return this.st;
  }

  /** Ends the session: reports `terminated`, waits briefly for the acknowledgement, closes. */
  async end(timeoutMs = 3000): Promise<void> {
    if (this.st === 'ended' || this.st === 'stopped') return;
    this.guard.hold('ended');
    this.send({ type: 'terminated', reason: 'ended', position_ms: this.guard.positionMs() });
    const t0 = this.ports.timers.now();
    while (!this.connection.outbox.idle && this.ports.timers.now() - t0 < timeoutMs && this.connection.state !== 'ended') {
      await new Promise<void>((r) => this.ports.timers.setTimeout(r, 50));
    }
    this.stop();
  }

  /** Stops everything without telling the server (it sees the socket close). */
  stop(): void {
    this.ports.timers.clearTimeout(this.hbTimer);
    this.connection.stop();
    for (const d of this.popups.values()) d();
    this.popups.clear();
    this.camera?.stop();
    this.camera = undefined;
    for (const d of this.cleanup.splice(0).reverse()) d();
    if (this.st !== 'ended' && this.st !== 'refused' && this.st !== 'failed') this.setState('stopped', 'stopped');
  }

  private watchPage(): void {
    const { page } = this.ports;
    const o = this.options;
    const applyVisible = (v: boolean): void => {
      if (!o.pauseWhenHidden) return;
      if (v) this.guard.release('hidden');
      else this.guard.hold('hidden');
    };
    const applyFocus = (f: boolean): void => {
      if (!o.pauseWhenUnfocused) return;
      if (f) this.guard.release('unfocused');
      else this.guard.hold('unfocused');
    };
    applyVisible(page.visible());
    applyFocus(page.focused());
    this.cleanup.push(
      page.onVisibility((v) => {
        this.guard.emitWithPosition((p) => ({ type: 'visibility_changed', visible: v, position_ms: p }));
        applyVisible(v);
      }),
      page.onFocus((f) => {
        this.guard.emitWithPosition((p) => ({ type: 'focus_changed', focused: f, position_ms: p }));
        applyFocus(f);
      }),
      page.onLeave(() => this.onLeave()),
    );
  }

  /** The page is going away: a last heartbeat; if the socket is down, a beacon with whatever
   * is unacknowledged (an open socket delivers it itself, and a beacon would only race it). */
  private onLeave(): void {
    if (this.st === 'ended' || this.st === 'stopped') return;
    const { page } = this.ports;
    this.send(this.guard.heartbeat(page.visible(), page.focused()));
    if (this.connection.state === 'open') return;
    const { inflight, queued } = this.connection.outbox.pending();
    if (inflight.length + queued.length === 0) return;
    const url = `${this.apiBase}/sessions/${encodeURIComponent(this.session.session_id)}/beacon?access_token=${encodeURIComponent(this.connection.token)}`;
    let seq = this.connection.outbox.nextSeq;
    const frames = [...inflight, ...queued.map((b) => ({ ...b, seq: seq++ }))];
    this.ports.http.beacon(url, JSON.stringify(frames));
  }

  private signal(f: Finding): void {
    const key = `${f.name}\u0000${f.detail}`;
    if (this.sentSignals.has(key)) return;
    this.sentSignals.add(key);
    this.send({ type: 'signal', name: f.name, detail: f.detail.slice(0, 500) });
    this.emit('signal', f);
  }

  private inspect(): void {
    for (const f of this.ports.inspect(this.media)) this.signal(f);
  }

  private onConnection(state: ConnectionState, detail: string): void {
    this.emit('connection', { state, detail });
    const { ui } = this.ports;
    const t = this.options.texts;
    switch (state) {
      case 'open': {
        const w = this.connection.welcome;
        if (w && !this.initialized) {
          this.initialized = true;
          this.guard.configure(this.options.mediaScale ?? w.time_scale, w.lesson_duration_ms);
          this.send({ type: 'initialized', duration_ms: w.lesson_duration_ms });
          this.inspect();
        }
        if (w) for (const c of w.outstanding) this.onChallenge(c);
        this.scheduleHeartbeat();
        break;
      }
      case 'replaced':
        this.guard.hold('ended');
        ui.notice('error', t.replaced);
        this.finish('stopped', detail);
        break;
      case 'ended':
        this.guard.hold('ended');
        ui.notice('info', t.ended);
        this.finish('ended', detail);
        break;
      case 'failed':
        this.guard.hold('ended');
        ui.notice('error', detail);
        this.finish('failed', detail);
        break;
      case 'idle':
      case 'connecting':
      case 'waiting':
      case 'stopped':
        break;
    }
  }

  private finish(state: ProctorState, detail: string): void {
    this.ports.timers.clearTimeout(this.hbTimer);
    for (const d of this.popups.values()) d();
    this.popups.clear();
    this.camera?.stop();
    this.camera = undefined;
    this.setState(state, detail);
  }

  private scheduleHeartbeat(): void {
    const w = this.connection.welcome;
    if (!w) return;
    this.ports.timers.clearTimeout(this.hbTimer);
    const interval = Math.max(50, w.heartbeat_interval_ms / (w.time_scale > 0 ? w.time_scale : 1));
    const tick = (): void => {
      if (this.st === 'ended' || this.st === 'stopped' || this.st === 'failed') return;
      const { page } = this.ports;
      this.hbCount += 1;
      if (this.hbCount % this.options.tamperEvery === 0) this.inspect();
      this.send(this.guard.heartbeat(page.visible(), page.focused()));
      this.hbTimer = this.ports.timers.setTimeout(tick, interval);
    };
    this.hbTimer = this.ports.timers.setTimeout(tick, interval);
  }

  private onServer(m: ServerMsg): void {
    this.emit('message', m);
    switch (m.type) {
      case 'challenge':
        this.onChallenge(m);
        break;
      case 'credit':
        this.lastCredit = m;
        this.emit('credit', m);
        break;
      case 'warning':
        this.emit('warning', m);
        break;
      case 'welcome':
      case 'ack':
      case 'gap':
      case 'error':
      case 'token':
      case 'ended':
        break;
    }
  }

  private realMs(serverMs: number): number {
    const scale = this.connection.welcome?.time_scale ?? 1;
    return serverMs / (scale > 0 ? scale : 1);
  }

  private onChallenge(c: Challenge): void {
    this.emit('challenge', c);
    switch (c.kind) {
      case 'popup':
        this.showPopup(c);
        break;
      case 'snapshot':
        void this.capture('snapshots', c.nonce);
        break;
      case 'face_recheck':
        void this.capture('face-checks', c.nonce);
        break;
      case 'liveness':
        // Answered by the identity step that asked for it (`activeCheck`), not here.
        break;
    }
  }

  private showPopup(c: Challenge): void {
    if (this.popups.has(c.nonce)) return;
    const { ui, timers } = this.ports;
    const t = this.options.texts;
    // Video played after the last report earns nothing while a pop-up is pending: resume there.
    const resumeAt = this.guard.lastReportedMs();
    // A pop-up after the video ended still rewinds: the tail must be watched again, so play it.
    const ended = this.media.ended;
    const resume = (): void => {
      const moved = this.guard.rewindTo(resumeAt);
      this.guard.release('popup');
      if (ended && moved) this.guard.play();
    };
    this.guard.hold('popup');
    const deadlineAt = timers.now() + this.realMs(c.deadline_in_ms);
    let expiry: unknown;
    const close = once(() => {
      timers.clearTimeout(expiry);
      dispose();
      this.popups.delete(c.nonce);
    });
    const dispose = ui.popup(c, deadlineAt, (answer) => {
      this.send({ type: 'challenge_answered', nonce: c.nonce, answer });
      close();
      resume();
    });
    this.popups.set(c.nonce, close);
    expiry = timers.setTimeout(
      () => {
        close();
        const n = ui.notice('warning', t.popupMissed, {
          label: t.continueLabel,
          run: () => {
            n();
            resume();
          },
        });
      },
      Math.max(0, deadlineAt - timers.now()),
    );
  }

  /** Consent, camera and the first face check, or the manual path. True when playback may start. */
  private async identity(): Promise<boolean> {
    const { ui, camera } = this.ports;
    const t = this.options.texts;
    if (this.session.identity_check === 'manual') {
      const n = ui.notice('info', t.manualIdentity);
      this.ports.timers.setTimeout(n, 6000);
      this.emit('identity', { method: 'manual', passed: true, detail: 'non-face path' });
      return true;
    }
    const agreed = await ui.consent(t.consentTitle, t.consentBody, t.consentAccept, t.consentDecline);
    if (!agreed) {
      ui.notice('error', t.consentDeclined);
      this.setState('refused', 'face data consent declined');
      return false;
    }
    for (;;) {
      if (this.st !== 'identity') return false;
      try {
        if (!camera) throw new CameraError('missing', 'no camera port');
        this.camera ??= await camera.open();
        for (const f of inspectCameraLabels(this.camera.labels)) this.signal(f);
        let r: { status: number; body: unknown };
        if (this.options.activeLiveness) {
          r = await this.activeCheck(this.camera);
        } else {
          const busy = ui.notice('info', t.faceChecking);
          r = await this.upload('face-checks', undefined, await this.camera.grab());
          busy();
          if (r.status === 409) r = await this.activeCheck(this.camera);
        }
        const passed = r.status === 201 && (r.body as { passed?: unknown } | null)?.passed === true;
        this.emit('identity', { method: 'face', passed, detail: `status ${r.status}` });
        if (passed) {
          const n = ui.notice('info', t.facePassed);
          this.ports.timers.setTimeout(n, 3000);
          return true;
        }
        await this.waitRetry('warning', t.faceFailed);
      } catch (e) {
        const code: CameraErrorCode = e instanceof CameraError ? e.code : 'failed';
        this.emit('identity', { method: 'face', passed: false, detail: `camera ${code}` });
        const text = code === 'denied' ? t.cameraDenied : code === 'missing' ? t.cameraMissing : t.cameraFailed;
        await this.waitRetry('error', text);
      }
    }
  }

  /** The active liveness challenge: ask the server for steps, prompt each, take one frame per
   * step (unmirrored, as the camera sees it), send them all. Returns the server's answer. */
  private async activeCheck(camera: { grab(): Promise<Blob> }): Promise<{ status: number; body: unknown }> {
    const { ui, timers, http } = this.ports;
    const base = `${this.apiBase}/sessions/${encodeURIComponent(this.session.session_id)}/liveness-challenges`;
    const token = this.connection.token;
    const ch = await http.post(base, token, new Blob([], { type: 'application/json' }), 'application/json');
    const body = ch.body as { nonce?: unknown; steps?: unknown; prompts?: unknown } | null;
    if (ch.status !== 201 || typeof body?.nonce !== 'string' || !Array.isArray(body.prompts)) return ch;
    const prompts = body.prompts.filter((p): p is string => typeof p === 'string');
    const intro = ui.notice('info', this.options.texts.livenessIntro);
    const frames: string[] = [];
    for (const [i, prompt] of prompts.entries()) {
      const n = ui.notice('info', `${i + 1}/${prompts.length} ${prompt}`);
      await new Promise<void>((r) => timers.setTimeout(r, this.options.livenessStepMs));
      frames.push(await toBase64(await camera.grab()));
      n();
    }
    intro();
    const busy = ui.notice('info', this.options.texts.faceChecking);
    const json = new Blob([JSON.stringify({ frames })], { type: 'application/json' });
    const r = await http.post(`${base}/${encodeURIComponent(body.nonce)}`, token, json, 'application/json');
    busy();
    this.emit('upload', { what: 'liveness', ok: r.status === 201, status: r.status });
    return r;
  }

  private waitRetry(kind: NoticeKind, text: string): Promise<void> {
    return new Promise((resolve) => {
      const n = this.ports.ui.notice(kind, text, {
        label: this.options.texts.retry,
        run: () => {
          n();
          resolve();
        },
      });
    });
  }

  private async capture(what: 'face-checks' | 'snapshots', nonce: string): Promise<void> {
    if (!this.camera) return; // the manual path has no camera; the server records what is missing
    try {
      await this.upload(what, nonce, await this.camera.grab());
    } catch {
      this.emit('upload', { what, ok: false, status: 0 });
    }
  }

  /** POSTs an image with retries (jittered backoff) on network errors, 5xx and 429. */
  private async upload(
    what: 'face-checks' | 'snapshots',
    nonce: string | undefined,
    image: Blob,
  ): Promise<{ status: number; body: unknown }> {
    const url = `${this.apiBase}/sessions/${encodeURIComponent(this.session.session_id)}/${what}${nonce ? `?nonce=${encodeURIComponent(nonce)}` : ''}`;
    let last: { status: number; body: unknown } = { status: 0, body: null };
    for (let attempt = 0; attempt < this.options.uploadAttempts; attempt += 1) {
      try {
        last = await this.ports.http.post(url, this.connection.token, image, image.type || 'image/jpeg');
        if (last.status < 500 && last.status !== 429) break;
      } catch {
        last = { status: 0, body: null };
      }
      const delay = Math.min(8000, 400 * 2 ** attempt) * (0.5 + this.ports.timers.random() / 2);
      await new Promise<void>((r) => this.ports.timers.setTimeout(r, delay));
    }
    this.emit('upload', { what, ok: last.status >= 200 && last.status < 300, status: last.status });
    return last;
  }
}

/** Standard base64 of a blob (no DOM: `Blob.arrayBuffer` and `btoa` exist in browsers and Node). */
async function toBase64(b: Blob): Promise<string> {
  const bytes = new Uint8Array(await b.arrayBuffer());
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
