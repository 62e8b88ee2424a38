// Frame headers (RFC 9113 section 4.1): 24-bit length, type, flags, 31-bit stream id.
import { FRAME_HEADER_LENGTH, FrameType } from './constants';

export function writeFrameHeader(b: Buffer, len: number, type: number, flags: number, id: number): void {
  b[0] = len >>> 16; b[1] = (len >>> 8) & 0xff; b[2] = len & 0xff;
  b[3] = type; b[4] = flags;
  b.writeUInt32BE(id, 5);
}

export function frameHeader(len: number, type: number, flags: number, id: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeFrameHeader(b, len, type, flags, id);
  return b;
}

export function windowUpdateFrame(id: number, inc: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  writeFrameHeader(b, 4, FrameType.WINDOW_UPDATE, 0, id);
  b.writeUInt32BE(inc, 9);
  return b;
}
