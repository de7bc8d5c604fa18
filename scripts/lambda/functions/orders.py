"""A function written for the MSK event source mapping, with Powertools'
kafka_consumer: FN_MODE=avro decodes the values as Avro
(EVENT_RECORD_FORMAT=source), FN_MODE=avro-confluent as Avro framed for a
Confluent schema registry (source, the framing left in the bytes: Powertools
strips it with value_schema_wire_format="CONFLUENT"), FN_MODE=json as JSON
(EVENT_RECORD_FORMAT=json, registry-framed or not).

A value whose sku starts with FAIL is reported in batchItemFailures; one
that starts with RAISE makes the function raise. Every record of a batch
that did not raise is written to FN_OUT, one JSON line each, with its value
as Powertools decoded it, its original (base64) value and its key and value
schema metadata as Powertools reads them, for the test to check.
"""
import json
import os
import time

from aws_lambda_powertools.utilities.kafka import ConsumerRecords, SchemaConfig, kafka_consumer

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "order.avsc")) as f:
    SCHEMA = f.read()

MODE = os.environ.get("FN_MODE", "avro")
if MODE == "avro":
    CONFIG = SchemaConfig(value_schema_type="AVRO", value_schema=SCHEMA)
elif MODE == "avro-confluent":
    CONFIG = SchemaConfig(value_schema_type="AVRO", value_schema=SCHEMA, value_schema_wire_format="CONFLUENT")
else:
    CONFIG = SchemaConfig(value_schema_type="JSON")


def metadata(m):
    """A record's key or value schema metadata as Powertools reads it."""
    if m is None:
        return None
    return {"dataFormat": m.data_format, "schemaId": m.schema_id}


@kafka_consumer(schema_config=CONFIG)
def handler(event: ConsumerRecords, context):
    time.sleep(float(os.environ.get("FN_SLEEP", "0")))
    failures = []
    seen = []
    for r in event.records:
        v = r.value
        if v["sku"].startswith("RAISE"):
            raise ValueError(f"cannot handle {v['sku']} at offset {r.offset}")
        if v["sku"].startswith("FAIL"):
            failures.append({"itemIdentifier": {"partition": f"{r.topic}-{r.partition}", "offset": r.offset}})
            continue
        seen.append({"offset": r.offset, "key": r.original_key, "value": v,
                     "originalValue": r.original_value,
                     "keySchemaMetadata": metadata(r.key_schema_metadata),
                     "valueSchemaMetadata": metadata(r.value_schema_metadata),
                     "headers": {k: h.decode("latin-1") for k, h in r.headers.items()}})
    with open(os.environ["FN_OUT"], "a") as out:
        for s in seen:
            out.write(json.dumps(s) + "\n")
    return {"batchItemFailures": failures}
