/** Small shared types of the core. */

/** Undoes what a capture, listener or UI element set up. Calling it twice is harmless. */
export type Disposer = () => void;

/** The part of `HTMLMediaElement` the guard uses; video.js and hls.js adapters provide it too. */
export interface MediaLike {
  currentTime: number;
  readonly duration: number;
  playbackRate: number;
  defaultPlaybackRate: number;
  readonly paused: boolean;
  readonly seeking: boolean;
  readonly ended: boolean;
  play(): Promise<void> | void;
  pause(): void;
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** Why playback is held paused. */
export const HOLD_REASONS = ['popup', 'hidden', 'unfocused', 'identity', 'offline', 'tab', 'ended'] as const;
export type HoldReason = (typeof HOLD_REASONS)[number];

export function once(fn: () => void): Disposer {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

export function listen(target: MediaLike, type: string, fn: () => void): Disposer {
  target.addEventListener(type, fn);
  return once(() => target.removeEventListener(type, fn));
}
