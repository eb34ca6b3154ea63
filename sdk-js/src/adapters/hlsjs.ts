/**
 * hls.js adapter: hls.js plays into an ordinary `<video>`, so the guard watches that element;
 * this helper waits until hls.js has attached it and resolves with it.
 *
 * ```ts
 * import { fromHls } from '@proctor/sdk/hlsjs';
 * const hls = new Hls(); hls.loadSource(url); hls.attachMedia(videoEl);
 * createProctor({ session, video: await fromHls(hls) }).start();
 * ```
 */

import type { MediaLike } from '../core/types.js';

/** The part of an `Hls` instance used here (no dependency on hls.js itself). */
export interface HlsLike {
  readonly media: (MediaLike & object) | null;
  once(event: string, fn: () => void): unknown;
}

/** hls.js's `Hls.Events.MEDIA_ATTACHED`. */
export const MEDIA_ATTACHED = 'hlsMediaAttached';

export function fromHls(hls: HlsLike): Promise<MediaLike> {
  if (hls.media) return Promise.resolve(hls.media);
  return new Promise((resolve, reject) => {
    hls.once(MEDIA_ATTACHED, () => (hls.media ? resolve(hls.media) : reject(new Error('hls.js attached no media'))));
  });
}
