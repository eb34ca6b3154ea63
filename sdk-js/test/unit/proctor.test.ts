import { describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../src/core/config.js';
import { type CameraPort, ProctorSession, type UiPort } from '../../src/core/proctor.js';
import type { Challenge } from '../../src/core/protocol.js';
import { inspectCameraLabels, inspectPage } from '../../src/core/tamper.js';
import { FakeMedia, FakeTimers, fakeSockets, welcome } from './fakes.js';

function setup(
  identity: 'face' | 'manual',
  camera?: CameraPort,
  respond: (url: string) => { status: number; body: unknown } = () => ({ status: 201, body: { passed: true } }),
  activeLiveness = false,
) {
  const timers = new FakeTimers();
  const sockets = fakeSockets();
  const media = new FakeMedia();
  const popups: { ch: Challenge; answer: (c: string) => void; closed: boolean }[] = [];
  const notices: string[] = [];
  const posts: string[] = [];
  const beacons: { url: string; body: string }[] = [];
  let leave: () => void = () => undefined;
  const ui: UiPort = {
    consent: () => Promise.resolve(true),
    notice: (_k, text, action) => {
      notices.push(text);
      if (action && text.includes('missed')) setTimeout(() => action.run(), 0);
      return () => undefined;
    },
    popup: (ch, _d, onAnswer) => {
      const p = { ch, answer: onAnswer, closed: false };
      popups.push(p);
      return () => {
        p.closed = true;
      };
    },
  };
  const session: SessionInfo = { session_id: 's1', learner_token: 't', ws_url: 'ws://h/api/v1/sessions/s1/ws', identity_check: identity };
  const p = new ProctorSession(
    session,
    media,
    {
      socket: sockets.factory,
      timers,
      page: {
        visible: () => true,
        focused: () => true,
        onVisibility: () => () => undefined,
        onFocus: () => () => undefined,
        onLeave: (fn) => {
          leave = fn;
          return () => undefined;
        },
      },
      tabLock: undefined,
      http: {
        post: (url) => {
          posts.push(url);
          return Promise.resolve(respond(url));
        },
        beacon: (url, body) => {
          beacons.push({ url, body });
          return true;
        },
      },
      ui,
      camera,
      inspect: () => [],
    },
    { tabLock: false, activeLiveness, livenessStepMs: 1 },
  );
  return { timers, sockets, media, p, popups, notices, posts, beacons, leave: () => leave() };
}

const sentTypes = (s: { sent: string[] } | undefined) => (s?.sent ?? []).map((t) => JSON.parse(t) as { type: string; seq: number });

describe('ProctorSession', () => {
  it('takes the manual path, then pauses for a pop-up, answers it and resumes from the last reported position', async () => {
    const { timers, sockets, media, p, popups } = setup('manual');
    expect(await p.start()).toBe('ready');
    const s = sockets.all[0];
    s?.recv(welcome(0));
    void media.play();
    for (let i = 0; i < 40; i += 1) {
      timers.tick(250);
      media.advance(0.25);
    } // 10 s, heartbeats every 5 s
    s?.recv({ type: 'challenge', nonce: 'n1', kind: 'popup', deadline: 0, deadline_in_ms: 60_000, choices: ['1234', '5678'], prompt: 'Pick 1234' });
    expect(media.paused).toBe(true);
    expect(popups).toHaveLength(1);
    popups[0]?.answer('1234');
    expect(popups[0]?.closed).toBe(true);
    expect(media.paused).toBe(false);
    // The last heartbeat (at 10 s of wall time) reported 9.75 s: playback resumes there.
    expect(media.currentTime).toBe(9.75);
    const sent = sentTypes(s);
    expect(sent.map((m) => m.type)).toContain('challenge_answered');
    expect(sent.map((m) => m.seq)).toEqual(sent.map((_, i) => i + 1));
  });

  it('shows the missed notice at the deadline and keeps playback paused until the learner continues', async () => {
    const { timers, sockets, media, p, notices } = setup('manual');
    await p.start();
    sockets.all[0]?.recv(welcome(0));
    void media.play();
    sockets.all[0]?.recv({ type: 'challenge', nonce: 'n1', kind: 'popup', deadline: 0, deadline_in_ms: 60_000, choices: ['1'], prompt: 'p' });
    timers.tick(59_000);
    expect(notices.some((n) => n.includes('missed'))).toBe(false);
    timers.tick(2000);
    expect(notices.some((n) => n.includes('missed'))).toBe(true);
    expect(media.paused).toBe(true);
  });

  it('runs the face check before playback and uploads snapshots the server asks for', async () => {
    const camera: CameraPort = {
      open: () => Promise.resolve({ labels: ['OBS Virtual Camera'], stop: () => undefined, grab: () => Promise.resolve(new Blob(['x'], { type: 'image/jpeg' })) }),
    };
    const { sockets, p, posts } = setup('face', camera);
    expect(await p.start()).toBe('ready');
    expect(posts[0]).toBe('http://h/api/v1/sessions/s1/face-checks');
    sockets.all[0]?.recv(welcome(0));
    sockets.all[0]?.recv({ type: 'challenge', nonce: 'n9', kind: 'snapshot', deadline: 0, deadline_in_ms: 60_000, prompt: 'photo' });
    await new Promise((r) => setTimeout(r, 0));
    expect(posts[1]).toBe('http://h/api/v1/sessions/s1/snapshots?nonce=n9');
    expect(sentTypes(sockets.all[0]).find((m) => m.type === 'signal')).toMatchObject({ name: 'virtual_camera' });
  });

  it('runs the active liveness challenge: one frame per step, all sent to the nonce', async () => {
    const grabs: number[] = [];
    const camera: CameraPort = {
      open: () =>
        Promise.resolve({
          labels: [],
          stop: () => undefined,
          grab: () => {
            grabs.push(grabs.length);
            return Promise.resolve(new Blob([`frame${grabs.length}`], { type: 'image/jpeg' }));
          },
        }),
    };
    const respond = (url: string) =>
      url.endsWith('/liveness-challenges')
        ? { status: 201, body: { nonce: 'nz', steps: ['turn_left', 'face_camera'], prompts: ['Turn left', 'Look'] } }
        : { status: 201, body: { passed: url.endsWith('/liveness-challenges/nz') } };
    const { p, posts, notices, timers } = setup('face', camera, respond, true);
    const started = p.start();
    for (let i = 0; i < 20 && grabs.length < 2; i += 1) {
      await new Promise((r) => setTimeout(r, 0));
      timers.tick(5);
    }
    expect(await started).toBe('ready');
    expect(posts).toEqual([
      'http://h/api/v1/sessions/s1/liveness-challenges',
      'http://h/api/v1/sessions/s1/liveness-challenges/nz',
    ]);
    expect(grabs.length).toBe(2);
    expect(notices.some((n) => n.includes('1/2 Turn left'))).toBe(true);
  });

  it('switches to the active challenge when the server refuses a plain check', async () => {
    const camera: CameraPort = {
      open: () => Promise.resolve({ labels: [], stop: () => undefined, grab: () => Promise.resolve(new Blob(['x'], { type: 'image/jpeg' })) }),
    };
    const respond = (url: string) =>
      url.endsWith('/face-checks')
        ? { status: 409, body: { detail: 'active challenge required' } }
        : url.endsWith('/liveness-challenges')
          ? { status: 201, body: { nonce: 'n1', steps: ['face_camera', 'turn_right'], prompts: ['a', 'b'] } }
          : { status: 201, body: { passed: true } };
    const { p, posts, timers } = setup('face', camera, respond);
    const started = p.start();
    for (let i = 0; i < 20; i += 1) {
      await new Promise((r) => setTimeout(r, 0));
      timers.tick(5);
    }
    expect(await started).toBe('ready');
    expect(posts[0]).toBe('http://h/api/v1/sessions/s1/face-checks');
    expect(posts[2]).toBe('http://h/api/v1/sessions/s1/liveness-challenges/n1');
  });

  it('explains a denied camera and waits for Retry', async () => {
    const { p, notices } = setup('face', {
      open: () => Promise.reject(Object.assign(new Error('denied'), { name: 'NotAllowedError' })),
    });
    void p.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(p.state).toBe('identity');
    expect(notices.some((n) => n.includes('camera'))).toBe(true);
  });
});

describe('page leave', () => {
  it('beacons what the server lacks only while the socket is down, numbered as the socket would', async () => {
    const { sockets, p, beacons, leave } = setup('manual');
    await p.start();
    sockets.all[0]?.recv(welcome(0));
    leave();
    expect(beacons).toHaveLength(0); // the open socket carries the last heartbeat
    sockets.all[0]?.recv({ type: 'ack', seq: 1, duplicate: false });
    sockets.all[0]?.h.onClose(1006, '');
    p.send({ type: 'paused', position_ms: 0 });
    leave();
    expect(beacons).toHaveLength(1);
    expect(beacons[0]?.url).toBe('http://h/api/v1/sessions/s1/beacon?access_token=t');
    const frames = JSON.parse(beacons[0]?.body ?? '[]') as { seq: number; type: string }[];
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 2));
    expect(frames.map((f) => f.type)).toContain('paused');
  });
});

describe('tamper checks', () => {
  const native = { get: Object.getOwnPropertyDescriptor(Map.prototype, 'size')?.get };
  const fnToString = (f: unknown) => Function.prototype.toString.call(f as () => void);

  it('finds overridden getters on the instance or the prototype, and automation', () => {
    const docProto = {};
    Object.defineProperty(docProto, 'visibilityState', { get: native.get });
    Object.defineProperty(docProto, 'hasFocus', { value: () => true });
    const doc = Object.create(docProto) as object;
    Object.defineProperty(doc, 'hidden', { value: false });
    const found = inspectPage({ doc, docProto, mediaProto: undefined, media: undefined, webdriver: true, fnToString });
    expect(found.map((f) => f.detail)).toEqual([
      'document.hidden is overridden on the instance',
      "document.prototype.hasFocus is not the browser's own",
      'navigator.webdriver is true',
    ]);
  });

  it('names virtual cameras by their labels', () => {
    expect(inspectCameraLabels(['Integrated Camera (04f2:b6dd)', 'OBS Virtual Camera']).map((f) => f.name)).toEqual(['virtual_camera']);
  });
});
