import { describe, expect, it } from 'vitest';
import {
  canonicalQuantity,
  compareQuantities,
  parseQuantity,
  parseQuantityExact,
  QUANTITY_FORMAT_ERROR,
  QUANTITY_SUFFIX_ERROR,
} from '../lambdas/machinery/quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['+1', 1],
    ['-1', -1],
    ['500m', 0.5],
    ['100n', 1e-7],
    ['250u', 0.00025],
    ['1k', 1000],
    ['1M', 1e6],
    ['2G', 2e9],
    ['1T', 1e12],
    ['1P', 1e15],
    ['1E', 1e18],
    ['1Ki', 1024],
    ['1Mi', 1024 ** 2],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['1Ti', 1024 ** 4],
    ['2e3', 2000],
    ['1E3', 1000],
    ['1e-3', 0.001],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1.', 1],
    ['007', 7],
  ])('%s is %d base units', (s, n) => {
    expect(parseQuantity(s)).toBeCloseTo(n, 12);
  });

  it.each(['', 'abc', '1.5.5', '1KiB', '1e3.5', ' 1'])('%j does not match the quantity grammar', (s) => {
    expect(() => parseQuantity(s)).toThrow(QUANTITY_FORMAT_ERROR);
  });

  it.each(['1K', '1ki', '1e', '1Gi5', '1mi', '--1'])('%j has a suffix Kubernetes does not know', (s) => {
    expect(() => parseQuantity(s)).toThrow(QUANTITY_SUFFIX_ERROR);
  });

  it('rounds values below a nano-unit up, as Kubernetes does', () => {
    expect(parseQuantityExact('0.1n').nanos).toBe(1n);
    expect(parseQuantityExact('-0.1n').nanos).toBe(-1n);
  });

  it('caps values at 2^63-1 base units', () => {
    expect(parseQuantityExact('100E').nanos).toBe(((1n << 63n) - 1n) * 1_000_000_000n);
  });

  it('accepts JSON numbers (YAML "cpu: 2")', () => {
    expect(parseQuantityExact(2).nanos).toBe(2_000_000_000n);
    expect(parseQuantityExact(0.25).nanos).toBe(250_000_000n);
  });
});

describe('canonicalQuantity (Quantity.String)', () => {
  it.each([
    ['0.5', '500m'],
    ['1000m', '1'],
    ['1500', '1500'],
    ['2000', '2k'],
    ['1.5m', '1500u'],
    ['0.1n', '1n'],
    ['1024Mi', '1Gi'],
    ['1.5Gi', '1536Mi'],
    ['0.5Gi', '512Mi'],
    ['100Mi', '100Mi'],
    ['1023Ki', '1023Ki'],
    ['512Ki', '512Ki'],
    // Binary values below 1Ki print in decimal.
    ['0.5Ki', '512'],
    ['1e3', '1e3'],
    ['1.5e3', '1500'],
    ['-2000m', '-2'],
    ['0', '0'],
    ['0.000', '0'],
  ])('%s prints as %s', (input, out) => {
    expect(canonicalQuantity(input)).toBe(out);
  });
});

describe('compareQuantities', () => {
  it('compares exactly across suffixes', () => {
    expect(compareQuantities('1', '1000m')).toBe(0);
    expect(compareQuantities('1Gi', '1G')).toBe(1);
    expect(compareQuantities('999m', '1')).toBe(-1);
    // 0.1 + 0.2 style float error cannot happen: 300m is exactly 0.3.
    expect(compareQuantities('300m', '0.3')).toBe(0);
  });
});

describe('the parse cache', () => {
  it('keeps short strings only: a million-digit quantity is parsed, not kept (4,096 of them filled the heap)', () => {
    // Found by review: dry-run pod creates, each with a fresh valid "000…0<i>" of 1.4 MB as its CPU
    // request, grew the server ~1 MiB a request until it died of heap exhaustion.
    const long = `${'0'.repeat(1_000_000)}7`;
    const a = parseQuantityExact(long);
    expect(a.nanos).toBe(7_000_000_000n);
    expect(parseQuantityExact(long)).not.toBe(a); // parsed again: nothing of it was kept
    expect(parseQuantityExact('250m')).toBe(parseQuantityExact('250m')); // the usual strings are
  });
});
