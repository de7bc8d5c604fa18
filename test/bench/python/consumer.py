"""The seed approach: an aiokafka group consumer that takes batches of 500
with getmany, decodes each value with fastavro, and commits after each batch.
Prints one JSON line: the count and the Unix-nanosecond times of the first
and the last record."""
import argparse, asyncio, io, json, time

import fastavro
from aiokafka import AIOKafkaConsumer


async def main(a):
    with open(a.schema) as f:
        schema = fastavro.parse_schema(json.load(f))
    c = AIOKafkaConsumer(a.topic, bootstrap_servers=a.brokers, group_id=a.group,
                         enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    count, first, checksum = 0, 0, 0
    try:
        while count < a.n:
            batches = await c.getmany(timeout_ms=1000, max_records=500)
            if not batches:
                continue
            if not first:
                first = time.time_ns()
            for msgs in batches.values():
                for m in msgs:
                    v = fastavro.schemaless_reader(io.BytesIO(m.value), schema)
                    k = m.key.decode("utf-8")
                    checksum += v["id"] + len(k)
                    count += 1
            await c.commit()
        last = time.time_ns()
    finally:
        await c.stop()
    hwm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    print(json.dumps({"count": count, "first_ns": first, "last_ns": last, "checksum": checksum, "hwm_kb": hwm}))


p = argparse.ArgumentParser()
p.add_argument("--brokers", required=True)
p.add_argument("--topic", required=True)
p.add_argument("--group", required=True)
p.add_argument("--n", type=int, required=True)
p.add_argument("--schema", required=True)
asyncio.run(main(p.parse_args()))
