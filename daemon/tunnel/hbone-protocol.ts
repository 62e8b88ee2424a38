// Wire-level facts shared by the HBONE client and server, and the tuning both ends use.
// Flow-control windows are large because one TLS connection carries many app connections:
// with the 64 KiB HTTP/2 default a single stream could not fill a fast link, and the
// connection window would serialise all of them (ztunnel uses MiB-sized windows too).
import type { H2LocalSettings } from './h2/connection';
import { MESH_PORTS } from '../redirection/datapath';

export const HBONE_PORT = MESH_PORTS.inboundHbone;
export const HBONE_ALPN = 'h2';

/** Response header carrying why a CONNECT was refused (400/403/503). */
export const REASON_HEADER = 'nodemesh-reason';

export interface HboneTuning {
  /** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowBytes: number;
  /** Connection-level receive window (raised with WINDOW_UPDATE right after our SETTINGS). */
  connectionWindowBytes: number;
  /** SETTINGS_MAX_FRAME_SIZE: fewer, larger DATA frames for bulk transfers. */
  maxFrameSize: number;
  /** Streams one session carries before the client opens another session. */
  maxStreamsPerSession: number;
}

export const DEFAULT_TUNING: Readonly<HboneTuning> = Object.freeze({
  streamWindowBytes: 4 * 1024 * 1024,
  connectionWindowBytes: 16 * 1024 * 1024,
  maxFrameSize: 256 * 1024,
  maxStreamsPerSession: 100,
});

/** Our SETTINGS (push is always disabled by the client). */
export function sessionSettings(t: HboneTuning, maxConcurrentStreams: number): H2LocalSettings {
  return { initialWindowSize: t.streamWindowBytes, maxFrameSize: t.maxFrameSize, maxConcurrentStreams };
}

/** Header values must be visible ASCII for HTTP/2; reasons come from policy text. */
export function headerSafe(text: string, max = 512): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}
