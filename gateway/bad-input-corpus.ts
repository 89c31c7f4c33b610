/**
 * The gateway's bad-input corpus (issue 3, acceptance): every case is either rejected with a precise reason code,
 * refused (topic ACL, client id), or accepted and stored exactly. Used by the unit test (payload.test.ts: the
 * parser alone) and by the integration test (corpus.int.test.ts: through MQTT, JetStream and InfluxDB).
 */
import type { RejectCode } from './checks.ts';

export type CorpusExpectation =
  /** Dead-lettered with this reason code; `reason` (when given) must appear in the dead letter's reason. */
  | { kind: 'reject'; code: RejectCode; reason?: string }
  /** Stored: these metrics (and tags) at these device times (`ts` relative to `now` unless absolute). */
  | { kind: 'accept'; events: { metrics: Record<string, number>; tags?: Record<string, string>; units?: Record<string, string>; ts?: number }[] }
  /** Publish refused by the topic ACL: the connection is closed, nothing is stored. */
  | { kind: 'refuse-topic' }
  /** CONNECT refused (CONNACK return code). */
  | { kind: 'refuse-connect'; returnCode: number };

export interface CorpusCase {
  name: string;
  /** Topic relative to the device: `telemetry` unless set; `@other` publishes as another device. */
  topic?: string;
  /** Client id to connect with (refuse-connect cases). */
  clientId?: string;
  payload: string | Buffer;
  expect: CorpusExpectation;
}

const reject = (code: RejectCode, reason?: string): CorpusExpectation => (reason ? { kind: 'reject', code, reason } : { kind: 'reject', code });
const m = (metrics: Record<string, unknown>, extra: Record<string, unknown> = {}): string => JSON.stringify({ metrics, ...extra });

/**
 * @param now gateway time (epoch ms) the timestamps are relative to
 * @param device the id of the device publishing the corpus
 */
export function corpusCases(now: number, device: string): CorpusCase[] {
  const t = now - 60_000; // a valid device time
  const deep = (n: number, open: string, close: string, inner: string): string => open.repeat(n) + inner + close.repeat(n);
  const cases: CorpusCase[] = [
    // Malformed JSON and encodings
    { name: 'empty payload', payload: '', expect: reject('bad_json') },
    { name: 'truncated object', payload: '{"metrics":{"t":1}', expect: reject('bad_json') },
    { name: 'plain text', payload: 'temperature=21.5', expect: reject('bad_json') },
    { name: 'trailing comma', payload: '{"metrics":{"t":1},}', expect: reject('bad_json') },
    { name: 'single quotes', payload: "{'metrics':{'t':1}}", expect: reject('bad_json') },
    { name: 'NaN literal', payload: '{"metrics":{"t":NaN}}', expect: reject('bad_json') },
    { name: 'Infinity literal', payload: '{"metrics":{"t":Infinity}}', expect: reject('bad_json') },
    { name: '-Infinity literal', payload: '{"metrics":{"t":-Infinity}}', expect: reject('bad_json') },
    { name: 'number overflowing to Infinity', payload: '{"metrics":{"t":1e999}}', expect: reject('non_finite', 'metrics.t') },
    { name: 'number overflowing to -Infinity', payload: '{"metrics":{"t":-1e999}}', expect: reject('non_finite', 'metrics.t') },
    { name: 'invalid UTF-8', payload: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), expect: reject('bad_encoding') },
    { name: 'UTF-16 payload', payload: Buffer.from(m({ t: 1 }), 'utf16le'), expect: reject('bad_json') },
    { name: 'JSON followed by garbage', payload: '{"metrics":{"t":1}} x', expect: reject('bad_json') },
    { name: 'two JSON documents', payload: '{"metrics":{"t":1}}{"metrics":{"t":2}}', expect: reject('bad_json') },
    // Wrong types and shapes
    { name: 'null', payload: 'null', expect: reject('schema', '(payload)') },
    { name: 'bare number', payload: '42', expect: reject('schema', '(payload)') },
    { name: 'bare string', payload: '"21.5"', expect: reject('schema', '(payload)') },
    { name: 'bare boolean', payload: 'true', expect: reject('schema', '(payload)') },
    { name: 'empty object', payload: '{}', expect: reject('schema', 'metrics') },
    { name: 'no metrics', payload: '{"metrics":{}}', expect: reject('schema', 'metrics') },
    { name: 'metrics is an array', payload: '{"metrics":[1,2]}', expect: reject('schema', 'metrics') },
    { name: 'metric value is a numeric string', payload: m({ t: '21.5' }), expect: reject('schema', 'metrics.t') },
    { name: 'metric value is a boolean', payload: m({ t: true }), expect: reject('schema', 'metrics.t') },
    { name: 'metric value is null', payload: m({ t: null }), expect: reject('schema', 'metrics.t') },
    { name: 'metric value is an object', payload: m({ t: { v: 1 } }), expect: reject('schema', 'metrics.t') },
    { name: 'unknown top-level field', payload: m({ t: 1 }, { extra: 1 }), expect: reject('schema', 'extra') },
    { name: 'ts is a word', payload: m({ t: 1 }, { ts: 'yesterday' }), expect: reject('schema', 'ts') },
    { name: 'ts is fractional', payload: m({ t: 1 }, { ts: t + 0.5 }), expect: reject('schema', 'ts') },
    { name: 'RFC 3339 ts without offset', payload: m({ t: 1 }, { ts: '2026-01-01T00:00:00' }), expect: reject('schema', 'ts') },
    { name: 'seq negative', payload: m({ t: 1 }, { seq: -1 }), expect: reject('schema', 'seq') },
    { name: 'seq is a string', payload: m({ t: 1 }, { seq: '1' }), expect: reject('schema', 'seq') },
    { name: 'tags is a string', payload: m({ t: 1 }, { tags: 'room=1' }), expect: reject('schema', 'tags') },
    { name: 'unit is a number', payload: m({ t: 1 }, { units: { t: 5 } }), expect: reject('schema', 'units') },
    { name: 'unit of an unknown metric', payload: m({ t: 1 }, { units: { x: 'Cel' } }), expect: reject('schema', 'units') },
    // Nesting and size
    { name: 'deeply nested arrays', payload: deep(20_000, '[', ']', ''), expect: reject('bad_senml') },
    { name: 'deeply nested objects in a metric', payload: `{"metrics":{"t":${deep(5_000, '{"a":', '}', '1')}}}`, expect: reject('schema', 'metrics.t') },
    { name: 'huge array of numbers', payload: `[${Array.from({ length: 20_000 }, () => '1').join(',')}]`, expect: reject('too_many_records') },
    {
      name: 'too many SenML records',
      payload: JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ n: `m${i}`, v: i }))),
      expect: reject('too_many_records'),
    },
    { name: 'too many metrics', payload: m(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`m${i}`, i]))), expect: reject('too_many_metrics') },
    { name: 'oversize payload', payload: m({ t: 1 }, { tags: { pad: 'x'.repeat(70_000) } }), expect: reject('too_large') },
    // Metric names
    { name: 'metric name with a space', payload: m({ 'temp c': 1 }), expect: reject('bad_metric_name', '"temp c"') },
    { name: 'metric name with a comma', payload: m({ 'a,b': 1 }), expect: reject('bad_metric_name', '"a,b"') },
    { name: 'metric name with an equals sign', payload: m({ 'a=b': 1 }), expect: reject('bad_metric_name', '"a=b"') },
    { name: 'metric name with a quote', payload: m({ 'a"b': 1 }), expect: reject('bad_metric_name', '"a\\"b"') },
    { name: 'metric name with a newline', payload: m({ 'a\nb': 1 }), expect: reject('bad_metric_name', '"a\\nb"') },
    { name: 'metric name with NUL', payload: m({ 'a\u0000b': 1 }), expect: reject('bad_metric_name', '"a\\u0000b"') },
    { name: 'metric name in unicode', payload: m({ température: 1 }), expect: reject('bad_metric_name', 'température') },
    { name: 'empty metric name', payload: m({ '': 1 }), expect: reject('bad_metric_name', '""') },
    { name: 'metric name of 65 characters', payload: m({ ['a'.repeat(65)]: 1 }), expect: reject('bad_metric_name', 'limit 64') },
    { name: 'metric name starting with a digit', payload: m({ '1abc': 1 }), expect: reject('bad_metric_name', '"1abc"') },
    { name: 'metric name __proto__', payload: '{"metrics":{"__proto__":1}}', expect: reject('bad_metric_name', '__proto__') },
    // Tag keys
    { name: 'tag key with a space', payload: m({ t: 1 }, { tags: { 'my room': 'a' } }), expect: reject('bad_tag', '"my room"') },
    { name: 'tag key with an equals sign', payload: m({ t: 1 }, { tags: { 'a=b': 'a' } }), expect: reject('bad_tag', '"a=b"') },
    { name: 'tag key with a comma', payload: m({ t: 1 }, { tags: { 'a,b': 'a' } }), expect: reject('bad_tag', '"a,b"') },
    { name: 'tag key "device" (reserved)', payload: m({ t: 1 }, { tags: { device: 'other' } }), expect: reject('bad_tag', 'reserved') },
    {
      name: 'too many tags',
      payload: m({ t: 1 }, { tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }),
      expect: reject('too_many_tags'),
    },
    // Tag values
    { name: 'tag value with a newline', payload: m({ t: 1 }, { tags: { room: 'a\nb' } }), expect: reject('bad_tag', 'control characters') },
    { name: 'tag value with a tab', payload: m({ t: 1 }, { tags: { room: 'a\tb' } }), expect: reject('bad_tag', 'control characters') },
    { name: 'tag value with NUL', payload: m({ t: 1 }, { tags: { room: 'a\u0000b' } }), expect: reject('bad_tag', 'control characters') },
    { name: 'tag value with U+2028', payload: m({ t: 1 }, { tags: { room: 'a\u2028b' } }), expect: reject('bad_tag', 'control characters') },
    { name: 'empty tag value', payload: m({ t: 1 }, { tags: { room: '' } }), expect: reject('bad_tag', 'empty') },
    { name: 'tag value of 129 characters', payload: m({ t: 1 }, { tags: { room: 'x'.repeat(129) } }), expect: reject('bad_tag', 'limit 128') },
    { name: 'tag value is a number', payload: m({ t: 1 }, { tags: { floor: 3 } }), expect: reject('bad_tag', 'tags.floor') },
    // Units
    { name: 'unit with a space', payload: m({ t: 1 }, { units: { t: 'deg C' } }), expect: reject('bad_unit', 'units.t') },
    { name: 'unit with a quote', payload: m({ t: 1 }, { units: { t: 'C"' } }), expect: reject('bad_unit', 'units.t') },
    // Timestamps
    { name: 'ts a day in the future', payload: m({ t: 1 }, { ts: now + 86_400_000 }), expect: reject('ts_future') },
    { name: 'ts before 1970', payload: m({ t: 1 }, { ts: -1000 }), expect: reject('ts_past') },
    { name: 'ts at the epoch', payload: m({ t: 1 }, { ts: 0 }), expect: reject('ts_past') },
    { name: 'ts a month old', payload: m({ t: 1 }, { ts: now - 30 * 86_400_000 }), expect: reject('ts_past') },
    { name: 'RFC 3339 ts in the year 2999', payload: m({ t: 1 }, { ts: '2999-01-01T00:00:00Z' }), expect: reject('ts_future') },
    { name: 'ts of 1e20 ms', payload: m({ t: 1 }, { ts: 1e20 }), expect: reject('ts_future') },
    // SenML
    { name: 'SenML: empty pack', payload: '[]', expect: reject('bad_senml') },
    { name: 'SenML: record is a number', payload: '[1]', expect: reject('bad_senml', '[0]') },
    { name: 'SenML: missing base name and name', payload: JSON.stringify([{ v: 1 }]), expect: reject('bad_senml', 'no name') },
    { name: 'SenML: base name only in a later record', payload: JSON.stringify([{ v: 1 }, { bn: 'dev:', n: 't', v: 2 }]), expect: reject('bad_senml', '[0]') },
    { name: 'SenML: v is a string', payload: JSON.stringify([{ n: 't', v: '1' }]), expect: reject('schema', '[0].v') },
    { name: 'SenML: string value', payload: JSON.stringify([{ n: 't', vs: 'hot' }]), expect: reject('unsupported_value', 'vs') },
    { name: 'SenML: data value', payload: JSON.stringify([{ n: 't', vd: 'aGk' }]), expect: reject('unsupported_value', 'vd') },
    { name: 'SenML: sum', payload: JSON.stringify([{ n: 't', s: 5 }]), expect: reject('unsupported_value', '.s') },
    { name: 'SenML: must-understand field', payload: JSON.stringify([{ n: 't', v: 1, ext_: 1 }]), expect: reject('bad_senml', 'ext_') },
    { name: 'SenML: both v and vb', payload: JSON.stringify([{ n: 't', v: 1, vb: true }]), expect: reject('bad_senml', 'both') },
    { name: 'SenML: no value', payload: JSON.stringify([{ n: 't' }]), expect: reject('bad_senml', 'value') },
    { name: 'SenML: unsupported version', payload: JSON.stringify([{ bver: 11, n: 't', v: 1 }]), expect: reject('bad_senml', 'bver') },
    {
      name: 'SenML: duplicate metric at one time',
      payload: JSON.stringify([
        { bt: t / 1000, n: 't', v: 1 },
        { n: 't', v: 2 },
      ]),
      expect: reject('duplicate_metric'),
    },
    { name: 'SenML: time a day ahead', payload: JSON.stringify([{ n: 't', v: 1, t: now / 1000 + 86_400 }]), expect: reject('ts_future') },
    { name: 'SenML: relative time 31 years back', payload: JSON.stringify([{ bt: -1e9, n: 't', v: 1 }]), expect: reject('ts_past') },
    { name: 'SenML: name with a space', payload: JSON.stringify([{ bn: 'urn:dev:1:', n: 'te mp', v: 1 }]), expect: reject('bad_metric_name', 'te mp') },
    { name: 'SenML: bv + v overflows', payload: JSON.stringify([{ bv: 1e308, n: 't', v: 1e308 }]), expect: reject('non_finite') },
    { name: 'SenML: v overflows to Infinity', payload: '[{"n":"t","v":1e999}]', expect: reject('non_finite', '[0].v') },
    { name: 'SenML: unit with a space', payload: JSON.stringify([{ n: 't', u: 'deg C', v: 1 }]), expect: reject('bad_unit') },
    // What InfluxDB would refuse or change (gateway/checks.ts): refused before the PUBACK, never refused by the store after it
    { name: 'tag value ending in a backslash', payload: m({ t: 1 }, { tags: { site: 'a\\' } }), expect: reject('not_storable', 'tags.site') },
    { name: 'tag value with a backslash before a space', payload: m({ t: 1 }, { tags: { site: 'say \\ ok' } }), expect: reject('not_storable', 'tags.site') },
    { name: 'metric named time', payload: m({ time: 1 }), expect: reject('not_storable', 'time') },
    { name: 'metric name starting with an underscore', payload: m({ _value: 1 }), expect: reject('not_storable', '_value') },
    { name: 'tag key time', payload: m({ t: 1 }, { tags: { time: 'x' } }), expect: reject('not_storable', 'time') },
    { name: 'tag key _measurement', payload: m({ t: 1 }, { tags: { _measurement: 'x' } }), expect: reject('not_storable', '_measurement') },
    { name: 'SenML: metric named time', payload: JSON.stringify([{ n: 'time', v: 1 }]), expect: reject('not_storable', 'time') },
    // Accepted on purpose, stored exactly
    {
      name: 'tag value with spaces, commas and equals signs',
      payload: m({ temperature: 20.25 }, { ts: t + 1, tags: { site: 'a b,c=d' } }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 20.25 }, tags: { site: 'a b,c=d' }, ts: t + 1 }] },
    },
    {
      name: 'tag value with quotes',
      payload: m({ temperature: 20.5 }, { ts: t + 2, tags: { site: 'say "hi" ok\'' } }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 20.5 }, tags: { site: 'say "hi" ok\'' }, ts: t + 2 }] },
    },
    {
      name: 'tag value in unicode',
      payload: m({ temperature: 20.75 }, { ts: t + 3, tags: { site: 'Zürich 🌡 東京' } }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 20.75 }, tags: { site: 'Zürich 🌡 東京' }, ts: t + 3 }] },
    },
    {
      name: 'UTF-8 byte order mark before the JSON',
      payload: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(m({ temperature: 21 }, { ts: t + 4 }))]),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 21 }, ts: t + 4 }] },
    },
    {
      name: 'metric names with dots, dashes and underscores',
      payload: m({ temperature: 21.25, 'air.q_pm2-5': 7 }, { ts: t + 5 }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 21.25, 'air.q_pm2-5': 7 }, ts: t + 5 }] },
    },
    {
      name: 'extreme finite values',
      payload: m({ temperature: -1.7976931348623157e308, tiny: 5e-324 }, { ts: t + 6 }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: -1.7976931348623157e308, tiny: 5e-324 }, ts: t + 6 }] },
    },
    {
      name: 'RFC 3339 ts with offset',
      payload: m({ temperature: 21.5 }, { ts: new Date(t + 7).toISOString().replace('Z', '+00:00') }),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 21.5 }, ts: t + 7 }] },
    },
    {
      name: 'SenML pack with base values and two timestamps',
      payload: JSON.stringify([
        { bn: `urn:dev:${device}:`, bt: (t + 8) / 1000, bu: 'Cel', n: 'temperature', v: 22 },
        { n: 'humidity', u: '%RH', v: 40 },
        { n: 'temperature', v: 22.5, t: 0.001 },
      ]),
      expect: {
        kind: 'accept',
        events: [
          { metrics: { temperature: 22, humidity: 40 }, units: { temperature: 'Cel', humidity: '%RH' }, ts: t + 8 },
          { metrics: { temperature: 22.5 }, units: { temperature: 'Cel' }, ts: t + 9 },
        ],
      },
    },
    {
      name: 'SenML boolean value and base value',
      payload: JSON.stringify([
        { bt: (t + 10) / 1000, bv: 100, n: 'temperature', v: -77.5 },
        { n: 'door_open', vb: true },
      ]),
      expect: { kind: 'accept', events: [{ metrics: { temperature: 22.5, door_open: 1 }, ts: t + 10 }] },
    },
    // Topic spoofing and topics nobody stores
    { name: 'publish as another device', topic: '@other', payload: m({ temperature: 1 }), expect: { kind: 'refuse-topic' } },
    { name: 'publish to own status topic', topic: 'status', payload: 'online', expect: { kind: 'refuse-topic' } },
    { name: 'publish below telemetry', topic: 'telemetry/extra', payload: m({ temperature: 1 }), expect: { kind: 'refuse-topic' } },
    { name: 'publish to own commands', topic: 'commands/reboot', payload: '{}', expect: { kind: 'refuse-topic' } },
    { name: 'publish outside devices/', topic: '@root', payload: m({ temperature: 1 }), expect: { kind: 'refuse-topic' } },
    // Client ids (= device ids) that could not be stored exactly as a tag: refused at CONNECT
    { name: 'client id with a space', clientId: 'dev 1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id with a comma', clientId: 'dev,1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id with an equals sign', clientId: 'dev=1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id with a quote', clientId: 'dev"1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id with a newline', clientId: 'dev\n1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id in unicode', clientId: 'dévice', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
    { name: 'client id with a slash', clientId: 'dev/1', payload: '', expect: { kind: 'refuse-connect', returnCode: 2 } },
  ];
  return cases;
}
