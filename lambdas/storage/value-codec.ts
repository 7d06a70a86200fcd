// How the DynamoDB backend stores an object's JSON: deflated with a preset dictionary (issue #16, cost).
//
// Why: DynamoDB bills writes per 1 KB and reads per 4 KB of item, and a write's transaction pays twice for
// the object item and for its log item (which holds the value and, for updates, the previous one). A pod
// is ~2.5 KB of JSON, mostly field names and values every pod shares; deflate alone halves it, and with a
// dictionary of those shared shapes (value-dictionary.ts) a pod is ~300 bytes: a pod update's transaction
// goes from ~16 write units to ~6, and every list reads a third or less. The CPU is ~50 µs to deflate a
// pod and ~9 µs to inflate it (node:zlib, this machine).
//
// Format: one format byte, then the raw deflate stream. 1 = deflate-raw with VALUE_DICTIONARY_V1. Items
// written before this have the JSON as a string attribute (`value`, `prevValue`) and are read as they are;
// the codec writes binary attributes (`z`, `zp`), so an item says by its attribute which it holds.

import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { VALUE_DICTIONARY_V1 } from './value-dictionary.ts';

const DICTIONARY_V1 = Buffer.from(VALUE_DICTIONARY_V1);
const FORMAT_V1 = 1;

/** The stored bytes of a value. */
export function encodeValue(value: string): Uint8Array {
  const z = deflateRawSync(value, { dictionary: DICTIONARY_V1 });
  const out = new Uint8Array(z.length + 1);
  out[0] = FORMAT_V1;
  out.set(z, 1);
  return out;
}

/**
 * A value from its stored bytes. A Lambda event's stream image carries binary attributes as base64
 * strings; the SDK's reads give bytes: both are taken.
 */
export function decodeValue(stored: Uint8Array | string): string {
  const b = typeof stored === 'string' ? Buffer.from(stored, 'base64') : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  if (b[0] !== FORMAT_V1) throw new Error(`stored value: unknown format ${b[0]}`);
  return inflateRawSync(b.subarray(1), { dictionary: DICTIONARY_V1 }).toString('utf8');
}

type Item = Record<string, AttributeValue>;

/** The attribute of an object's value (`z`), for an item being written. */
export function valueAttribute(value: string): Item {
  return { z: { B: encodeValue(value) } };
}

/** The attribute of a log item's previous value (`zp`). */
export function prevValueAttribute(value: string): Item {
  return { zp: { B: encodeValue(value) } };
}

/** An item's value: compressed (`z`) or, written before compression, the JSON itself (`value`); undefined if neither. */
export function itemValue(it: Item): string | undefined {
  if (it.z?.B !== undefined) return decodeValue(it.z.B as Uint8Array | string);
  return it.value?.S;
}

/** The DynamoDB size of an item: attribute names plus values (strings by UTF-8 bytes, numbers ~1 byte per 2 digits + 1). */
export function itemBytes(item: Item): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += Buffer.byteLength(k);
    if (v.S !== undefined) n += Buffer.byteLength(v.S);
    else if (v.N !== undefined) {
      const digits = v.N.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
      n += Math.ceil(Math.max(1, digits.length) / 2) + 1;
    } else if (v.B !== undefined) n += v.B.length;
    else n += 1;
  }
  return n;
}

/** A log item's previous value (`zp`, or `prevValue` from before). */
export function itemPrevValue(it: Item): string | undefined {
  if (it.zp?.B !== undefined) return decodeValue(it.zp.B as Uint8Array | string);
  return it.prevValue?.S;
}
