/** The platform-agnostic core: no DOM, no globals. */
export * from './backoff.js';
export * from './config.js';
export * from './connection.js';
export * from './guard.js';
export * from './outbox.js';
export * from './ports.js';
export * from './proctor.js';
export * from './protocol.js';
export * from './segments.js';
export * from './tamper.js';
export * from './types.js';
