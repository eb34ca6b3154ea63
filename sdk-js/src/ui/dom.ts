/**
 * The SDK's own UI, built on an injected `Document` (never the global): the consent screen,
 * notices, and the pop-up check. Accessible: dialogs are `role="dialog"`/`alertdialog` with
 * labels, keyboard operable, focus is trapped inside a dialog while it is open and restored
 * after, notices are live regions, and the deadline is shown and announced.
 */

import type { NoticeAction, NoticeKind, UiPort } from '../core/proctor.js';
import type { Challenge } from '../core/protocol.js';
import type { Timers } from '../core/ports.js';
import { type Disposer, once } from '../core/types.js';

const CSS = `
.pr-layer{position:absolute;inset:0;z-index:2147483000;background:rgba(0,0,0,.55);font:16px/1.45 system-ui,sans-serif}
.pr-dialog{position:absolute;max-width:min(26rem,90%);background:#fff;color:#111;border-radius:8px;padding:1rem 1.25rem;box-shadow:0 6px 30px rgba(0,0,0,.4)}
.pr-dialog h2{font-size:1.1rem;margin:0 0 .5rem}
.pr-dialog button,.pr-notice button{font:inherit;margin:.25rem .5rem .25rem 0;padding:.45rem .9rem;border-radius:6px;border:1px solid #245;background:#f3f6fa;cursor:pointer}
.pr-dialog button:focus-visible,.pr-notice button:focus-visible{outline:3px solid #1a66ff;outline-offset:2px}
.pr-deadline{font-weight:600;color:#a40000}
.pr-notices{position:absolute;left:0;right:0;bottom:0;z-index:2147483001;font:15px/1.4 system-ui,sans-serif}
.pr-notice{margin:.4rem;padding:.6rem .8rem;border-radius:6px;background:#eef4ff;color:#111;border-left:5px solid #1a66ff}
.pr-notice[data-kind=warning]{background:#fff6e0;border-color:#c77800}
.pr-notice[data-kind=error]{background:#ffecec;border-color:#b00020}
`;

const FOCUSABLE = 'button,[href],input,select,textarea,[tabindex]:not([tabindex="-1"])';

export interface DomUiOptions {
  readonly doc: Document;
  /** Where the UI is placed (positioned relative); usually the video's wrapper. */
  readonly container: HTMLElement;
  readonly timers: Timers;
  readonly deadlineText: string;
  readonly popupTitle: string;
}

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Keeps Tab and Shift+Tab inside `root`; returns the disposer that also restores focus. */
function trapFocus(doc: Document, root: HTMLElement): Disposer {
  const before = doc.activeElement as HTMLElement | null;
  const onKey = (e: KeyboardEvent): void => {
    if (e.key !== 'Tab') return;
    const items = Array.from(root.querySelectorAll<HTMLElement>(FOCUSABLE));
    const first = items[0];
    const last = items[items.length - 1];
    if (!first || !last) return;
    if (e.shiftKey && doc.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && doc.activeElement === last) {
      e.preventDefault();
      first.focus();
    } else if (!root.contains(doc.activeElement)) {
      e.preventDefault();
      first.focus();
    }
  };
  doc.addEventListener('keydown', onKey, true);
  return once(() => {
    doc.removeEventListener('keydown', onKey, true);
    before?.focus?.();
  });
}

export function domUi(o: DomUiOptions): UiPort & { dispose: Disposer } {
  const { doc, container, timers } = o;
  const style = el(doc, 'style', {}, CSS);
  doc.head.appendChild(style);
  if (!container.style.position) container.style.position = 'relative';
  const notices = el(doc, 'div', { class: 'pr-notices', role: 'status', 'aria-live': 'polite' });
  container.appendChild(notices);
  let seq = 0;
  const id = (p: string): string => `pr-${p}-${(seq += 1)}`;

  function layer(dialog: HTMLElement, labelId: string, descId: string, role: 'dialog' | 'alertdialog'): Disposer {
    const wrap = el(doc, 'div', { class: 'pr-layer' });
    dialog.setAttribute('role', role);
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-labelledby', labelId);
    dialog.setAttribute('aria-describedby', descId);
    dialog.classList.add('pr-dialog');
    wrap.appendChild(dialog);
    container.appendChild(wrap);
    const untrap = trapFocus(doc, dialog);
    dialog.querySelector<HTMLElement>('button')?.focus();
    return once(() => {
      untrap();
      wrap.remove();
    });
  }

  return {
    consent(title, body, accept, decline) {
      return new Promise<boolean>((resolve) => {
        const d = el(doc, 'div', { 'data-proctor': 'consent' });
        const h = el(doc, 'h2', { id: id('t') }, title);
        const p = el(doc, 'p', { id: id('d') }, body);
        const yes = el(doc, 'button', { type: 'button', 'data-proctor': 'consent-accept' }, accept);
        const no = el(doc, 'button', { type: 'button', 'data-proctor': 'consent-decline' }, decline);
        d.append(h, p, yes, no);
        d.style.left = '50%';
        d.style.top = '50%';
        d.style.transform = 'translate(-50%,-50%)';
        const close = layer(d, h.id, p.id, 'dialog');
        yes.addEventListener('click', () => {
          close();
          resolve(true);
        });
        no.addEventListener('click', () => {
          close();
          resolve(false);
        });
      });
    },

    notice(kind: NoticeKind, text: string, action?: NoticeAction) {
      const n = el(doc, 'div', { class: 'pr-notice', 'data-kind': kind, 'data-proctor': 'notice' });
      if (kind === 'error') n.setAttribute('role', 'alert');
      n.appendChild(el(doc, 'span', {}, text));
      if (action) {
        const b = el(doc, 'button', { type: 'button', 'data-proctor': 'notice-action' }, action.label);
        b.addEventListener('click', () => action.run());
        n.appendChild(b);
      }
      notices.appendChild(n);
      if (action) n.querySelector('button')?.focus();
      return once(() => n.remove());
    },

    popup(ch: Challenge, deadlineAt: number, onAnswer: (code: string) => void) {
      const d = el(doc, 'div', { 'data-proctor': 'popup', 'data-nonce': ch.nonce });
      const h = el(doc, 'h2', { id: id('t') }, o.popupTitle);
      const p = el(doc, 'p', { id: id('d') }, ch.prompt);
      const timer = el(doc, 'p', { class: 'pr-deadline', role: 'timer', 'aria-live': 'off' });
      const group = el(doc, 'div', { role: 'group', 'aria-label': ch.prompt });
      for (const c of ch.choices ?? []) {
        const b = el(doc, 'button', { type: 'button', 'data-choice': c }, c);
        b.addEventListener('click', () => onAnswer(c));
        group.appendChild(b);
      }
      d.append(h, p, group, timer);
      // Random placement: a bot cannot click a fixed spot, and the learner must look.
      d.style.left = `${Math.round(5 + timers.random() * 45)}%`;
      d.style.top = `${Math.round(5 + timers.random() * 45)}%`;
      let t: unknown;
      let announced = false;
      const tick = (): void => {
        const left = Math.max(0, Math.ceil((deadlineAt - timers.now()) / 1000));
        timer.textContent = o.deadlineText.replace('{s}', String(left));
        if (left <= 10 && !announced) {
          announced = true;
          timer.setAttribute('aria-live', 'assertive');
        }
        if (left > 0) t = timers.setTimeout(tick, 250);
      };
      tick();
      const close = layer(d, h.id, p.id, 'alertdialog');
      return once(() => {
        timers.clearTimeout(t);
        close();
      });
    },

    dispose: once(() => {
      notices.remove();
      style.remove();
    }),
  };
}
