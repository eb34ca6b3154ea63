/** The ports the core needs from a platform. `platform/browser.ts` implements them for
 * browsers; tests implement them with fakes. */

import type { Disposer } from './types.js';

export interface SocketHandlers {
  onOpen(): void;
  onMessage(text: string): void;
  onClose(code: number, reason: string): void;
}

export interface SocketLike {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string, handlers: SocketHandlers) => SocketLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Monotonic milliseconds. */
  now(): number;
  /** Uniform in [0, 1). */
  random(): number;
}

/** The page: visibility, focus, and the moment it goes away. */
export interface PagePort {
  visible(): boolean;
  focused(): boolean;
  onVisibility(fn: (visible: boolean) => void): Disposer;
  onFocus(fn: (focused: boolean) => void): Disposer;
  /** The page is being hidden for good or frozen (pagehide / visibilitychange hidden). */
  onLeave(fn: () => void): Disposer;
}

/** A one-tab courtesy lock. */
export interface TabLockPort {
  /** Resolves to a release function, or `undefined` if another tab holds the lock. */
  acquire(key: string, onOtherTab: () => void): Promise<Disposer | undefined>;
}

/** HTTP uploads of images (face checks, snapshots) and beacons. */
export interface HttpPort {
  post(url: string, token: string, body: Blob, contentType: string): Promise<{ status: number; body: unknown }>;
  /** Best effort on page hide; false if the browser refused it. */
  beacon(url: string, body: string): boolean;
}
