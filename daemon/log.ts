import pino, { Logger } from 'pino';

/** JSON lines on stdout, written asynchronously: lines logged while a write is in flight go
 * out together in the next one (under load, one write for many connection lines, not one
 * each), and no line waits for a buffer to fill. pino flushes what is pending on exit. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }));
}
