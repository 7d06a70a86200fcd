// CronJob schedules: what kube accepts, with kube's messages, and when a schedule fires.
//
// Kubernetes parses spec.schedule with robfig/cron/v3's ParseStandard (5 fields: minute hour
// day-of-month month day-of-week, or a descriptor: @yearly @annually @monthly @weekly @daily @midnight
// @hourly @every <duration>), and its error text is the validation message a client sees
// (`spec.schedule: Invalid value: "x": expected exactly 5 fields, found 1: [x]`). So parsing is done here,
// as robfig's parser does it, field by field, into the set of values each field allows. The calendar
// arithmetic (time zones, daylight saving) is cron-parser's (MIT, luxon time zones): the parsed sets go
// to it as explicit lists, so both agree on what the expression means. Across a DST change cron-parser
// fires a time that does not exist (spring forward) at the next hour that does, and a repeated time
// (fall back) once.

import { CronExpressionParser } from 'cron-parser';

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTHS: Record<string, number> = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };
const DAYS: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const FIELDS: Bounds[] = [
  { min: 0, max: 59 }, // minute
  { min: 0, max: 23 }, // hour
  { min: 1, max: 31 }, // day of month
  { min: 1, max: 12, names: MONTHS },
  { min: 0, max: 6, names: DAYS },
];

/** One field: the values it allows, and whether it was a star (robfig's starBit: "*", "?" or "*\/1"). */
interface Field {
  values: number[];
  star: boolean;
}

/** A parsed schedule: five fields, or a constant delay (@every). */
export type CronSchedule = { kind: 'fields'; fields: Field[] } | { kind: 'every'; ms: number };

class CronError extends Error {}

/** strconv.Atoi, with its error text. */
function atoi(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw new CronError(`strconv.Atoi: parsing ${JSON.stringify(s)}: invalid syntax`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > 2 ** 63 - 1 || n < -(2 ** 63)) throw new CronError(`strconv.Atoi: parsing ${JSON.stringify(s)}: value out of range`);
  return n;
}

function mustParseInt(expr: string): number {
  let n: number;
  try {
    n = atoi(expr);
  } catch (e) {
    throw new CronError(`failed to parse int from ${expr}: ${(e as Error).message}`);
  }
  if (n < 0) throw new CronError(`negative number (${n}) not allowed: ${expr}`);
  return n;
}

function parseIntOrName(expr: string, names?: Record<string, number>): number {
  const named = names?.[expr.toLowerCase()];
  return named !== undefined ? named : mustParseInt(expr);
}

/** robfig's getRange: "*", "a", "a-b", each optionally "/step". */
function getRange(expr: string, r: Bounds, into: Set<number>): boolean {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = rangeAndStep[0]!.split('-');
  const single = lowAndHigh.length === 1;
  let start: number;
  let end: number;
  let star = false;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = r.min;
    end = r.max;
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, r.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, r.names);
    else throw new CronError(`too many hyphens: ${expr}`);
  }
  let step = 1;
  if (rangeAndStep.length === 2) {
    step = mustParseInt(rangeAndStep[1]!);
    // "N/step" means "N-max/step".
    if (single) end = r.max;
    if (step > 1) star = false;
  } else if (rangeAndStep.length > 2) throw new CronError(`too many slashes: ${expr}`);
  if (start < r.min) throw new CronError(`beginning of range (${start}) below minimum (${r.min}): ${expr}`);
  if (end > r.max) throw new CronError(`end of range (${end}) above maximum (${r.max}): ${expr}`);
  if (start > end) throw new CronError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0) throw new CronError(`step of range should be a positive number: ${expr}`);
  for (let v = start; v <= end; v += step) into.add(v);
  return star;
}

function getField(field: string, r: Bounds): Field {
  const values = new Set<number>();
  let star = false;
  for (const part of field.split(',').filter((p) => p !== '')) star = getRange(part, r, values) || star;
  return { values: [...values].sort((a, b) => a - b), star };
}

/** Go's time.ParseDuration, for @every (units ns us µs ms s m h; "1h30m", "1.5h"). */
function parseGoDuration(s: string): number {
  const orig = s;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new CronError(`time: invalid duration ${JSON.stringify(orig)}`);
  let total = 0;
  while (s !== '') {
    const m = /^(\d*(?:\.\d*)?)([a-zµμ]*)/.exec(s);
    if (!m || m[1] === '' || m[1] === '.') throw new CronError(`time: invalid duration ${JSON.stringify(orig)}`);
    if (m[2] === '') throw new CronError(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const unit = units[m[2]!];
    if (unit === undefined) throw new CronError(`time: unknown unit ${JSON.stringify(m[2])} in duration ${JSON.stringify(orig)}`);
    total += Number(m[1]) * unit;
    s = s.slice(m[0].length);
  }
  return neg ? -total : total;
}

const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function parse(spec: string): CronSchedule {
  if (spec.length === 0) throw new CronError('empty spec string');
  // TZ=/CRON_TZ= prefixes: kube's validation refuses them separately (use spec.timeZone); the
  // schedule after them is what is parsed.
  if (spec.startsWith('TZ=') || spec.startsWith('CRON_TZ=')) {
    const i = spec.indexOf(' ');
    const loc = spec.slice(spec.indexOf('=') + 1, i < 0 ? undefined : i);
    if (!validTimeZone(loc)) throw new CronError(`provided bad location ${loc}: unknown time zone ${loc}`);
    spec = i < 0 ? '' : spec.slice(i).trim();
  }
  if (spec.startsWith('@')) {
    if (spec.startsWith('@every ')) {
      const d = spec.slice('@every '.length);
      let ms: number;
      try {
        ms = parseGoDuration(d);
      } catch (e) {
        throw new CronError(`failed to parse duration ${spec}: ${(e as Error).message}`);
      }
      // robfig: at least one second, rounded down to whole seconds.
      return { kind: 'every', ms: Math.max(1000, Math.floor(ms / 1000) * 1000) };
    }
    const fields = DESCRIPTORS[spec];
    if (!fields) throw new CronError(`unrecognized descriptor: ${spec}`);
    spec = fields;
  }
  const fields = spec.split(/\s+/).filter((f) => f !== '');
  if (fields.length !== 5) throw new CronError(`expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]`);
  return { kind: 'fields', fields: fields.map((f, i) => getField(f, FIELDS[i]!)) };
}

/** cron.ParseStandard: the schedule, or robfig's error text (kube's validation message). */
export function parseStandard(spec: string): { schedule: CronSchedule; error?: undefined } | { schedule?: undefined; error: string } {
  try {
    return { schedule: parse(spec) };
  } catch (e) {
    if (e instanceof CronError) return { error: e.message };
    throw e;
  }
}

/** An IANA time zone name the runtime knows (what Go's time.LoadLocation finds). */
export function validTimeZone(tz: string): boolean {
  if (tz === 'UTC') return true;
  // Go looks a zone up by file name, so case matters; ICU would take "america/new_york" too. Every IANA
  // name starts with a capital letter.
  if (!/^[A-Z]/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The expression cron-parser is given: each field's allowed values listed, "*" where robfig's starBit is set. */
function cronParserExpression(fields: Field[]): string {
  return fields.map((f) => (f.star ? '*' : f.values.join(','))).join(' ');
}

/** The first time the schedule fires strictly after `after`, in time zone `tz` (IANA; default UTC). */
export function nextFire(schedule: CronSchedule, after: Date, tz = 'UTC'): Date {
  if (schedule.kind === 'every') {
    // robfig's ConstantDelaySchedule: t + delay, rounded down to the second.
    return new Date(Math.floor((after.getTime() + schedule.ms) / 1000) * 1000);
  }
  const expr = CronExpressionParser.parse(cronParserExpression(schedule.fields), { currentDate: after, tz });
  return expr.next().toDate();
}
