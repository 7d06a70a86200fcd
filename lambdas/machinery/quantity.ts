// resource.Quantity (k8s.io/apimachinery/pkg/api/resource): the fixed-point numbers of resource requests,
// limits and node capacity ("500m", "1.5Gi", "2e3"). Parsing follows apimachinery's parseQuantityString
// and suffix tables exactly, so what Kubernetes accepts or rejects, Skiff does too. Values are kept as
// exact integers of nano-units (BigInt) so comparisons (requests <= limits) never suffer float rounding;
// the scheduler and kubelet use the plain number form.

/** apimachinery's ErrFormatWrong text. */
export const QUANTITY_FORMAT_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/** apimachinery's ErrSuffix text. */
export const QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix";

export type QuantityFormat = 'DecimalSI' | 'BinarySI' | 'DecimalExponent';

export interface ParsedQuantity {
  /** The value in nano-units (value × 10^9), rounded up in magnitude as Kubernetes rounds to 1n. */
  nanos: bigint;
  /** The format the value was written in; it decides how the canonical string is spelled. */
  format: QuantityFormat;
}

export class QuantityError extends Error {}

const DECIMAL_SUFFIXES: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const NANO = 1_000_000_000n;
// apimachinery caps quantities at 2^63-1 base units.
const MAX_NANOS = ((1n << 63n) - 1n) * NANO;

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** Port of parseQuantityString: splits sign, numerator, denominator and suffix. */
function splitQuantity(str: string): { positive: boolean; num: string; denom: string; suffix: string } {
  let positive = true;
  let pos = 0;
  const end = str.length;
  if (str[0] === '-') {
    positive = false;
    pos++;
  } else if (str[0] === '+') {
    pos++;
  }
  while (pos < end && str[pos] === '0') pos++;
  if (pos >= end) return { positive, num: '0', denom: '', suffix: '' };
  let i = pos;
  while (i < end && isDigit(str[i])) i++;
  let num = str.slice(pos, i);
  pos = i;
  if (pos >= end) return { positive, num: num || '0', denom: '', suffix: '' };
  if (num.length === 0) num = '0';
  let denom = '';
  if (str[pos] === '.') {
    pos++;
    i = pos;
    while (i < end && isDigit(str[i])) i++;
    denom = str.slice(pos, i);
    pos = i;
    // Kubernetes accepts "1." and even "1.G"; so do we.
  }
  const suffixStart = pos;
  i = pos;
  while (i < end && 'eEinumkKMGTP'.includes(str[i]!)) i++;
  if (i >= end) return { positive, num, denom, suffix: str.slice(suffixStart) };
  pos = i;
  if (str[pos] === '-' || str[pos] === '+') pos++;
  for (i = pos; i < end; i++) {
    if (!isDigit(str[i])) throw new QuantityError(QUANTITY_FORMAT_ERROR);
  }
  return { positive, num, denom, suffix: str.slice(suffixStart) };
}

// The strings a cluster uses are few ("50m", "64Mi") and each pod write parses its requests several times
// (validation, quota's charges, the scheduler): answers are remembered, up to a bound, and frozen. Only
// short strings: a valid quantity may be a million digits long ("000…01"), and 4,096 of those kept
// (with their values) filled the heap and ended the process (dry-run pod creates, a fresh string each).
const parsed = new Map<string, Readonly<ParsedQuantity>>();
const PARSED_MAX = 4096;
const PARSED_KEY_MAX = 64;

/** Parses a quantity exactly. Throws QuantityError with apimachinery's messages on bad syntax. */
export function parseQuantityExact(input: string | number): Readonly<ParsedQuantity> {
  if (typeof input === 'string' && input.length <= PARSED_KEY_MAX) {
    const known = parsed.get(input);
    if (known) return known;
    const q = Object.freeze(parseUncached(input));
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(input, q);
    return q;
  }
  return parseUncached(input);
}

function parseUncached(input: string | number): ParsedQuantity {
  // JSON numbers are accepted as quantities (Quantity.UnmarshalJSON parses their text).
  const str = typeof input === 'number' ? numberText(input) : input;
  if (typeof str !== 'string' || str.length === 0) throw new QuantityError(QUANTITY_FORMAT_ERROR);
  if (str === '0') return { nanos: 0n, format: 'DecimalSI' };
  const { positive, num, denom, suffix } = splitQuantity(str);

  let format: QuantityFormat;
  let exp10 = 0;
  let exp2 = 0;
  if (suffix in DECIMAL_SUFFIXES) {
    format = 'DecimalSI';
    exp10 = DECIMAL_SUFFIXES[suffix]!;
  } else if (suffix in BINARY_SUFFIXES) {
    format = 'BinarySI';
    exp2 = BINARY_SUFFIXES[suffix]!;
  } else if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E') && /^[+-]?\d+$/.test(suffix.slice(1))) {
    format = 'DecimalExponent';
    exp10 = Number(suffix.slice(1));
    if (!Number.isSafeInteger(exp10)) throw new QuantityError(QUANTITY_SUFFIX_ERROR);
  } else {
    throw new QuantityError(QUANTITY_SUFFIX_ERROR);
  }

  // value = mantissa × 10^scale × 2^exp2, computed in nanos with rounding up of the magnitude.
  let mantissa = BigInt(num + denom || '0');
  const scale = exp10 - denom.length + 9;
  if (exp2) mantissa <<= BigInt(exp2);
  let nanos: bigint;
  if (scale >= 0) {
    // Guard absurd exponents: anything this large is capped anyway.
    nanos = scale > 40 && mantissa !== 0n ? MAX_NANOS + 1n : mantissa * 10n ** BigInt(scale);
  } else {
    const div = 10n ** BigInt(-scale);
    nanos = mantissa / div + (mantissa % div === 0n ? 0n : 1n);
  }
  if (nanos > MAX_NANOS) nanos = MAX_NANOS;
  // Fractional binary quantities print in decimal, as Kubernetes does for values below 1.
  if (format === 'BinarySI' && nanos < NANO && nanos > 0n) format = 'DecimalSI';
  return { nanos: positive ? nanos : -nanos, format };
}

function numberText(n: number): string {
  if (!Number.isFinite(n)) return '';
  // Plain decimal text, never JS exponent notation for ordinary values.
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? BigInt(n).toString() : String(n).replace('e+', 'e');
}

/** A quantity in base units (cores, bytes). Throws on bad syntax with Kubernetes' message. */
export function parseQuantity(s: string): number {
  const { nanos } = parseQuantityExact(s);
  return Number(nanos) / 1e9;
}

/** -1, 0 or 1, comparing exactly. */
export function compareQuantities(a: string | number, b: string | number): number {
  const x = parseQuantityExact(a).nanos;
  const y = parseQuantityExact(b).nanos;
  return x < y ? -1 : x > y ? 1 : 0;
}

const DECIMAL_BY_EXP: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };
const BINARY_BY_EXP: Record<number, string> = { 0: '', 10: 'Ki', 20: 'Mi', 30: 'Gi', 40: 'Ti', 50: 'Pi', 60: 'Ei' };

/** Quantity.String(): the canonical spelling Kubernetes prints ("0.5" → "500m", "1024Mi" → "1Gi"). */
export function formatQuantity(q: ParsedQuantity): string {
  const { nanos } = q;
  if (nanos === 0n) return '0';
  const sign = nanos < 0n ? '-' : '';
  const abs = nanos < 0n ? -nanos : nanos;
  let format = q.format;
  if (format === 'BinarySI' && (abs < 1024n * NANO || abs % NANO !== 0n)) format = 'DecimalSI';
  if (format === 'BinarySI') {
    let value = abs / NANO;
    let exp = 0;
    while (exp < 60 && value % 1024n === 0n) {
      value /= 1024n;
      exp += 10;
    }
    return `${sign}${value}${BINARY_BY_EXP[exp]}`;
  }
  // Decimal: strip factors of ten, then lower the exponent to a multiple of three.
  let mantissa = abs;
  let exp = -9;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exp++;
  }
  const rem = ((exp % 3) + 3) % 3;
  if (rem) {
    mantissa *= 10n ** BigInt(rem);
    exp -= rem;
  }
  if (format === 'DecimalExponent') return `${sign}${mantissa}${exp === 0 ? '' : `e${exp}`}`;
  // Exa is the largest decimal suffix: larger exponents keep the digits.
  while (exp > 18) {
    mantissa *= 1000n;
    exp -= 3;
  }
  return `${sign}${mantissa}${DECIMAL_BY_EXP[exp]}`;
}

/** Parses and re-spells a quantity canonically. Throws QuantityError on bad syntax. */
export function canonicalQuantity(s: string | number): string {
  return formatQuantity(parseQuantityExact(s));
}
