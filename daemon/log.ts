import pino, { Logger } from 'pino';

type Destination = ReturnType<typeof pino.destination>;

/** Log lines gathered in an array and handed to the destination as one string per batch.
 * sonic-boom, left to batch by itself (minLength), measures its pending text on every write
 * (Buffer.byteLength of a growing concatenated string): each line then cost a copy of
 * everything pending, up to 8 KiB, the largest single cost of a connection's record. */
class LineBatch {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly dest: Destination, private readonly batchChars: number) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.batchChars) this.flush();
    return true;
  }

  /** Hands what is gathered to the destination (which writes it asynchronously); with `cb`
   * (pino's logger.flush), also waits until the destination wrote it. */
  flush(cb?: (err?: Error) => void): void {
    if (this.lines.length > 0) {
      const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
      this.lines = [];
      this.chars = 0;
      this.dest.write(text);
    }
    if (cb) this.dest.flush(cb);
  }

  /** On exit: everything gathered, written before the process goes. */
  flushSync(): void {
    this.flush();
    try { this.dest.flushSync(); } catch { /* stdout gone: nothing left to tell */ }
  }
}

let secondStart = 0;
let secondPrefix = '';

/** pino's isoTime field for the instant `now` (ms since the epoch), formatted once per second:
 * the date and time up to the second change once a second, only the milliseconds per line
 * (Date#toISOString per line was a tenth of a busy waypoint's access-log cost). */
export function isoTimeAt(now: number): string {
  let ms = now - secondStart;
  if (ms < 0 || ms >= 1000) {
    secondStart = now - (((now % 1000) + 1000) % 1000);
    secondPrefix = `,"time":"${new Date(secondStart).toISOString().slice(0, -4)}`;
    ms = now - secondStart;
  }
  return `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

function isoTime(): string { return isoTimeAt(Date.now()); }

/** JSON lines on stdout, written asynchronously and in batches: lines gather until 8 KiB or
 * 100 ms, then go out in one write (one write per connection line cost ~0.1 ms of CPU per
 * connection on each node). What is pending is written on exit. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  const batch = new LineBatch(dest, 8 * 1024);
  setInterval(() => batch.flush(), 100).unref();
  process.once('exit', () => batch.flushSync());
  return pino({ level, base: { ...bindings }, timestamp: isoTime }, batch as unknown as pino.DestinationStream);
}
