import { describe, expect, it } from 'vitest';
import { Outbox } from '../../src/core/outbox.js';
import { PlayedSegments } from '../../src/core/segments.js';

const hb = (p: number) =>
  ({ type: 'heartbeat', position_ms: p, rate_permille: 1000, paused: false, visible: true, focused: true }) as const;

describe('Outbox', () => {
  it('numbers messages when they are sent and forgets them when acknowledged', () => {
    const o = new Outbox();
    o.enqueue({ type: 'played', position_ms: 0 });
    o.enqueue(hb(5000));
    expect(o.take().map((f) => f.seq)).toEqual([1, 2]);
    o.enqueue(hb(10_000));
    expect(o.take().map((f) => f.seq)).toEqual([3]);
    o.ack(2);
    expect(o.inflightCount).toBe(1);
    o.ack(3);
    expect(o.idle).toBe(true);
  });

  it('resends exactly what the server does not hold after a reconnect, with the same numbers', () => {
    const o = new Outbox();
    for (let i = 0; i < 5; i += 1) o.enqueue(hb(i * 1000));
    o.take();
    o.ack(2);
    o.enqueue(hb(9000)); // queued while offline
    const resent = o.resume(3);
    expect(resent.map((f) => f.seq)).toEqual([4, 5]);
    expect(o.take().map((f) => f.seq)).toEqual([6]);
  });

  it('continues after the server when a fresh page resumes a session', () => {
    const o = new Outbox();
    o.enqueue(hb(0));
    expect(o.resume(41)).toEqual([]);
    expect(o.take()[0]?.seq).toBe(42);
  });

  it('answers a gap with the messages from the expected number on', () => {
    const o = new Outbox();
    for (let i = 0; i < 4; i += 1) o.enqueue(hb(i));
    o.take();
    expect(o.resendFrom(3).map((f) => f.seq)).toEqual([3, 4]);
  });

  it('is bounded while offline and drops the oldest heartbeats first', () => {
    const o = new Outbox({ maxQueued: 3 });
    o.enqueue({ type: 'played', position_ms: 0 });
    o.enqueue(hb(1));
    o.enqueue(hb(2));
    o.enqueue({ type: 'paused', position_ms: 3 });
    o.enqueue(hb(4));
    expect(o.queuedCount).toBe(3);
    expect(o.droppedCount).toBe(2);
    const kept = o.take();
    expect(kept.map((f) => f.type)).toEqual(['played', 'paused', 'heartbeat']);
    expect(kept.map((f) => f.seq)).toEqual([1, 2, 3]); // no hole in the sequence
  });
});

describe('PlayedSegments', () => {
  it('merges overlapping ranges and stays bounded', () => {
    const s = new PlayedSegments(3);
    s.add(0, 10);
    s.add(5, 20);
    s.add(30, 40);
    s.add(50, 60);
    s.add(62, 70);
    expect(s.list()).toEqual([
      [0, 20],
      [30, 40],
      [50, 70],
    ]);
    expect(s.toXapi()).toBe('0[.]0.02[,]0.03[.]0.04[,]0.05[.]0.07');
  });
});
