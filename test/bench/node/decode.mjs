// AWS Powertools for Lambda's Kafka utility (@aws-lambda-powertools/kafka)
// deserializing Avro records from synthetic MSK events, as Lambda delivers
// them (key and value base64), one thread. Decode only: the handler reads
// every record's key and value (the utility decodes lazily, on access).
// Usage: node decode.mjs events.json schema.avsc
// Prints one JSON line: records, seconds (decode time, after a warm-up).
import { readFileSync } from 'node:fs';
import { kafkaConsumer, SchemaType } from '@aws-lambda-powertools/kafka';

const [eventsFile, schemaFile] = process.argv.slice(2);
const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const schema = readFileSync(schemaFile, 'utf8');
let n = 0;
let checksum = 0;
const handler = kafkaConsumer(async (event) => {
  for (const r of event.records) {
    const v = r.value;
    const k = r.key;
    checksum += v.id + k.length;
    n++;
  }
}, { value: { type: SchemaType.AVRO, schema } });

// Warm-up: the first event, so that the JIT has seen the path.
await handler(events[0], {});
n = 0;
const t0 = process.hrtime.bigint();
for (const ev of events) {
  await handler(ev, {});
}
const t1 = process.hrtime.bigint();
console.log(JSON.stringify({ records: n, seconds: Number(t1 - t0) / 1e9, checksum }));
