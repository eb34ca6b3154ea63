/** Played ranges: a sorted union of disjoint `[from, to]` intervals in lesson ms, bounded in
 * size (neighbours with the smallest hole between them merge first). */

import type { Segment } from './protocol.js';

export class PlayedSegments {
  private items: [number, number][] = [];

  constructor(private readonly max = 256) {}

  add(from: number, to: number): void {
    if (!(to > from)) return;
    const out: [number, number][] = [];
    let a = from;
    let b = to;
    for (const [x, y] of this.items) {
      if (y < a || x > b) out.push([x, y]);
      else {
        a = Math.min(a, x);
        b = Math.max(b, y);
      }
    }
    out.push([a, b]);
    out.sort((p, q) => p[0] - q[0]);
    while (out.length > this.max) {
      let best = 0;
      for (let i = 1; i < out.length - 1; i += 1) {
        if ((out[i + 1]?.[0] ?? 0) - (out[i]?.[1] ?? 0) < (out[best + 1]?.[0] ?? 0) - (out[best]?.[1] ?? 0)) best = i;
      }
      const l = out[best];
      const r = out[best + 1];
      if (l && r) out.splice(best, 2, [l[0], r[1]]);
    }
    this.items = out;
  }

  /** The union, plus an open range if given (not stored). */
  list(open?: Segment): Segment[] {
    if (!open || !(open[1] > open[0])) return this.items.map(([a, b]) => [a, b] as const);
    const copy = new PlayedSegments(this.max);
    copy.items = this.items.map(([a, b]) => [a, b]);
    copy.add(open[0], open[1]);
    return copy.list();
  }

  /** The xAPI `played-segments` string, in seconds: `0[.]35[,]40[.]52`. */
  toXapi(open?: Segment): string {
    return this.list(open)
      .map(([a, b]) => `${a / 1000}[.]${b / 1000}`)
      .join('[,]');
  }
}
