import { describe, expect, it } from 'vitest';
import { MediaGuard } from '../../src/core/guard.js';
import type { ClientBody } from '../../src/core/protocol.js';
import { FakeMedia, FakeTimers } from './fakes.js';

function setup(scale = 1) {
  const media = new FakeMedia();
  const timers = new FakeTimers();
  const sent: ClientBody[] = [];
  const guard = new MediaGuard(media, (b) => sent.push(b), () => timers.now());
  guard.configure(scale, 600_000);
  const dispose = guard.attach();
  return { media, timers, sent, guard, dispose };
}

/** Plays `s` seconds in 250 ms steps, the way timeupdate arrives. */
function playFor(media: FakeMedia, timers: FakeTimers, s: number): void {
  for (let i = 0; i < s * 4; i += 1) {
    timers.tick(250);
    media.advance(0.25);
  }
}

describe('MediaGuard', () => {
  it('reports play and pause with positions and tracks the furthest watched point', () => {
    const { media, timers, sent, guard } = setup();
    void media.play();
    playFor(media, timers, 10);
    media.pause();
    expect(sent[0]).toEqual({ type: 'played', position_ms: 0 });
    expect(sent[1]).toEqual({ type: 'paused', position_ms: 10_000 });
    expect(guard.furthestMs()).toBe(10_000);
  });

  it('holds the playback rate at 1.0 and reports the attempt first', () => {
    const { media, sent } = setup();
    void media.play();
    media.playbackRate = 2;
    expect(media.playbackRate).toBe(1);
    const rates = sent.filter((b) => b.type === 'rate_changed');
    expect(rates).toEqual([
      { type: 'rate_changed', position_ms: 0, rate_permille: 2000 },
      { type: 'rate_changed', position_ms: 0, rate_permille: 1000 },
    ]);
  });

  it('snaps a forward seek past the furthest watched point back, and reports a signal, not a seek', () => {
    const { media, timers, sent, guard } = setup();
    void media.play();
    playFor(media, timers, 20);
    media.currentTime = 300;
    expect(media.currentTime).toBeCloseTo(20, 5);
    expect(sent.some((b) => b.type === 'seeked')).toBe(false);
    expect(sent.find((b) => b.type === 'signal')).toMatchObject({ name: 'forward_seek_blocked' });
    expect(guard.furthestMs()).toBe(20_000);
  });

  it('allows seeking back and forward within what was watched', () => {
    const { media, timers, sent } = setup();
    void media.play();
    playFor(media, timers, 30);
    media.currentTime = 5;
    media.currentTime = 25;
    const seeks = sent.filter((b) => b.type === 'seeked');
    expect(seeks).toEqual([
      { type: 'seeked', from_ms: 30_000, to_ms: 5_000 },
      { type: 'seeked', from_ms: 5_000, to_ms: 25_000 },
    ]);
    expect(media.currentTime).toBe(25);
  });

  it('does not extend the furthest point for playback faster than the wall clock', () => {
    const { media, timers, guard } = setup();
    void media.play();
    playFor(media, timers, 4);
    timers.tick(250);
    media.advance(3); // 3 s of video in 0.25 s: a hidden speed-up, snapped back
    expect(guard.furthestMs()).toBe(4000);
    expect(media.currentTime).toBeCloseTo(4, 5);
  });

  it('keeps playback paused while held and resumes after the last hold is released', () => {
    const { media, guard } = setup();
    void media.play();
    guard.hold('popup');
    guard.hold('hidden');
    expect(media.paused).toBe(true);
    void media.play(); // the learner presses play during the pop-up
    expect(media.paused).toBe(true);
    guard.release('popup');
    expect(media.paused).toBe(true);
    guard.release('hidden');
    expect(media.paused).toBe(false);
  });

  it('maps media time to lesson time by the server time scale and clamps to the lesson', () => {
    const { media, timers, guard } = setup(60);
    void media.play();
    playFor(media, timers, 2);
    expect(guard.positionMs()).toBe(120_000);
    expect(guard.toLessonMs(11)).toBe(600_000);
  });

  it('builds heartbeats with played segments and remembers the reported position', () => {
    const { media, timers, guard } = setup();
    void media.play();
    playFor(media, timers, 10);
    media.currentTime = 2;
    playFor(media, timers, 3);
    const hb = guard.heartbeat(true, false);
    expect(hb).toMatchObject({ type: 'heartbeat', position_ms: 5000, rate_permille: 1000, paused: false, visible: true, focused: false });
    expect(hb.type === 'heartbeat' && hb.played).toEqual([[0, 10_000]]);
    expect(guard.lastReportedMs()).toBe(5000);
    expect(guard.playedSegments()).toBe('0[.]10');
  });

  it('rewinds to a reported position after a pop-up', () => {
    const { media, timers, guard, sent } = setup();
    void media.play();
    playFor(media, timers, 10);
    guard.heartbeat(true, true);
    playFor(media, timers, 3);
    expect(guard.rewindTo(guard.lastReportedMs())).toBe(true);
    expect(media.currentTime).toBe(10);
    expect(sent.at(-1)).toEqual({ type: 'seeked', from_ms: 13_000, to_ms: 10_000 });
    expect(guard.rewindTo(20_000)).toBe(false);
  });

  it('removes every listener it added when disposed', () => {
    const { media, dispose } = setup();
    expect(media.listenerCount()).toBeGreaterThan(0);
    dispose();
    dispose();
    expect(media.listenerCount()).toBe(0);
  });
});
