/** Fakes for the core's ports: a media element, a manual clock with timers, sockets. */

import type { SocketFactory, SocketHandlers, Timers } from '../../src/core/ports.js';
import type { MediaLike } from '../../src/core/types.js';

export class FakeMedia implements MediaLike {
  private t = 0;
  private rate = 1;
  defaultPlaybackRate = 1;
  paused = true;
  seeking = false;
  ended = false;
  duration = 600;
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Events are delivered synchronously here (browsers queue them; the guard copes with both). */
  fire(type: string): void {
    for (const f of this.listeners.get(type) ?? []) f();
  }
  get currentTime(): number {
    return this.t;
  }
  set currentTime(v: number) {
    this.t = v;
    this.seeking = true;
    this.fire('seeking');
    this.seeking = false;
    this.fire('seeked');
  }
  get playbackRate(): number {
    return this.rate;
  }
  set playbackRate(r: number) {
    if (r === this.rate) return;
    this.rate = r;
    this.fire('ratechange');
  }
  /** Advances playback by `s` seconds of media time, with a timeupdate. */
  advance(s: number): void {
    if (this.paused) return;
    this.t += s;
    this.fire('timeupdate');
  }
  play(): Promise<void> {
    if (this.paused) {
      this.paused = false;
      this.fire('play');
    }
    return Promise.resolve();
  }
  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.fire('pause');
    }
  }
  addEventListener(type: string, fn: () => void): void {
    let s = this.listeners.get(type);
    if (!s) {
      s = new Set();
      this.listeners.set(type, s);
    }
    s.add(fn);
  }
  removeEventListener(type: string, fn: () => void): void {
    this.listeners.get(type)?.delete(fn);
  }
  listenerCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

/** A manual clock: `tick(ms)` runs due timers in order. */
export class FakeTimers implements Timers {
  private t = 0;
  private id = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  rnd = 0.5;
  setTimeout(fn: () => void, ms: number): unknown {
    this.id += 1;
    this.due.set(this.id, { at: this.t + ms, fn });
    return this.id;
  }
  clearTimeout(h: unknown): void {
    this.due.delete(h as number);
  }
  now(): number {
    return this.t;
  }
  random(): number {
    return this.rnd;
  }
  tick(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.due) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
  pending(): number {
    return this.due.size;
  }
}

export interface FakeSocket {
  url: string;
  sent: string[];
  closed: boolean;
  h: SocketHandlers;
  /** Delivers a server message. */
  recv(msg: object): void;
}

/** A socket factory recording every socket opened. */
export function fakeSockets(): { factory: SocketFactory; all: FakeSocket[] } {
  const all: FakeSocket[] = [];
  const factory: SocketFactory = (url, h) => {
    const s: FakeSocket = {
      url,
      sent: [],
      closed: false,
      h,
      recv: (m) => h.onMessage(JSON.stringify(m)),
    };
    all.push(s);
    return {
      send: (t) => s.sent.push(t),
      close: () => {
        s.closed = true;
      },
    };
  };
  return { factory, all };
}

export function welcome(lastSeq: number, extra: object = {}): object {
  return {
    type: 'welcome',
    session_id: 's1',
    last_seq: lastSeq,
    server_time: 0,
    time_scale: 1,
    heartbeat_interval_ms: 5000,
    lesson_duration_ms: 600_000,
    outstanding: [],
    ...extra,
  };
}
