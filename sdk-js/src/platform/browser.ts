/**
 * The one file that touches browser globals (`window`, `document`, `navigator`, timers,
 * `WebSocket`, `fetch`, Web Locks, `BroadcastChannel`). It implements the core's ports;
 * everything else receives what it needs from here.
 */

import { cameraPort } from '../capture/camera.js';
import type { HttpPort, PagePort, SocketFactory, TabLockPort, Timers } from '../core/ports.js';
import type { Ports } from '../core/proctor.js';
import { inspectPage } from '../core/tamper.js';
import { type Disposer, type MediaLike, once } from '../core/types.js';
import { domUi } from '../ui/dom.js';

export const timers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
  random: () => {
    const a = new Uint32Array(1);
    crypto.getRandomValues(a);
    return (a[0] ?? 0) / 2 ** 32;
  },
};

export const socket: SocketFactory = (url, h) => {
  const ws = new WebSocket(url);
  ws.onopen = () => h.onOpen();
  ws.onmessage = (e: MessageEvent) => {
    if (typeof e.data === 'string') h.onMessage(e.data);
  };
  ws.onclose = (e: CloseEvent) => h.onClose(e.code, e.reason);
  return {
    send: (text) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    close: (code, reason) => ws.close(code, reason),
  };
};

function on(target: EventTarget, type: string, fn: () => void, capture = false): Disposer {
  target.addEventListener(type, fn, capture);
  return once(() => target.removeEventListener(type, fn, capture));
}

export const page: PagePort = {
  visible: () => document.visibilityState === 'visible',
  focused: () => document.hasFocus(),
  onVisibility(fn) {
    return on(document, 'visibilitychange', () => fn(document.visibilityState === 'visible'));
  },
  onFocus(fn) {
    const a = on(window, 'focus', () => fn(true));
    const b = on(window, 'blur', () => fn(false));
    return once(() => {
      a();
      b();
    });
  },
  onLeave(fn) {
    const a = on(window, 'pagehide', fn);
    const b = on(document, 'visibilitychange', () => {
      if (document.visibilityState === 'hidden') fn();
    });
    return once(() => {
      a();
      b();
    });
  },
};

/** Web Locks for the lock itself, BroadcastChannel to tell the holder someone else tried. */
export const tabLock: TabLockPort = {
  async acquire(key, onOtherTab) {
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    const chan = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`proctor:${key}`) : undefined;
    if (!locks) return once(() => chan?.close());
    let release: (() => void) | undefined;
    const held = new Promise<boolean>((resolve) => {
      void locks
        .request(key, { ifAvailable: true }, (lock) => {
          if (!lock) {
            resolve(false);
            return undefined;
          }
          resolve(true);
          return new Promise<void>((r) => {
            release = r;
          });
        })
        .catch(() => resolve(false));
    });
    if (!(await held)) {
      chan?.postMessage({ type: 'opened-elsewhere' });
      chan?.close();
      return undefined;
    }
    if (chan) {
      chan.onmessage = (e: MessageEvent) => {
        if ((e.data as { type?: string } | null)?.type === 'opened-elsewhere') onOtherTab();
      };
    }
    return once(() => {
      chan?.close();
      release?.();
    });
  },
};

export const http: HttpPort = {
  async post(url, token, body, contentType) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
      body,
    });
    let parsed: unknown = null;
    try {
      parsed = await r.json();
    } catch {
      parsed = null;
    }
    return { status: r.status, body: parsed };
  },
  beacon(url, body) {
    try {
      // text/plain keeps the beacon a CORS-simple request (a beacon cannot be preflighted).
      return navigator.sendBeacon(url, new Blob([body], { type: 'text/plain;charset=UTF-8' }));
    } catch {
      return false;
    }
  },
};

export function inspect(media: MediaLike): ReturnType<typeof inspectPage> {
  return inspectPage({
    doc: document,
    docProto: typeof Document === 'function' ? Document.prototype : undefined,
    mediaProto: typeof HTMLMediaElement === 'function' ? HTMLMediaElement.prototype : undefined,
    media,
    webdriver: navigator.webdriver,
    fnToString: (f) => Function.prototype.toString.call(f),
  });
}

export interface BrowserPortOptions {
  readonly container: HTMLElement | undefined;
  readonly deadlineText: string;
  readonly popupTitle: string;
}

/** All ports for a browser page; `dispose` removes the UI. */
export function browserPorts(o: BrowserPortOptions): Ports & { dispose: Disposer } {
  const ui = domUi({
    doc: document,
    container: o.container ?? document.body,
    timers,
    deadlineText: o.deadlineText,
    popupTitle: o.popupTitle,
  });
  return {
    socket,
    timers,
    page,
    tabLock,
    http,
    ui,
    camera: cameraPort(navigator.mediaDevices, document, (ms) => new Promise((r) => setTimeout(r, ms))),
    inspect,
    dispose: ui.dispose,
  };
}

/** Resolves a selector or element to an element. */
export function element<T extends Element>(target: string | T): T | null {
  return typeof target === 'string' ? document.querySelector<T>(target) : target;
}
