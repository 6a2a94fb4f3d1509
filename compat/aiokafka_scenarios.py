"""aiokafka scenarios of Chronik's compatibility suite: python aiokafka_scenarios.py BOOTSTRAP [NAME...]

Run by `python3 -m compat.clients --aiokafka` (scripts/compat.sh --aiokafka) with the pinned
packages of compat/requirements.txt in target/compat/venv-aiokafka, against a server it starts.
Every scenario checks what it reads back, not only that calls succeed. Prints progress on stderr
and, last, one JSON line on stdout: [{feature, scenario, state, detail, seconds}, ...] with state
PASSED or FAILED (compat/clients.py turns an expected failure into XFAIL).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete

BOOTSTRAP = ""
SCENARIOS: list[tuple[str, str, object]] = []


def scenario(feature: str, name: str):
    def deco(fn):
        SCENARIOS.append((feature, name, fn))
        return fn
    return deco


def uid() -> str:
    return uuid.uuid4().hex[:8]


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(f"check failed: {msg}")


async def admin_client() -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000)
    await admin.start()
    return admin


async def create_topic(admin: AIOKafkaAdminClient, topic: str, partitions: int) -> None:
    resp = await admin.create_topics([NewTopic(topic, partitions, 1)])
    errors = [(t[0], t[1]) for t in resp.topic_errors if t[1] != 0]
    check(not errors, f"create_topics({topic}) errors {errors}")


async def read_all(topic: str, count: int, timeout: float = 30.0, **kw) -> list:
    """Read `count` records of `topic` from the beginning (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                                enable_auto_commit=False, **kw)
    await consumer.start()
    got = []
    try:
        parts = None
        deadline = time.monotonic() + timeout
        while parts is None:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                await consumer._client.force_metadata_update()
                check(time.monotonic() < deadline, f"partitions of {topic}")
                await asyncio.sleep(0.1)
        consumer.assign([TopicPartition(topic, p) for p in parts])
        await consumer.seek_to_beginning()
        while len(got) < count:
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"read {count} records of {topic}, got {len(got)}")
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000))
            for recs in batch.values():
                got.extend(recs)
    finally:
        await consumer.stop()
    return got


@scenario("admin", "admin: create, list, describe, add partitions, delete topics")
async def admin_topics():
    admin = await admin_client()
    try:
        topic = f"aio-admin-{uid()}"
        await create_topic(admin, topic, 3)
        check(topic in await admin.list_topics(), "list_topics has the topic")
        desc = await admin.describe_topics([topic])
        check(len(desc[0]["partitions"]) == 3, f"3 partitions: {desc}")
        dup = await admin.create_topics([NewTopic(topic, 1, 1)])
        check(dup.topic_errors[0][1] == 36, f"TOPIC_ALREADY_EXISTS (36) for a duplicate: {dup.topic_errors}")
        await admin.create_partitions({topic: NewPartitions(5)})
        desc = await admin.describe_topics([topic])
        check(len(desc[0]["partitions"]) == 5, f"5 partitions after create_partitions: {desc}")
        cluster = await admin.describe_cluster()
        check(len(cluster["brokers"]) >= 1, f"describe_cluster: {cluster}")
        resp = await admin.delete_topics([topic])
        check(all(t[1] == 0 for t in resp.topic_error_codes), f"delete_topics: {resp}")
        check(topic not in await admin.list_topics(), "topic gone after delete_topics")
    finally:
        await admin.close()


@scenario("admin", "admin: describe topic configs")
async def admin_describe_configs():
    admin = await admin_client()
    try:
        topic = f"aio-cfg-{uid()}"
        resp = await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000"})])
        check(resp.topic_errors[0][1] == 0, f"create with config: {resp.topic_errors}")
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {e[0]: e[1] for r in res for resource in r.resources for e in resource[4]}
        check(entries.get("retention.ms") == "3600000", f"retention.ms from creation: {entries.get('retention.ms')}")
        check(entries.get("cleanup.policy") == "delete", f"cleanup.policy: {entries.get('cleanup.policy')}")
    finally:
        await admin.close()


@scenario("admin", "admin: alter topic configs (AlterConfigs API)")
async def admin_alter_configs():
    admin = await admin_client()
    try:
        topic = f"aio-alter-{uid()}"
        await create_topic(admin, topic, 1)
        res = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                        configs={"retention.ms": "7200000"})])
        errs = [(r[0], r[1]) for resp in res for r in resp.resources if r[0] != 0]
        check(not errs, f"alter_configs errors {errs}")
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {e[0]: e[1] for r in res for resource in r.resources for e in resource[4]}
        check(entries.get("retention.ms") == "7200000", f"retention.ms after alter: {entries.get('retention.ms')}")
    finally:
        await admin.close()


@scenario("admin", "admin: delete records")
async def admin_delete_records():
    admin = await admin_client()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        topic = f"aio-delrec-{uid()}"
        await create_topic(admin, topic, 1)
        for i in range(10):
            await producer.send_and_wait(topic, f"m{i}".encode(), partition=0)
        tp = TopicPartition(topic, 0)
        low = await admin.delete_records({tp: RecordsToDelete(before_offset=4)})
        check(low[tp] == 4, f"low watermark 4 after delete_records: {low}")
        got = await read_all(topic, 6)
        check(got[0].offset == 4 and got[0].value == b"m4", f"first record after delete: {got[0]}")
    finally:
        await producer.stop()
        await admin.close()


@scenario("produce", "produce acks=all and acks=1, keys and headers, read back")
async def produce_plain():
    admin = await admin_client()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    producer1 = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks=1)
    await producer.start()
    await producer1.start()
    try:
        topic = f"aio-produce-{uid()}"
        await create_topic(admin, topic, 3)
        futs = [await producer.send(topic, f"v{i}".encode(), key=f"k{i % 5}".encode(),
                                    headers=[("h", f"x{i}".encode())]) for i in range(30)]
        metas = [await f for f in futs]
        by_part: dict[int, list[int]] = {}
        for m in metas:
            by_part.setdefault(m.partition, []).append(m.offset)
        for p, offs in by_part.items():
            check(offs == list(range(len(offs))), f"partition {p} offsets consecutive: {offs}")
        await producer1.send_and_wait(topic, b"acks1", key=b"k0")
        got = await read_all(topic, 31)
        values = {r.value for r in got}
        check(all(f"v{i}".encode() in values for i in range(30)) and b"acks1" in values, "all values read back")
        parts_of_key: dict[bytes, set] = {}
        for r in got:
            parts_of_key.setdefault(r.key, set()).add(r.partition)
        check(all(len(s) == 1 for s in parts_of_key.values()), "one partition per key")
        v7 = next(r for r in got if r.value == b"v7")
        check(list(v7.headers) == [("h", b"x7")], f"headers of v7: {v7.headers}")
    finally:
        await producer.stop()
        await producer1.stop()
        await admin.close()


@scenario("fetch", "fetch: small fetch limits, seek, beginning/end offsets, offsets for times")
async def fetch():
    admin = await admin_client()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        topic = f"aio-fetch-{uid()}"
        await create_topic(admin, topic, 1)
        t0 = int(time.time() * 1000) - 100_000
        for i in range(50):
            await producer.send_and_wait(topic, f"{i:04d}".encode() * 256, partition=0,
                                         timestamp_ms=t0 + i * 1000)
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                    max_partition_fetch_bytes=2048, fetch_max_bytes=4096)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got = []
            deadline = time.monotonic() + 30
            while len(got) < 50 and time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(recs)
            check([r.offset for r in got] == list(range(50)), f"50 records in order with 2 KiB fetches: {len(got)}")
            consumer.seek(tp, 25)
            again = []
            while len(again) < 25 and time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    again.extend(recs)
            check([r.offset for r in again] == list(range(25, 50)), "after seek(25): 25..49")
            check((await consumer.end_offsets([tp]))[tp] == 50, "end offset 50")
            check((await consumer.beginning_offsets([tp]))[tp] == 0, "beginning offset 0")
            times = await consumer.offsets_for_times({tp: t0 + 10_500})
            check(times[tp] is not None and times[tp].offset == 11, f"offset for time t0+10.5s is 11: {times}")
            late = await consumer.offsets_for_times({tp: t0 + 100_000})
            check(late[tp] is None, f"no offset after the last timestamp: {late}")
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
        await admin.close()


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    def _make(codec: str):
        async def produce_compressed():
            producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", compression_type=codec,
                                        linger_ms=20)
            await producer.start()
            try:
                topic = f"aio-{codec}-{uid()}"  # auto-created
                futs = [await producer.send(topic, (f"{codec}-{i}-" * 20).encode(), key=f"k{i}".encode())
                        for i in range(200)]
                for f in futs:
                    await f
                got = await read_all(topic, 200)
                values = {r.value for r in got}
                check(all((f"{codec}-{i}-" * 20).encode() in values for i in range(200)), "all values read back")
            finally:
                await producer.stop()
        return produce_compressed
    scenario(f"compression:{_codec}", f"produce {_codec}-compressed batches, read back")(_make(_codec))


@scenario("idempotence", "idempotent producer: exactly once per message, in order")
async def idempotent():
    admin = await admin_client()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True)
    await producer.start()
    try:
        topic = f"aio-idem-{uid()}"
        await create_topic(admin, topic, 1)
        futs = [await producer.send(topic, str(i).encode(), partition=0) for i in range(100)]
        offsets = [(await f).offset for f in futs]
        check(offsets == list(range(100)), f"offsets 0..99: {offsets[:5]}...")
        got = await read_all(topic, 100)
        check([int(r.value) for r in got] == list(range(100)), "100 values in order, once each")
    finally:
        await producer.stop()
        await admin.close()


@scenario("groups", "consumer group: 2 members share partitions, commits, admin group calls")
async def group():
    admin = await admin_client()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    topic, group_id = f"aio-group-{uid()}", f"aio-g-{uid()}"
    consumers: list[AIOKafkaConsumer] = []
    try:
        await create_topic(admin, topic, 4)
        for i in range(200):
            await producer.send(topic, str(i).encode(), key=f"k{i}".encode())
        await producer.flush()
        for _ in range(2):
            c = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=group_id,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 heartbeat_interval_ms=500, session_timeout_ms=10000)
            await c.start()
            consumers.append(c)
        seen: dict[bytes, int] = {}
        owners: list[set] = [set(), set()]
        deadline = time.monotonic() + 60
        while len(seen) < 200:
            check(time.monotonic() < deadline, f"group read 200 records, got {len(seen)}")
            for idx, c in enumerate(consumers):
                batch = await c.getmany(timeout_ms=200)
                for tp, recs in batch.items():
                    owners[idx].add(tp.partition)
                    for r in recs:
                        seen[r.value] = seen.get(r.value, 0) + 1
                if batch:
                    await c.commit()
        check(all(n == 1 for n in seen.values()), "each record read once")
        check(all(c.assignment() for c in consumers), "both members have partitions")
        a0 = {tp.partition for tp in consumers[0].assignment()}
        a1 = {tp.partition for tp in consumers[1].assignment()}
        check(not (a0 & a1) and (a0 | a1) == {0, 1, 2, 3}, f"assignments split the 4 partitions: {a0} {a1}")
        offsets = await admin.list_consumer_group_offsets(group_id)
        ends = await consumers[0].end_offsets([TopicPartition(topic, p) for p in range(4)])
        check({tp: o.offset for tp, o in offsets.items()} == ends, f"committed {offsets} == ends {ends}")
        groups = await admin.list_consumer_groups()
        check(any(g[0] == group_id for g in groups), f"list_consumer_groups has the group: {groups}")
        desc = await admin.describe_consumer_groups([group_id])
        g = desc[0].groups[0]
        check(g[1] == group_id and g[2] == "Stable" and len(g[5]) == 2,
              f"describe: Stable with 2 members: {g[:5]} members={len(g[5])}")
        for c in consumers:
            await c.stop()
        consumers.clear()
        # a new member starts from the committed offsets
        await producer.send_and_wait(topic, b"after", key=b"after")
        late = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=group_id,
                                auto_offset_reset="earliest", enable_auto_commit=True)
        await late.start()
        consumers.append(late)
        late_seen = []
        deadline = time.monotonic() + 30
        while not late_seen and time.monotonic() < deadline:
            for recs in (await late.getmany(timeout_ms=500)).values():
                late_seen.extend(r.value for r in recs)
        await asyncio.sleep(0.5)
        for recs in (await late.getmany(timeout_ms=500)).values():
            late_seen.extend(r.value for r in recs)
        check(late_seen == [b"after"], f"rejoined member reads only the new record: {late_seen[:5]}")
    finally:
        for c in consumers:
            await c.stop()
        await producer.stop()
        await admin.close()


@scenario("transactions", "transactional producer: commit, abort, read_committed")
async def transactions():
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"aio-tx-{uid()}")
    await asyncio.wait_for(producer.start(), 30)
    try:
        topic = f"aio-tx-{uid()}"
        async with producer.transaction():
            await producer.send_and_wait(topic, b"tx-committed", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"tx-aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"tx-last", partition=0)
        got = await read_all(topic, 2, isolation_level="read_committed")
        values = [r.value for r in got]
        check(values == [b"tx-committed", b"tx-last"], f"read_committed sees the commits only: {values}")
        got = await read_all(topic, 3, isolation_level="read_uncommitted")
        values = [r.value for r in got]
        check(values == [b"tx-committed", b"tx-aborted", b"tx-last"],
              f"read_uncommitted sees every record: {values}")
    finally:
        await producer.stop()


async def main(only: list[str]) -> list[dict]:
    results = []
    for feature, name, fn in SCENARIOS:
        if only and not any(feature.startswith(o) or o in name for o in only):
            continue
        t0 = time.monotonic()
        state, detail = "PASSED", ""
        try:
            await asyncio.wait_for(fn(), 120)
        except Exception as e:  # noqa: BLE001 - every failure is a result
            state = "FAILED"
            detail = f"{type(e).__name__}: {e}".strip()
            if not str(e):
                detail += " @ " + traceback.format_exc().strip().splitlines()[-3].strip()
        secs = time.monotonic() - t0
        print(f"aiokafka {feature} | {name} | {state} {detail} ({secs:.1f}s)", file=sys.stderr, flush=True)
        results.append({"feature": feature, "scenario": name, "state": state, "detail": detail,
                        "seconds": round(secs, 2)})
    return results


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    BOOTSTRAP = sys.argv[1]
    print(json.dumps(asyncio.run(main(sys.argv[2:]))), flush=True)
