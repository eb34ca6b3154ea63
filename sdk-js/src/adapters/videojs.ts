/**
 * video.js adapter: presents a video.js player as the `MediaLike` the guard needs, so the
 * guard works through the player's API (and its tech, e.g. HLS) rather than around it.
 *
 * ```ts
 * import { createProctor } from '@proctor/sdk';
 * import { fromVideoJs } from '@proctor/sdk/videojs';
 * createProctor({ session, video: fromVideoJs(videojs('lesson')) }).start();
 * ```
 */

import type { MediaLike } from '../core/types.js';

/** The part of a video.js `Player` used here (no dependency on video.js itself). */
export interface VideoJsPlayerLike {
  currentTime(): number;
  currentTime(t: number): unknown;
  duration(): number;
  playbackRate(): number;
  playbackRate(r: number): unknown;
  defaultPlaybackRate?(): number;
  defaultPlaybackRate?(r: number): unknown;
  paused(): boolean;
  seeking(): boolean;
  ended(): boolean;
  play(): Promise<void> | undefined;
  pause(): unknown;
  on(type: string, fn: () => void): unknown;
  off(type: string, fn: () => void): unknown;
}

export function fromVideoJs(p: VideoJsPlayerLike): MediaLike {
  return {
    get currentTime() {
      return p.currentTime();
    },
    set currentTime(t: number) {
      p.currentTime(t);
    },
    get duration() {
      return p.duration();
    },
    get playbackRate() {
      return p.playbackRate();
    },
    set playbackRate(r: number) {
      p.playbackRate(r);
    },
    get defaultPlaybackRate() {
      return p.defaultPlaybackRate ? p.defaultPlaybackRate() : 1;
    },
    set defaultPlaybackRate(r: number) {
      p.defaultPlaybackRate?.(r);
    },
    get paused() {
      return p.paused();
    },
    get seeking() {
      return p.seeking();
    },
    get ended() {
      return p.ended();
    },
    play: () => p.play() ?? undefined,
    pause: () => {
      p.pause();
    },
    addEventListener: (type, fn) => {
      p.on(type, fn);
    },
    removeEventListener: (type, fn) => {
      p.off(type, fn);
    },
  };
}
