/**
 * Tamper and environment signals. Each finding is a hint for a reviewer (the server flags the
 * session), never proof: extensions and assistive tools can trip them too. The objects to
 * inspect are passed in; this module reads no globals.
 */

export interface Finding {
  readonly name: string;
  readonly detail: string;
}

export interface TamperTargets {
  readonly doc: object;
  readonly docProto: object | undefined;
  readonly mediaProto: object | undefined;
  readonly media: object | undefined;
  readonly webdriver: boolean | undefined;
  readonly fnToString: (fn: unknown) => string;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

function isNative(t: TamperTargets, fn: unknown): boolean {
  if (typeof fn !== 'function') return false;
  try {
    return NATIVE.test(t.fnToString(fn));
  } catch {
    return false;
  }
}

/** Accessors and methods whose override on the instance or the prototype is suspicious. */
function checkProperty(t: TamperTargets, inst: object | undefined, proto: object | undefined, prop: string, what: string): Finding[] {
  const out: Finding[] = [];
  if (inst && Object.prototype.hasOwnProperty.call(inst, prop)) {
    out.push({ name: 'tamper_override', detail: `${what}.${prop} is overridden on the instance` });
  }
  const d = proto ? Object.getOwnPropertyDescriptor(proto, prop) : undefined;
  if (d) {
    const parts: unknown[] = 'value' in d ? [d.value] : [d.get, d.set];
    for (const f of parts) {
      if (f !== undefined && !isNative(t, f)) {
        out.push({ name: 'tamper_override', detail: `${what}.prototype.${prop} is not the browser's own` });
        break;
      }
    }
  }
  return out;
}

/** Inspects the page for overridden browser APIs and automation. */
export function inspectPage(t: TamperTargets): Finding[] {
  const out: Finding[] = [
    ...checkProperty(t, t.doc, t.docProto, 'visibilityState', 'document'),
    ...checkProperty(t, t.doc, t.docProto, 'hidden', 'document'),
    ...checkProperty(t, t.doc, t.docProto, 'hasFocus', 'document'),
  ];
  for (const p of ['playbackRate', 'currentTime', 'play', 'pause', 'paused']) {
    out.push(...checkProperty(t, t.media, t.mediaProto, p, 'HTMLMediaElement'));
  }
  if (t.webdriver === true) out.push({ name: 'automation', detail: 'navigator.webdriver is true' });
  return out;
}

const VIRTUAL_CAMERA =
  /\b(obs|virtual|manycam|snap camera|xsplit|e2esoft|vcam|splitcam|droidcam|camtwist|youcam|fake|dummy|v4l2loopback)/i;

/** Camera device labels that name a virtual camera. */
export function inspectCameraLabels(labels: readonly string[]): Finding[] {
  return labels
    .filter((l) => VIRTUAL_CAMERA.test(l))
    .map((l) => ({ name: 'virtual_camera', detail: `camera device "${l.slice(0, 200)}" looks virtual` }));
}
