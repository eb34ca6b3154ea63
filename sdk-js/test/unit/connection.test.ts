import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/core/backoff.js';
import { Connection, type ConnectionState } from '../../src/core/connection.js';
import { Outbox } from '../../src/core/outbox.js';
import { FakeTimers, fakeSockets, welcome } from './fakes.js';

function setup() {
  const timers = new FakeTimers();
  const sockets = fakeSockets();
  const states: ConnectionState[] = [];
  const c = new Connection({
    wsUrl: 'ws://h/api/v1/sessions/s1/ws',
    token: 't0',
    socket: sockets.factory,
    timers,
    outbox: new Outbox(),
    backoff: { baseMs: 100, maxMs: 1000 },
    onMessage: () => undefined,
    onState: (s) => states.push(s),
  });
  return { timers, sockets, states, c };
}

const seqs = (sent: string[]) => sent.map((t) => (JSON.parse(t) as { seq: number }).seq);

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with jitter within [step/2, step]', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, o, () => 0)).toBe(50);
    expect(backoffDelay(0, o, () => 0.999)).toBe(100);
    expect(backoffDelay(3, o, () => 0)).toBe(400);
    expect(backoffDelay(10, o, () => 0.999)).toBe(1000);
    expect(backoffDelay(10, o, () => 0)).toBe(500);
  });
});

describe('Connection', () => {
  it('sends nothing before welcome, then resumes after last_seq', () => {
    const { sockets, c } = setup();
    c.start();
    c.send({ type: 'played', position_ms: 0 });
    const s = sockets.all[0];
    expect(s?.url).toBe('ws://h/api/v1/sessions/s1/ws?access_token=t0');
    expect(s?.sent).toEqual([]);
    s?.recv(welcome(0));
    expect(seqs(s?.sent ?? [])).toEqual([1]);
    expect(c.state).toBe('open');
  });

  it('reconnects with backoff after a drop and resends what was not accepted, nothing twice', () => {
    const { timers, sockets, states, c } = setup();
    c.start();
    sockets.all[0]?.recv(welcome(0));
    for (let i = 0; i < 3; i += 1) c.send({ type: 'paused', position_ms: i });
    sockets.all[0]?.recv({ type: 'ack', seq: 1, duplicate: false });
    sockets.all[0]?.h.onClose(1006, '');
    expect(states.at(-1)).toBe('waiting');
    c.send({ type: 'played', position_ms: 3 }); // while offline
    timers.tick(49);
    expect(sockets.all).toHaveLength(1);
    timers.tick(100);
    expect(sockets.all).toHaveLength(2);
    const s2 = sockets.all[1];
    s2?.recv(welcome(2)); // the server had accepted 2 as well
    expect(seqs(s2?.sent ?? [])).toEqual([3, 4]);
  });

  it('uses the renewed token to reconnect', () => {
    const { timers, sockets, c } = setup();
    c.start();
    sockets.all[0]?.recv(welcome(0));
    sockets.all[0]?.recv({ type: 'token', token: 't1', expires_at: 0 });
    sockets.all[0]?.h.onClose(1012, 'server restarting');
    timers.tick(1000);
    expect(sockets.all[1]?.url).toContain('access_token=t1');
  });

  it('resends from the expected number on a gap', () => {
    const { sockets, c } = setup();
    c.start();
    const s = sockets.all[0];
    s?.recv(welcome(0));
    c.send({ type: 'paused', position_ms: 1 });
    c.send({ type: 'paused', position_ms: 2 });
    s?.recv({ type: 'gap', expected: 1, got: 2 });
    expect(seqs(s?.sent ?? [])).toEqual([1, 2, 1, 2]);
  });

  it('stops for good when the session ended, was replaced, or a message was refused', () => {
    for (const [code, state] of [
      [4410, 'ended'],
      [4409, 'replaced'],
      [4400, 'failed'],
    ] as const) {
      const { timers, sockets, c } = setup();
      c.start();
      sockets.all[0]?.recv(welcome(0));
      sockets.all[0]?.h.onClose(code, 'x');
      timers.tick(60_000);
      expect(c.state).toBe(state);
      expect(sockets.all).toHaveLength(1);
    }
  });

  it('gives up after the maximum number of attempts', () => {
    const { timers, sockets, c } = setup();
    c.start();
    for (let i = 0; i < 45; i += 1) {
      sockets.all.at(-1)?.h.onClose(1006, '');
      timers.tick(1000);
    }
    expect(c.state).toBe('failed');
    expect(sockets.all.length).toBeLessThanOrEqual(41);
  });
});
