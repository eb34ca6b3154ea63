/**
 * The learner socket with resume: connects, waits for `welcome`, resends what the server has
 * not accepted (with the original sequence numbers), then streams new messages; reconnects
 * with jittered backoff on any close that is not final. Platform-agnostic: the socket and the
 * timers are ports.
 */

import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from './backoff.js';
import { Outbox } from './outbox.js';
import type { SocketFactory, SocketLike, Timers } from './ports.js';
import { type ClientBody, type ServerMsg, type Welcome, closeAction, parseServerMsg } from './protocol.js';

export const CONNECTION_STATES = ['idle', 'connecting', 'open', 'waiting', 'ended', 'replaced', 'failed', 'stopped'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

export interface ConnectionOptions {
  readonly wsUrl: string;
  readonly token: string;
  readonly socket: SocketFactory;
  readonly timers: Timers;
  readonly outbox: Outbox;
  readonly backoff?: BackoffOptions;
  /** Give up after this many consecutive failed attempts. Default 40. */
  readonly maxAttempts?: number;
  readonly onMessage: (msg: ServerMsg) => void;
  readonly onState: (state: ConnectionState, detail: string) => void;
}

export class Connection {
  private sock: SocketLike | undefined;
  private st: ConnectionState = 'idle';
  private attempt = 0;
  private retry: unknown;
  private tok: string;
  private byUs = false;
  private welcomed: Welcome | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.tok = o.token;
  }

  get state(): ConnectionState {
    return this.st;
  }

  /** The freshest learner token (the server renews it on open sockets). */
  get token(): string {
    return this.tok;
  }

  get welcome(): Welcome | undefined {
    return this.welcomed;
  }

  get outbox(): Outbox {
    return this.o.outbox;
  }

  start(): void {
    if (this.st === 'idle' || this.st === 'waiting') this.open();
  }

  /** Queues a message; it goes out now if the socket is open, else after the next resume. */
  send(body: ClientBody): void {
    if (this.final()) return;
    this.o.outbox.enqueue(body);
    if (this.st === 'open') this.flush();
  }

  /** Closes for good (1000). */
  stop(): void {
    this.o.timers.clearTimeout(this.retry);
    this.byUs = true;
    const s = this.sock;
    this.sock = undefined;
    if (!this.final()) this.set('stopped', 'stopped by the page');
    s?.close(1000, 'client stopped');
  }

  /** Drops the socket as a network failure would (tests and "reconnect now" buttons). */
  drop(): void {
    const s = this.sock;
    if (s) this.onClose(s, 1006, 'dropped by the client');
    s?.close(1000, 'dropped');
  }

  private final(): boolean {
    return this.st === 'ended' || this.st === 'replaced' || this.st === 'failed' || this.st === 'stopped';
  }

  private set(state: ConnectionState, detail: string): void {
    this.st = state;
    this.o.onState(state, detail);
  }

  private open(): void {
    this.set('connecting', `attempt ${this.attempt + 1}`);
    this.byUs = false;
    const url = `${this.o.wsUrl}${this.o.wsUrl.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(this.tok)}`;
    let sock: SocketLike | undefined;
    const handlers = {
      onOpen: () => undefined,
      onMessage: (text: string) => {
        if (sock && sock === this.sock) this.onText(text);
      },
      onClose: (code: number, reason: string) => {
        if (sock) this.onClose(sock, code, reason);
      },
    };
    try {
      sock = this.o.socket(url, handlers);
      this.sock = sock;
    } catch (e) {
      this.scheduleRetry(`could not open the socket: ${String(e)}`);
    }
  }

  private onText(text: string): void {
    const msg = parseServerMsg(text);
    if (!msg) return;
    switch (msg.type) {
      case 'welcome': {
        this.welcomed = msg;
        this.attempt = 0;
        // Resend and flush before announcing `open`: listeners send on `open`, and their
        // messages must follow the resent ones (and not be resent themselves).
        for (const f of this.o.outbox.resume(msg.last_seq)) this.sock?.send(JSON.stringify(f));
        this.st = 'open';
        this.flush();
        this.set('open', `resumed after seq ${msg.last_seq}`);
        break;
      }
      case 'ack':
        this.o.outbox.ack(msg.seq);
        break;
      case 'gap':
        for (const f of this.o.outbox.resendFrom(msg.expected)) this.sock?.send(JSON.stringify(f));
        break;
      case 'token':
        this.tok = msg.token;
        break;
      case 'challenge':
      case 'credit':
      case 'warning':
      case 'error':
      case 'ended':
        break;
    }
    this.o.onMessage(msg);
  }

  private flush(): void {
    const s = this.sock;
    if (!s) return;
    for (const f of this.o.outbox.take()) s.send(JSON.stringify(f));
  }

  private onClose(sock: SocketLike, code: number, reason: string): void {
    if (sock !== this.sock) return;
    this.sock = undefined;
    if (this.final()) return;
    switch (closeAction(code, this.byUs)) {
      case 'stop':
        this.set('stopped', reason);
        break;
      case 'ended':
        this.set('ended', reason || 'the session has ended');
        break;
      case 'replaced':
        this.set('replaced', reason || 'replaced by a newer connection');
        break;
      case 'fatal':
        this.set('failed', `the server refused a message (${code}): ${reason}`);
        break;
      case 'reconnect':
        this.scheduleRetry(`closed (${code}${reason ? `: ${reason}` : ''})`);
        break;
    }
  }

  private scheduleRetry(why: string): void {
    if (this.attempt >= (this.o.maxAttempts ?? 40)) {
      this.set('failed', `gave up after ${this.attempt} attempts; last: ${why}`);
      return;
    }
    const delay = backoffDelay(this.attempt, this.o.backoff ?? DEFAULT_BACKOFF, () => this.o.timers.random());
    this.attempt += 1;
    this.set('waiting', `${why}; retrying in ${delay} ms`);
    this.retry = this.o.timers.setTimeout(() => this.open(), delay);
  }
}
