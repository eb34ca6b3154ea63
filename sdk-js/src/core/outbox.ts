/**
 * The client's sequence numbers and its bounded offline queue.
 *
 * Messages are numbered only when they are handed to an open socket, so that dropping a
 * message from a full queue never leaves a hole in the sequence the server would refuse.
 * Numbered messages stay "in flight" until acknowledged; after a reconnect `welcome.last_seq`
 * says which of them the server already holds, and the rest are resent with their original
 * numbers (the server acknowledges resends it already had as duplicates and ignores them).
 *
 * Invariant: in-flight sequence numbers are consecutive and start at `ackedSeq + 1`.
 */

import type { ClientBody, ClientFrame } from './protocol.js';

export interface OutboxOptions {
  /** Most un-numbered messages kept while offline. Default 500. */
  readonly maxQueued: number;
}

export const DEFAULT_OUTBOX: OutboxOptions = { maxQueued: 500 };

export class Outbox {
  private readonly queued: ClientBody[] = [];
  private readonly inflight: ClientFrame[] = [];
  private acked = 0;
  private dropped = 0;

  constructor(private readonly opts: OutboxOptions = DEFAULT_OUTBOX) {}

  /** Highest sequence number the server acknowledged. */
  get ackedSeq(): number {
    return this.acked;
  }

  /** The next sequence number to be assigned. */
  get nextSeq(): number {
    const last = this.inflight[this.inflight.length - 1];
    return (last ? last.seq : this.acked) + 1;
  }

  /** Messages dropped because the queue was full (heartbeats first). */
  get droppedCount(): number {
    return this.dropped;
  }

  get queuedCount(): number {
    return this.queued.length;
  }

  get inflightCount(): number {
    return this.inflight.length;
  }

  /** Nothing is waiting to be sent or acknowledged. */
  get idle(): boolean {
    return this.queued.length === 0 && this.inflight.length === 0;
  }

  /** Queues a message. When full, the oldest heartbeat goes first (a later one supersedes it),
   * then the oldest message of any kind. */
  enqueue(body: ClientBody): void {
    this.queued.push(body);
    while (this.queued.length > this.opts.maxQueued) {
      const hb = this.queued.findIndex((m) => m.type === 'heartbeat');
      this.queued.splice(hb >= 0 ? hb : 0, 1);
      this.dropped += 1;
    }
  }

  /** Numbers every queued message and returns them for sending. */
  take(): ClientFrame[] {
    const out: ClientFrame[] = [];
    let seq = this.nextSeq;
    for (const body of this.queued.splice(0)) {
      const frame = { ...body, seq } as ClientFrame;
      seq += 1;
      this.inflight.push(frame);
      out.push(frame);
    }
    return out;
  }

  /** The server accepted `seq` (acceptance is in order, so everything before it too). */
  ack(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    while (this.inflight.length > 0 && (this.inflight[0]?.seq ?? Infinity) <= seq) this.inflight.shift();
  }

  /** After `welcome`: forget what the server holds and return the rest, to resend in order. */
  resume(lastSeq: number): ClientFrame[] {
    if (lastSeq > this.acked && this.inflight.length === 0 && lastSeq >= this.nextSeq) {
      // The server knows more than we do (e.g. a page reload with a fresh SDK): continue after it.
      this.acked = lastSeq;
      return [];
    }
    this.ack(lastSeq);
    return [...this.inflight];
  }

  /** After `gap`: resend from `expected`. */
  resendFrom(expected: number): ClientFrame[] {
    return this.inflight.filter((f) => f.seq >= expected);
  }

  /** Everything not yet acknowledged, numbered or not (for a last-chance beacon). */
  pending(): { readonly inflight: readonly ClientFrame[]; readonly queued: readonly ClientBody[] } {
    return { inflight: [...this.inflight], queued: [...this.queued] };
  }
}
