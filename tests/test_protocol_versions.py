"""Every version the broker advertises in ApiVersions must actually work.

Real clients each pick one version per API (the highest both sides support),
so a broken older or newer version goes unnoticed until some other client
(e.g. an older librdkafka) uses it.  Here every advertised version of every
API is exercised with kafka-python's protocol classes as an independent
encoder/decoder: the request must get a response that decodes exactly
(correlation id matches, no trailing bytes) and is semantically right.
"""

from __future__ import annotations

import io
import time
import uuid

import pytest
from kafka.protocol.admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeClusterRequest,
    DescribeClusterResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    AlterConfigsRequest,
    AlterConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka.record import MemoryRecords
from kafka.record.memory_records import MemoryRecordsBuilder

from clients import ck_create_topic, ck_produce, make_messages
from kafka_wire import api_versions_v0, connect, recv_frame

RESPONSE_FOR = {
    ApiVersionsRequest: ApiVersionsResponse,
    MetadataRequest: MetadataResponse,
    ProduceRequest: ProduceResponse,
    FetchRequest: FetchResponse,
    ListOffsetsRequest: ListOffsetsResponse,
    CreateTopicsRequest: CreateTopicsResponse,
    DeleteTopicsRequest: DeleteTopicsResponse,
    CreatePartitionsRequest: CreatePartitionsResponse,
    DescribeConfigsRequest: DescribeConfigsResponse,
    DescribeClusterRequest: DescribeClusterResponse,
    DeleteRecordsRequest: DeleteRecordsResponse,
    IncrementalAlterConfigsRequest: IncrementalAlterConfigsResponse,
    AlterConfigsRequest: AlterConfigsResponse,
    OffsetForLeaderEpochRequest: OffsetForLeaderEpochResponse,
}

ZERO_UUID = uuid.UUID(int=0)
# AclOperation codes Kafka without an authorizer reports (kafka-python decodes the bit field).
TOPIC_OPERATIONS = {3, 4, 5, 6, 7, 8, 10, 11}  # READ … ALTER_CONFIGS: 3576
CLUSTER_OPERATIONS = {5, 7, 8, 9, 10, 11, 12}  # CREATE … IDEMPOTENT_WRITE: 8096
PRELOADED = 5  # records in the data topic before the version sweep


class Broker:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.correlation_id = 100
        with connect(bootstrap) as s:
            self.ranges = {k: (lo, hi) for k, lo, hi in api_versions_v0(s).api_keys}

    def versions(self, request_cls) -> list[int]:
        """Versions the broker advertises for this API (and kafka-python can encode)."""
        lo, hi = self.ranges.get(request_cls.API_KEY, (0, -1))
        return list(range(lo, min(hi, request_cls.max_version) + 1))

    def call(self, request, version: int):
        """Send one request on a fresh connection; decode the response strictly."""
        self.correlation_id += 1
        cid = self.correlation_id
        request.with_header(correlation_id=cid, client_id="chronik-version-matrix")
        data = request.encode(version=version, header=True, framed=True)
        with connect(self.bootstrap) as s:
            s.sendall(data)
            raw = recv_frame(s, timeout=15)
        return strict_decode(RESPONSE_FOR[type(request)], raw, version, cid)


def strict_decode(resp_cls, raw: bytes, version: int, correlation_id: int):
    buf = io.BytesIO(raw)
    header = resp_cls.parse_header(buf, version=version)
    assert header.correlation_id == correlation_id, (
        f"correlation id {header.correlation_id} != {correlation_id}")
    flexible = resp_cls.flexible_version_q(version)
    decode = resp_cls._struct.compiled_decode_from(
        version, compact=flexible, tagged=flexible, data_class=resp_cls[None])
    body, end = decode(memoryview(raw), buf.tell())
    assert end == len(raw), f"{len(raw) - end} trailing bytes after the v{version} body"
    return body


def sweep(broker: Broker, request_cls, check) -> None:
    """Run check(version) for every advertised version; report all failures together."""
    versions = broker.versions(request_cls)
    assert versions, f"{request_cls.__name__} is not advertised"
    failures = []
    for v in versions:
        try:
            check(v)
        except Exception as e:  # noqa: BLE001 - collected and reported below
            failures.append(f"v{v}: {type(e).__name__}: {e}")
    assert not failures, (
        f"{request_cls.__name__[:-7]} versions {versions[0]}..{versions[-1]} advertised; failing:\n  "
        + "\n  ".join(failures)
    )


@pytest.fixture
def broker(server) -> Broker:
    return Broker(server.bootstrap)


@pytest.fixture
def data_topic(server, topic_name) -> str:
    """A 1-partition topic holding PRELOADED records."""
    ck_create_topic(server.bootstrap, topic_name, 1)
    ck_produce(server.bootstrap, topic_name, make_messages(PRELOADED, 1, "preload"), acks="all")
    return topic_name


def topic_id(broker: Broker, name: str) -> uuid.UUID:
    v = max(broker.versions(MetadataRequest))
    assert v >= 10, "Metadata v10+ (topic ids) not advertised"
    md = broker.call(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                                     allow_auto_topic_creation=False), v)
    [t] = md.topics
    assert t.error_code == 0 and t.topic_id != ZERO_UUID, f"no topic id for {name}: {t}"
    return t.topic_id


def one_record_batch(value: bytes) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    builder.append(timestamp=int(time.time() * 1000), key=None, value=value)
    builder.close()
    return bytes(builder.buffer())


def record_values(records: bytes | None) -> list[bytes]:
    out = []
    mr = MemoryRecords(bytes(records or b""))
    while mr.has_next():
        batch = mr.next_batch()
        out.extend(bytes(r.value) for r in batch)
    return out


# ---------------------------------------------------------------------------


def test_advertises_the_apis_the_clients_need(broker):
    for api_key, name in [(0, "Produce"), (1, "Fetch"), (2, "ListOffsets"), (3, "Metadata"),
                          (18, "ApiVersions"), (19, "CreateTopics"), (20, "DeleteTopics"),
                          (32, "DescribeConfigs"), (37, "CreatePartitions"), (60, "DescribeCluster")]:
        assert api_key in broker.ranges, f"{name} ({api_key}) not advertised"
        lo, hi = broker.ranges[api_key]
        assert 0 <= lo <= hi, f"{name}: bad range {lo}..{hi}"


def test_api_versions_every_version(broker):
    def check(v):
        r = broker.call(ApiVersionsRequest(client_software_name="chronik-test",
                                           client_software_version="1.0"), v)
        assert r.error_code == 0
        assert {k.api_key: (k.min_version, k.max_version) for k in r.api_keys} == broker.ranges
    sweep(broker, ApiVersionsRequest, check)


def test_metadata_every_version(server, broker, data_topic):
    def check(v):
        if v >= 8:  # authorized operations, asked for: every operation of the resource
            r = broker.call(MetadataRequest(
                topics=[MetadataRequest.MetadataRequestTopic(name=data_topic)],
                allow_auto_topic_creation=False, include_topic_authorized_operations=True,
                include_cluster_authorized_operations=True), v)
            assert r.topics[0].authorized_operations == TOPIC_OPERATIONS
            if v <= 10:
                assert r.authorized_operations == CLUSTER_OPERATIONS
        r = broker.call(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=data_topic)],
                                        allow_auto_topic_creation=False), v)
        assert [(b.node_id, b.host, b.port) for b in r.brokers] == [(1, "127.0.0.1", server.kafka_port)]
        [t] = r.topics
        assert (t.name, t.error_code) == (data_topic, 0)
        assert [(p.partition_index, p.error_code, p.leader_id) for p in t.partitions] == [(0, 0, 1)]
        if v >= 2:
            assert r.controller_id == 1
    sweep(broker, MetadataRequest, check)


def test_produce_every_version(broker, data_topic):
    next_offset = [PRELOADED]

    def check(v):
        value = f"produce-v{v}".encode()
        r = broker.call(ProduceRequest(
            transactional_id=None, acks=-1, timeout_ms=10000,
            topic_data=[ProduceRequest.TopicProduceData(
                name=data_topic,
                partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=0, records=one_record_batch(value))])]), v)
        [t] = r.responses
        [p] = t.partition_responses
        assert (p.index, p.error_code) == (0, 0), f"error {p.error_code}"
        assert p.base_offset == next_offset[0], f"base offset {p.base_offset}, expected {next_offset[0]}"
        next_offset[0] += 1
    sweep(broker, ProduceRequest, check)


def test_list_offsets_every_version(broker, data_topic):
    def check(v):
        for timestamp, expected in [(-2, 0), (-1, PRELOADED)]:  # earliest, latest
            r = broker.call(ListOffsetsRequest(
                replica_id=-1, isolation_level=0, timeout_ms=10000,
                topics=[ListOffsetsRequest.ListOffsetsTopic(
                    name=data_topic,
                    partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                        partition_index=0, current_leader_epoch=-1, timestamp=timestamp,
                        max_num_offsets=1)])]), v)
            [t] = r.topics
            [p] = t.partitions
            assert p.error_code == 0, f"timestamp {timestamp}: error {p.error_code}"
            got = p.old_style_offsets[0] if v == 0 else p.offset
            assert got == expected, f"timestamp {timestamp}: offset {got}, expected {expected}"
    sweep(broker, ListOffsetsRequest, check)


def test_offset_for_leader_epoch_every_version(broker, data_topic):
    """A single node has one leader epoch, 0: it ends at the log end; a current leader epoch
    above it is unknown (UNKNOWN_LEADER_EPOCH, 75); a missing partition is unknown (3)."""
    T = OffsetForLeaderEpochRequest.OffsetForLeaderTopic
    P = T.OffsetForLeaderPartition

    def check(v):
        r = broker.call(OffsetForLeaderEpochRequest(replica_id=-1, topics=[T(
            topic=data_topic, partitions=[
                P(partition=0, current_leader_epoch=-1, leader_epoch=0),
                P(partition=0, current_leader_epoch=5, leader_epoch=0),
                P(partition=9, current_leader_epoch=-1, leader_epoch=0)])]), v)
        [t] = r.topics
        got = [(p.partition, p.error_code, p.leader_epoch, p.end_offset) for p in t.partitions]
        assert got == [(0, 0, 0, PRELOADED), (0, 75, -1, -1), (9, 3, -1, -1)], got
    sweep(broker, OffsetForLeaderEpochRequest, check)


def test_fetch_every_version(broker, data_topic):
    tid = topic_id(broker, data_topic) if max(broker.versions(FetchRequest)) >= 13 else ZERO_UUID
    expected = [m.value for m in make_messages(PRELOADED, 1, "preload")]

    def check(v):
        r = broker.call(FetchRequest(
            replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
            session_id=0, session_epoch=-1, rack_id="",
            topics=[FetchRequest.FetchTopic(
                topic=data_topic, topic_id=tid,
                partitions=[FetchRequest.FetchTopic.FetchPartition(
                    partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                    log_start_offset=-1, partition_max_bytes=1 << 20)])],
            forgotten_topics_data=[]), v)
        if v >= 7:
            assert r.error_code == 0, f"top-level error {r.error_code}"
        [t] = r.responses
        assert (t.topic_id == tid) if v >= 13 else (t.topic == data_topic)
        [p] = t.partitions
        assert (p.partition_index, p.error_code) == (0, 0), f"error {p.error_code}"
        assert p.high_watermark == PRELOADED
        assert record_values(p.records)[:PRELOADED] == expected
    sweep(broker, FetchRequest, check)


def test_create_topics_every_version(broker, topic_name):
    def check(v):
        name = f"{topic_name}-cv{v}"
        r = broker.call(CreateTopicsRequest(
            topics=[CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=2, replication_factor=1, assignments=[],
                configs=[CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(
                    name="retention.ms", value="3600000")])],
            timeout_ms=10000, validate_only=False), v)
        [t] = r.topics
        assert (t.name, t.error_code) == (name, 0), f"error {t.error_code} {getattr(t, 'error_message', '')}"
        if v >= 5:
            assert (t.num_partitions, t.replication_factor) == (2, 1)
        if v >= 7:
            assert t.topic_id != ZERO_UUID
    sweep(broker, CreateTopicsRequest, check)


def test_create_partitions_every_version(server, broker, topic_name):
    def check(v):
        name = f"{topic_name}-pv{v}"
        ck_create_topic(server.bootstrap, name, 1)
        r = broker.call(CreatePartitionsRequest(
            topics=[CreatePartitionsRequest.CreatePartitionsTopic(name=name, count=3, assignments=None)],
            timeout_ms=10000, validate_only=False), v)
        [res] = r.results
        assert (res.name, res.error_code) == (name, 0), f"error {res.error_code} {res.error_message}"
    sweep(broker, CreatePartitionsRequest, check)


def test_delete_topics_every_version(server, broker, topic_name):
    def check(v):
        name = f"{topic_name}-dv{v}"
        ck_create_topic(server.bootstrap, name, 1)
        r = broker.call(DeleteTopicsRequest(
            topics=[DeleteTopicsRequest.DeleteTopicState(name=name, topic_id=ZERO_UUID)],
            topic_names=[name], timeout_ms=10000), v)
        [res] = r.responses
        assert (res.name, res.error_code) == (name, 0), f"error {res.error_code}"
    sweep(broker, DeleteTopicsRequest, check)


def test_describe_configs_every_version(broker, data_topic):
    def check(v):
        r = broker.call(DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=data_topic, configuration_keys=None)],
            include_synonyms=False, include_documentation=False), v)
        [res] = r.results
        assert (res.resource_name, res.error_code) == (data_topic, 0), f"error {res.error_code}"
        names = {c.name for c in res.configs}
        assert "retention.ms" in names, f"retention.ms missing from {sorted(names)}"
    sweep(broker, DescribeConfigsRequest, check)


def test_describe_cluster_every_version(server, broker):
    """Authorized operations: "not provided" (INT32_MIN) unless asked; asked, every cluster
    operation (8096), as Kafka without an authorizer answers."""
    def check(v):
        for ask, ops in [(False, None), (True, CLUSTER_OPERATIONS)]:
            r = broker.call(DescribeClusterRequest(include_cluster_authorized_operations=ask,
                                                   endpoint_type=1, include_fenced_brokers=False), v)
            assert r.error_code == 0
            assert [(b.broker_id, b.host, b.port) for b in r.brokers] == [(1, "127.0.0.1", server.kafka_port)]
            assert r.controller_id == 1 and r.cluster_id
            if ops is not None:
                assert r.authorized_operations == ops
            else:
                assert not r.authorized_operations, r.authorized_operations
    sweep(broker, DescribeClusterRequest, check)


def test_delete_records_every_advertised_version(broker, data_topic):
    if DeleteRecordsRequest.API_KEY not in broker.ranges:
        pytest.skip("DeleteRecords not advertised")
    low = [0]

    def check(v):
        low[0] += 1
        r = broker.call(DeleteRecordsRequest(
            topics=[DeleteRecordsRequest.DeleteRecordsTopic(
                name=data_topic, partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                    partition_index=0, offset=low[0])])],
            timeout_ms=10000), v)
        [t] = r.topics
        [p] = t.partitions
        assert p.error_code == 0, f"error {p.error_code}"
        assert p.low_watermark == low[0]
    sweep(broker, DeleteRecordsRequest, check)


def test_incremental_alter_configs_every_advertised_version(broker, data_topic):
    if IncrementalAlterConfigsRequest.API_KEY not in broker.ranges:
        pytest.skip("IncrementalAlterConfigs not advertised")

    def check(v):
        value = str(3_600_000 + v)
        r = broker.call(IncrementalAlterConfigsRequest(
            resources=[IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=2, resource_name=data_topic,
                configs=[IncrementalAlterConfigsRequest.AlterConfigsResource.AlterableConfig(
                    name="retention.ms", config_operation=0, value=value)])],
            validate_only=False), v)
        [res] = r.responses
        assert res.error_code == 0, f"error {res.error_code} {res.error_message}"
        d = broker.call(DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=data_topic, configuration_keys=["retention.ms"])]),
            max(broker.versions(DescribeConfigsRequest)))
        [dres] = d.results
        assert {c.name: c.value for c in dres.configs}.get("retention.ms") == value
    sweep(broker, IncrementalAlterConfigsRequest, check)


def test_alter_configs_every_advertised_version_replaces_all_overrides(broker, data_topic):
    """AlterConfigs (the non-incremental form): the configs given become the topic's only
    overrides; one set before and left out goes back to its default."""
    def describe() -> dict[str, str]:
        d = broker.call(DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=data_topic,
                configuration_keys=["retention.ms", "segment.ms"])]),
            max(broker.versions(DescribeConfigsRequest)))
        [dres] = d.results
        assert dres.error_code == 0, dres
        return {c.name: c.value for c in dres.configs}

    def alter(v: int, configs: list[tuple[str, str]]) -> None:
        resource = AlterConfigsRequest.AlterConfigsResource
        r = broker.call(AlterConfigsRequest(
            resources=[resource(resource_type=2, resource_name=data_topic,
                                configs=[resource.AlterableConfig(name=k, value=val)
                                         for k, val in configs])],
            validate_only=False), v)
        [res] = r.responses
        assert res.error_code == 0, f"error {res.error_code} {res.error_message}"

    def check(v):
        alter(v, [("retention.ms", str(7_200_000 + v)), ("segment.ms", "3600000")])
        got = describe()
        assert got["retention.ms"] == str(7_200_000 + v) and got["segment.ms"] == "3600000", got
        alter(v, [("retention.ms", str(7_300_000 + v))])
        got = describe()
        assert got["retention.ms"] == str(7_300_000 + v), got
        assert got["segment.ms"] == "604800000", f"segment.ms not back to its default: {got}"
    sweep(broker, AlterConfigsRequest, check)
