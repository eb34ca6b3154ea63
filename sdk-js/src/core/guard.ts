/**
 * The media guard: keeps one media element honest and turns what it does into protocol
 * messages. It holds the playback rate at 1.0 (reporting any other rate first, so the server
 * records it), snaps forward seeks past the furthest watched point back, keeps playback paused
 * while any hold is active (pop-up, hidden page, lost focus, identity check), and builds
 * heartbeats with the played ranges.
 *
 * It never touches globals: the element, the clock and the sink are given. The server is the
 * authority; the guard only makes honest use smooth and dishonest use visible.
 */

import type { ClientBody, Segment } from './protocol.js';
import { PlayedSegments } from './segments.js';
import { type Disposer, type HoldReason, type MediaLike, listen, once } from './types.js';

export interface GuardOptions {
  /** A forward seek up to this many lesson ms past the furthest watched point is allowed. Default 1000. */
  readonly seekToleranceMs: number;
  /** Most played ranges reported in a heartbeat. Default 256 (the server's limit). */
  readonly maxSegments: number;
}

export const DEFAULT_GUARD: GuardOptions = { seekToleranceMs: 1000, maxSegments: 256 };

export type GuardSink = (body: ClientBody) => void;

export class MediaGuard {
  /** Lesson ms per media ms: 1 in production; N when a demo server's clock runs N× faster. */
  private scale = 1;
  private lessonMs = Number.POSITIVE_INFINITY;
  /** Furthest point reached by plausible playback, in media seconds. */
  private furthest = 0;
  private lastT = 0;
  private lastWall = 0;
  private segStart: number | undefined;
  private readonly played: PlayedSegments;
  private readonly holds = new Set<HoldReason>();
  private resumeAfterHold = false;
  /** A seek we caused (snap-back); its `seeking` event is not the learner's. */
  private ownSeekTo: number | undefined;
  private reportedRate = 1000;
  private lastReported = 0;
  private disposers: Disposer[] = [];

  constructor(
    private readonly media: MediaLike,
    private readonly sink: GuardSink,
    private readonly now: () => number,
    private readonly opts: GuardOptions = DEFAULT_GUARD,
  ) {
    this.played = new PlayedSegments(opts.maxSegments);
  }

  /** Sets the media → lesson time mapping and the lesson length (from `welcome`). */
  configure(scale: number, lessonDurationMs: number): void {
    this.scale = scale > 0 && Number.isFinite(scale) ? scale : 1;
    this.lessonMs = lessonDurationMs > 0 ? lessonDurationMs : Number.POSITIVE_INFINITY;
  }

  /** Lesson ms for a media time in seconds, clamped to the lesson. */
  toLessonMs(seconds: number): number {
    const ms = Math.round(seconds * 1000 * this.scale);
    return Math.max(0, Math.min(Number.isFinite(this.lessonMs) ? this.lessonMs : ms, ms));
  }

  positionMs(): number {
    return this.toLessonMs(this.media.currentTime);
  }

  furthestMs(): number {
    return this.toLessonMs(this.furthest);
  }

  /** The last position sent to the server (pop-ups resume from here). */
  lastReportedMs(): number {
    return this.lastReported;
  }

  rateNow(): number {
    return Math.max(1, Math.min(16_000, Math.round(this.media.playbackRate * 1000)));
  }

  held(): boolean {
    return this.holds.size > 0;
  }

  holdReasons(): HoldReason[] {
    return [...this.holds];
  }

  attach(): Disposer {
    const m = this.media;
    this.lastT = m.currentTime;
    this.lastWall = this.now();
    if (!m.paused) this.segStart = m.currentTime;
    this.disposers = [
      listen(m, 'timeupdate', () => this.onTimeUpdate()),
      listen(m, 'seeking', () => this.onSeeking()),
      listen(m, 'ratechange', () => this.onRateChange()),
      listen(m, 'play', () => this.onPlay()),
      listen(m, 'pause', () => this.onPause()),
      listen(m, 'ended', () => this.closeSegment()),
    ];
    this.enforceRate();
    return once(() => {
      for (const d of this.disposers.splice(0)) d();
    });
  }

  /** Pauses playback until every hold is released. */
  hold(reason: HoldReason): void {
    if (this.holds.size === 0 && !this.media.paused) this.resumeAfterHold = true;
    this.holds.add(reason);
    if (!this.media.paused) this.media.pause();
  }

  /** Releases a hold; playback resumes if it was playing when the first hold began. */
  release(reason: HoldReason): void {
    if (!this.holds.delete(reason) || this.holds.size > 0) return;
    if (this.resumeAfterHold) {
      this.resumeAfterHold = false;
      this.play();
    }
  }

  /** Whether playback resumes by itself once the holds are released. */
  willResume(): boolean {
    return this.resumeAfterHold;
  }

  play(): void {
    if (this.held()) {
      this.resumeAfterHold = true;
      return;
    }
    try {
      const p = this.media.play();
      if (p && typeof p.catch === 'function') p.catch(() => undefined);
    } catch {
      // Autoplay policy: the learner presses play themselves.
    }
  }

  /** Moves the playhead back to a lesson position (after a pop-up: the last reported one). */
  rewindTo(lessonMs: number): boolean {
    const target = lessonMs / 1000 / this.scale;
    if (!(target < this.media.currentTime - 0.001)) return false;
    this.media.currentTime = target;
    return true;
  }

  /** A heartbeat reflecting the element now. */
  heartbeat(visible: boolean, focused: boolean): ClientBody {
    this.enforceRate();
    const position = this.positionMs();
    const open: Segment | undefined =
      this.segStart !== undefined ? [this.toLessonMs(this.segStart), this.toLessonMs(this.lastT)] : undefined;
    this.lastReported = position;
    return {
      type: 'heartbeat',
      position_ms: position,
      rate_permille: this.rateNow(),
      paused: this.media.paused,
      visible,
      focused,
      played: this.played.list(open),
    };
  }

  /** xAPI `played-segments` (seconds of lesson time). */
  playedSegments(): string {
    return this.played.toXapi();
  }

  /** Sends a message that carries a position and remembers the position. */
  private report(body: ClientBody): void {
    if ('position_ms' in body && typeof body.position_ms === 'number') this.lastReported = body.position_ms;
    if (body.type === 'seeked') this.lastReported = body.to_ms;
    this.sink(body);
  }

  /** Called by the page port too, so that changes ride with a position. */
  emitWithPosition(make: (positionMs: number) => ClientBody): void {
    this.report(make(this.positionMs()));
  }

  private closeSegment(): void {
    if (this.segStart !== undefined) {
      this.played.add(this.toLessonMs(this.segStart), this.toLessonMs(this.lastT));
      this.segStart = undefined;
    }
  }

  private onTimeUpdate(): void {
    const m = this.media;
    if (m.seeking) return;
    const t = m.currentTime;
    const wall = this.now();
    const dt = t - this.lastT;
    const elapsed = (wall - this.lastWall) / 1000;
    // Plausible playback at ≤ 1.0×: advances no faster than the wall clock (with slack for
    // event-loop jitter). Anything else extends nothing.
    const playing = !m.paused || m.ended;
    if (playing && dt >= 0 && dt <= elapsed * 1.1 + 0.3 && this.rateNow() <= 1000) {
      if (t > this.furthest) this.furthest = t;
    } else if (playing && dt > 0 && t > this.furthest + this.toleranceS()) {
      this.snapBack(t);
      return;
    }
    this.lastT = t;
    this.lastWall = wall;
  }

  private toleranceS(): number {
    return this.opts.seekToleranceMs / 1000 / this.scale;
  }

  private onSeeking(): void {
    const t = this.media.currentTime;
    if (this.ownSeekTo !== undefined && Math.abs(t - this.ownSeekTo) < 0.05) {
      this.ownSeekTo = undefined;
      this.lastT = t;
      this.lastWall = this.now();
      return;
    }
    this.closeSegment();
    if (t > this.furthest + this.toleranceS()) {
      this.snapBack(t);
      return;
    }
    this.report({ type: 'seeked', from_ms: this.toLessonMs(this.lastT), to_ms: this.toLessonMs(t) });
    this.lastT = t;
    this.lastWall = this.now();
    if (!this.media.paused) this.segStart = t;
  }

  private snapBack(attempted: number): void {
    this.closeSegment();
    const back = Math.min(this.furthest, this.lastT);
    this.report({
      type: 'signal',
      name: 'forward_seek_blocked',
      detail: `seek to ${this.toLessonMs(attempted)} ms snapped back to ${this.toLessonMs(back)} ms (furthest watched)`,
    });
    this.ownSeekTo = back;
    this.media.currentTime = back;
    this.lastT = back;
    this.lastWall = this.now();
    if (!this.media.paused) this.segStart = back;
  }

  private onRateChange(): void {
    const rate = this.rateNow();
    if (rate !== this.reportedRate) {
      this.closeSegment();
      this.reportedRate = rate;
      this.report({ type: 'rate_changed', position_ms: this.positionMs(), rate_permille: rate });
    }
    this.enforceRate();
  }

  /** Puts the rate back to 1.0; the resulting `ratechange` reports the return to 1000‰. */
  private enforceRate(): void {
    const m = this.media;
    if (m.defaultPlaybackRate !== 1) m.defaultPlaybackRate = 1;
    if (m.playbackRate !== 1) {
      m.playbackRate = 1;
      if (this.reportedRate !== 1000 && m.playbackRate === 1) {
        // Some players apply the change without an event; report it anyway.
        this.reportedRate = 1000;
        this.report({ type: 'rate_changed', position_ms: this.positionMs(), rate_permille: 1000 });
      }
    }
  }

  private onPlay(): void {
    if (this.held()) {
      this.resumeAfterHold = true;
      this.media.pause();
      return;
    }
    this.lastT = this.media.currentTime;
    this.lastWall = this.now();
    this.segStart = this.lastT;
    this.report({ type: 'played', position_ms: this.positionMs() });
  }

  private onPause(): void {
    this.closeSegment();
    this.lastT = this.media.currentTime;
    this.report({ type: 'paused', position_ms: this.positionMs() });
  }
}
