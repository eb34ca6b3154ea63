/**
 * End-to-end harness: the real `proctor` binary on a free port (temp data dir, fast clock),
 * a TCP proxy in front of it that can drop the network, real headless Chromium (Debian's
 * `chromium` through playwright-core) with a fake camera fed from a .y4m written here, and the
 * platform API to read verdicts. Nothing is mocked.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REPO = resolve(SDK, '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Server clock speed: the 12-minute lesson takes 24 s, a pop-up deadline is 2 s, and the
 * 2 s drift tolerance of R1 is 67 ms of real time (event-loop jitter stays well inside it). */
export const TIME_SCALE = 30;
export const VIDEO_SECONDS = 24;

function proctorBin(): string {
  const candidates = [
    process.env.PROCTOR_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug/proctor'),
    join(REPO, 'target/debug/proctor'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the proctor binary is missing (looked in ${candidates.join(', ')}): run cargo build --workspace`);
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** A TCP proxy that can cut every connection and refuse new ones for a while. */
export class Proxy {
  private readonly sockets = new Set<net.Socket>();
  private cutUntil = 0;
  private wsBlocked = false;
  private readonly wsSockets = new Set<net.Socket>();
  private server: net.Server | undefined;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      if (Date.now() < this.cutUntil) {
        client.destroy();
        return;
      }
      client.once('data', (first: Buffer) => {
        const ws = /^upgrade:\s*websocket/im.test(first.toString('latin1'));
        if (ws && this.wsBlocked) {
          client.destroy();
          return;
        }
        const up = net.connect(this.target, '127.0.0.1');
        up.write(first);
        this.sockets.add(client);
        this.sockets.add(up);
        if (ws) this.wsSockets.add(client);
        client.pipe(up);
        up.pipe(client);
        const end = (): void => {
          client.destroy();
          up.destroy();
          this.sockets.delete(client);
          this.sockets.delete(up);
          this.wsSockets.delete(client);
        };
        client.on('error', end).on('close', end);
        up.on('error', end).on('close', end);
      });
      client.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }

  /** Cuts every WebSocket and refuses new ones (plain HTTP still passes) until unblocked. */
  blockWebSockets(on: boolean): void {
    this.wsBlocked = on;
    if (on) for (const s of this.wsSockets) s.destroy();
  }

  /** Drops the network: every open connection dies, new ones are refused for `ms`. */
  cut(ms: number): void {
    this.cutUntil = Date.now() + ms;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  stop(): void {
    this.cut(0);
    this.server?.close();
  }
}

/** A .y4m clip of noisy frames (I420), so that a camera JPEG carries real entropy. */
function writeY4m(path: string): void {
  const w = 320;
  const h = 240;
  const frames = 8;
  const parts: Buffer[] = [Buffer.from(`YUV4MPEG2 W${w} H${h} F8:1 Ip A1:1 C420jpeg\n`)];
  let x = 12345;
  for (let f = 0; f < frames; f += 1) {
    parts.push(Buffer.from('FRAME\n'));
    const y = Buffer.alloc(w * h);
    for (let i = 0; i < y.length; i += 1) {
      x = (x * 1103515245 + 12345) >>> 0;
      y[i] = 60 + ((x >>> 16) % 160);
    }
    parts.push(y, Buffer.alloc((w * h) / 4, 110), Buffer.alloc((w * h) / 4, 150));
  }
  writeFileSync(path, Buffer.concat(parts));
}

export interface Verdict {
  credited_ms: number;
  wall_ms: number;
  lesson_complete: boolean;
  lesson_coverage_ms: number;
  lesson_duration_ms: number;
  counts: boolean;
  flagged_for_review: boolean;
  rules: { rule: string; status: string }[];
  uncredited: { reason: string; ms: number }[];
  signals: { name: string; detail: string }[];
  coverage: [number, number][];
  termination: string | null;
}

export interface ServerEvent {
  origin: 'server' | 'client';
  seq: number;
  at: number;
  type: string;
  [k: string]: unknown;
}

export class World {
  private child: ChildProcess | undefined;
  private dir = '';
  private output = '';
  proxy: Proxy | undefined;
  browser: Browser | undefined;
  base = '';
  private token = '';
  private camera = '';

  async start(): Promise<void> {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`);
    const bundle = join(SDK, 'dist/proctor.umd.cjs');
    if (!existsSync(bundle)) throw new Error('the SDK bundle is missing: npm run build');
    this.dir = mkdtempSync(join(tmpdir(), 'proctor-e2e-'));
    const assets = join(this.dir, 'assets');
    mkdirSync(join(assets, 'demo'), { recursive: true });
    copyFileSync(bundle, join(assets, 'proctor.umd.cjs'));
    const video = spawnSync(
      process.execPath,
      [join(SDK, 'scripts/make-video.mjs'), '--seconds', String(VIDEO_SECONDS), '--out', join(assets, 'demo/lesson.webm')],
      { encoding: 'utf8' },
    );
    if (video.status !== 0) throw new Error(`could not make the lesson video: ${video.stderr}${video.stdout}`);
    this.camera = join(this.dir, 'camera.y4m');
    writeY4m(this.camera);

    const port = await freePort();
    this.proxy = new Proxy(port);
    await this.proxy.start();
    this.base = `http://127.0.0.1:${this.proxy.port}`;
    this.child = spawn(
      proctorBin(),
      [
        'serve',
        '--listen', `127.0.0.1:${port}`,
        '--public-url', this.base,
        '--data-dir', join(this.dir, 'data'),
        '--time-scale', String(TIME_SCALE),
        // The fake camera shows a test pattern, not a face: the labelled stand-in answers.
        '--face', 'stand-in',
      ],
      { env: { ...process.env, PROCTOR_DEMO_ASSETS: assets, PROCTOR_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const t0 = Date.now();
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (r.ok) break;
      } catch {
        // not up yet
      }
      if (Date.now() - t0 > 30_000 || this.child.exitCode !== null) {
        throw new Error(`proctor serve did not become ready:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const demo = await fetch(`http://127.0.0.1:${port}/demo`);
    if (demo.status !== 200) {
      throw new Error(`${proctorBin()} does not serve /demo (${demo.status}): a stale build? Set PROCTOR_BIN or rebuild.`);
    }
    const creds = JSON.parse(readFileSync(join(this.dir, 'data/demo-credentials.json'), 'utf8')) as {
      client_id: string;
      client_secret: string;
    };
    const tok = await fetch(`${this.base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret }),
    });
    this.token = ((await tok.json()) as { access_token: string }).access_token;

    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        `--use-file-for-fake-video-capture=${this.camera}`,
      ],
    });
  }

  /** Server output so far (for failure messages). */
  log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    this.proxy?.stop();
    if (this.child && this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await new Promise((r) => this.child?.once('exit', r));
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  async context(): Promise<BrowserContext> {
    if (!this.browser) throw new Error('not started');
    return this.browser.newContext({ permissions: ['camera'] });
  }

  private async api<T>(path: string): Promise<T> {
    const r = await fetch(`${this.base}/api/v1${path}`, { headers: { authorization: `Bearer ${this.token}` } });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  /** The verdict, read through the platform API (as a platform would). */
  verdict(sessionId: string): Promise<Verdict> {
    return this.api<Verdict>(`/sessions/${sessionId}/verdict`);
  }

  events(sessionId: string): Promise<ServerEvent[]> {
    return this.api<ServerEvent[]>(`/sessions/${sessionId}/events`);
  }
}

export function rule(v: Verdict, id: string): string {
  return v.rules.find((r) => r.rule === id)?.status ?? 'missing';
}

export function uncredited(v: Verdict, reason: string): number {
  return v.uncredited.find((u) => u.reason === reason)?.ms ?? 0;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens the demo page in `ctx`; `config` is merged into the SDK config. */
export async function openDemo(world: World, ctx: BrowserContext, query = '', config?: object): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  if (config) await page.addInitScript((c) => ((window as unknown as { PROCTOR_DEMO_CONFIG: object }).PROCTOR_DEMO_CONFIG = c), config);
  await page.goto(`${world.base}/demo${query}`);
  return page;
}

/** Clicks "Start lesson with camera", accepts the consent screen, waits until playback is allowed. */
export async function startWithCamera(page: Page): Promise<string> {
  await page.click('#start-face');
  await page.click('[data-proctor=consent-accept]', { timeout: 10_000 });
  await page.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: 20_000 });
  return page.evaluate(() => (window as unknown as { demo: { session: { session_id: string } } }).demo.session.session_id);
}

/** Answers every pop-up shortly after it appears, like an attentive learner (in the page). */
export async function autoAnswer(page: Page, on: boolean): Promise<void> {
  await page.evaluate((enable) => {
    const w = window as unknown as { __answer?: MutationObserver };
    w.__answer?.disconnect();
    if (!enable) return;
    const answer = (): void => {
      for (const d of Array.from(document.querySelectorAll('[data-proctor=popup]'))) {
        const code = /\b(\d{4})\b/.exec(d.querySelector('p')?.textContent ?? '')?.[1];
        const b = code ? d.querySelector<HTMLButtonElement>(`[data-choice="${code}"]`) : null;
        if (b && !b.dataset.clicked) {
          b.dataset.clicked = '1';
          setTimeout(() => b.click(), 120);
        }
      }
    };
    w.__answer = new MutationObserver(answer);
    w.__answer.observe(document.body, { childList: true, subtree: true });
    answer();
  }, on);
}

export async function play(page: Page): Promise<void> {
  await page.evaluate(() => document.querySelector('video')?.play());
}

/** Ends the lesson through the SDK and waits for the page to show the verdict. */
export async function endLesson(page: Page): Promise<void> {
  await page.click('#end');
  await page.waitForFunction(() => !!(window as unknown as { demo: { verdict?: unknown } }).demo.verdict, undefined, {
    timeout: 15_000,
  });
}

export function videoTime(page: Page): Promise<number> {
  return page.evaluate(() => document.querySelector('video')?.currentTime ?? -1);
}

/** What the page saw, for failure messages. */
export async function diagnose(page: Page): Promise<string> {
  return page.evaluate(() => {
    const v = document.querySelector('video');
    const d = (window as unknown as { demo: { events: string[] } }).demo;
    const notices = Array.from(document.querySelectorAll('[data-proctor]')).map((n) => `${n.getAttribute('data-proctor')}: ${n.textContent}`);
    return JSON.stringify(
      { t: v?.currentTime, paused: v?.paused, ended: v?.ended, rate: v?.playbackRate, holds: (d as unknown as { proctor?: { guard: { holdReasons(): string[] } } }).proctor?.guard.holdReasons(), notices, events: d.events.slice(-40) },
      null,
      1,
    );
  });
}

/** Waits until the video has ended, with the page's story on failure. */
export async function waitEnded(page: Page, timeoutMs = 60_000): Promise<void> {
  try {
    await page.waitForFunction(() => document.querySelector('video')?.ended === true, undefined, { timeout: timeoutMs });
  } catch (e) {
    throw new Error(`${String(e)}\n${await diagnose(page)}`);
  }
}
