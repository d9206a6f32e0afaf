/**
 * The generated protobuf classes, configured. Everything else imports messages from here, never
 * from `generated/` directly.
 */
import './protobuf-config.js';
import { lfaas } from './generated/messages.js';

/** The generated namespace (`pb.Envelope`, `pb.KvsRequest`, ...). */
export const pb = lfaas;
/** The generated namespace's types (`pb.IEnvelope`, ...). */
export type { lfaas as PbTypes } from './generated/messages.js';
