/**
 * proctor's learner SDK. A platform's lesson page calls `createProctor` with the session its
 * server started (`POST /api/v1/sessions`) and the `<video>` element:
 *
 * ```ts
 * const proctor = createProctor({ session, video: '#lesson' });
 * proctor.on('credit', (c) => console.log(c.credited_ms));
 * await proctor.start();
 * ```
 */

import type { ProctorConfig, SessionInfo } from './core/config.js';
import { DEFAULT_TEXTS } from './core/config.js';
import { ProctorSession } from './core/proctor.js';
import type { MediaLike } from './core/types.js';
import { browserPorts, element, tabLock } from './platform/browser.js';

export * from './core/index.js';

export interface CreateOptions extends ProctorConfig {
  /** The session from the platform's server. */
  readonly session: SessionInfo;
  /** The lesson's media element (or a selector), or an adapter's `MediaLike`. */
  readonly video: string | HTMLMediaElement | MediaLike;
  /** Where the SDK's UI (consent, pop-ups, notices) goes; default: the video's parent. */
  readonly container?: string | HTMLElement;
}

export interface Proctor extends ProctorSession {
  /** Removes the UI and stops the session. */
  destroy(): void;
}

/** Creates the learner session for one lesson page. Nothing happens until `start()`. */
export function createProctor(o: CreateOptions): Proctor {
  const media = (typeof o.video === 'string' ? element<HTMLMediaElement>(o.video) : o.video) as MediaLike | null;
  if (!media) throw new Error(`proctor: no media element ${String(o.video)}`);
  const container =
    (o.container !== undefined ? element<HTMLElement>(o.container) : null) ??
    ((media as Partial<HTMLMediaElement>).parentElement ?? undefined);
  const texts = { ...DEFAULT_TEXTS, ...(o.texts ?? {}) };
  const ports = browserPorts({ container, deadlineText: texts.popupDeadline, popupTitle: texts.popupTitle });
  const s = new ProctorSession(o.session, media, ports, o) as Proctor;
  s.destroy = () => {
    s.stop();
    ports.dispose();
  };
  return s;
}

/**
 * Takes the one-tab lock before the page asks its server for a session, so that a second tab
 * is told at once. Resolves to a release function, or `undefined` when another tab holds it.
 */
export function claimTab(key = 'proctor-lesson', onOtherTab: () => void = () => undefined): Promise<(() => void) | undefined> {
  return tabLock.acquire(key, onOtherTab);
}
