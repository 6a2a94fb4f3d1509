#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden bytes: request frames captured from real clients (kcat, confluent-kafka, kafka-python)
//! talking to chronik-server, and the server's responses to them. `tests/golden/README.md` says how
//! they were captured (`tests/golden/capture.py`).
//!
//! For every captured request: the size prefix matches, `decode_request` accepts it, the API and
//! version are the ones in the file name, re-encoding the decoded header and body reproduces the
//! captured bytes exactly, and a few fields per API hold what the client was asked to send.
//! For every captured response: `encode_response` reproduces it from its decoded body, and its
//! content is what the scenario expects (no errors, the produced records come back).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use chronik_protocol::kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseHeader, ResponseKind,
};
use chronik_protocol::kafka_protocol::protocol::{Decodable, Encodable};
use chronik_protocol::kafka_protocol::records::RecordBatchDecoder;
use chronik_protocol::{decode_request, encode_response, versions, DecodedRequest};

/// The APIs the captured set must cover (at least one client each). A new API served by Chronik
/// should get a capture too (add a scenario to `capture.py`, re-run it, extend this list).
const COVERED_APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
];
const CLIENTS: &[&str] = &["kcat", "confluent_kafka", "kafka_python"];
/// What every client does: connect, produce, read back.
const DATA_PATH_APIS: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::ListOffsets,
    ApiKey::Fetch,
];
/// What the two admin-capable clients do.
const ADMIN_APIS: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
    ApiKey::DeleteTopics,
];
/// The records every scenario produces to partition 0 (keys k0, k1, k2).
const VALUES: &[&str] = &["golden-0", "golden-1", "golden-2"];

#[derive(Debug)]
struct Golden {
    name: String,
    client: String,
    api: ApiKey,
    version: i16,
    /// The whole frame, size prefix included.
    frame: Vec<u8>,
}

impl Golden {
    /// The frame without its size prefix, after checking that the prefix is the frame's length.
    fn body(&self) -> Bytes {
        assert!(
            self.frame.len() >= 4,
            "{}: shorter than a size prefix",
            self.name
        );
        let (prefix, rest) = self.frame.split_at(4);
        let size = i32::from_be_bytes(prefix.try_into().unwrap());
        assert_eq!(
            usize::try_from(size).ok(),
            Some(rest.len()),
            "{}: size prefix {size} but {} bytes follow",
            self.name,
            rest.len()
        );
        Bytes::copy_from_slice(rest)
    }

    /// The topic the client's scenario uses.
    fn topic(&self) -> &'static str {
        match self.client.as_str() {
            "kcat" => "golden-kcat",
            "confluent_kafka" => "golden-ck",
            "kafka_python" => "golden-kp",
            other => panic!("{}: unknown client {other}", self.name),
        }
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn parse_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "{}: odd number of hex digits",
        path.display()
    );
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(s, 16)
                .unwrap_or_else(|_| panic!("{}: bad hex {s:?}", path.display()))
        })
        .collect()
}

fn api_by_name(name: &str) -> Option<ApiKey> {
    (0..=i16::from(u8::MAX))
        .filter_map(|k| ApiKey::try_from(k).ok())
        .find(|k| format!("{k:?}") == name)
}

/// `<client>-<Api>-v<version>.hex` → (client, api, version).
fn parse_name(stem: &str) -> (String, ApiKey, i16) {
    let (rest, version) = stem
        .rsplit_once("-v")
        .unwrap_or_else(|| panic!("{stem}: no -v<version>"));
    let (client, api) = rest
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("{stem}: no <client>-<Api>"));
    let api = api_by_name(api).unwrap_or_else(|| panic!("{stem}: unknown API {api}"));
    (client.to_string(), api, version.parse().unwrap())
}

fn load(sub: &str) -> Vec<Golden> {
    let dir = golden_dir().join(sub);
    let mut out: Vec<Golden> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let (client, api, version) = parse_name(&stem);
            Golden {
                name: format!("{sub}/{stem}"),
                client,
                api,
                version,
                frame: parse_hex(&path),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn requests() -> Vec<Golden> {
    let all = load("requests");
    assert!(!all.is_empty(), "no golden request frames");
    all
}

fn decode(g: &Golden) -> DecodedRequest {
    decode_request(g.body()).unwrap_or_else(|e| panic!("{}: {e}", g.name))
}

fn assert_same_bytes(name: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{name}: re-encoded {} bytes, captured {} bytes, first difference at byte {at}\n got: {}\nwant: {}",
            got.len(),
            want.len(),
            hex(got.get(at.saturating_sub(8)..).unwrap_or_default()),
            hex(want.get(at.saturating_sub(8)..).unwrap_or_default()),
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().take(48).map(|x| format!("{x:02x}")).collect()
}

/// Decodes the (uncompressed) records a client produced or the server returned.
fn records_of(name: &str, records: &Option<Bytes>) -> Vec<(String, String)> {
    let mut buf = records
        .clone()
        .unwrap_or_else(|| panic!("{name}: no records"));
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
        for r in set.records {
            let s = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
            out.push((s(r.key), s(r.value)));
        }
    }
    out
}

fn expected_records() -> Vec<(String, String)> {
    VALUES
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v.to_string()))
        .collect()
}

#[test]
fn the_captured_set_covers_every_client_and_api() {
    let have: BTreeSet<(String, i16)> = requests()
        .iter()
        .map(|g| (g.client.clone(), g.api as i16))
        .collect();
    for client in CLIENTS {
        for api in DATA_PATH_APIS {
            assert!(
                have.contains(&(client.to_string(), *api as i16)),
                "no {api:?} from {client}"
            );
        }
    }
    for client in ["confluent_kafka", "kafka_python"] {
        for api in ADMIN_APIS {
            assert!(
                have.contains(&(client.to_string(), *api as i16)),
                "no {api:?} from {client}"
            );
        }
    }
    for api in COVERED_APIS {
        assert!(
            have.iter().any(|(_, k)| *k == *api as i16),
            "no client frame for {api:?}"
        );
    }
}

#[test]
fn requests_decode_to_the_api_and_version_in_their_name() {
    for g in requests() {
        assert!(
            versions::is_supported(g.api, g.version),
            "{}: {:?} v{} is no longer supported, but a real client sends it",
            g.name,
            g.api,
            g.version
        );
        let d = decode(&g);
        assert_eq!(d.api_key, g.api, "{}", g.name);
        assert_eq!(d.header.request_api_key, g.api as i16, "{}", g.name);
        assert_eq!(d.header.request_api_version, g.version, "{}", g.name);
        assert_eq!(
            d.header.client_id.as_deref(),
            Some(g.client.as_str()),
            "{}: client id",
            g.name
        );
    }
}

#[test]
fn requests_reencode_to_the_captured_bytes() {
    for g in requests() {
        let d = decode(&g);
        let mut buf = BytesMut::new();
        d.header
            .encode(&mut buf, g.api.request_header_version(g.version))
            .unwrap();
        d.body.encode(&mut buf, g.version).unwrap();
        assert_same_bytes(&g.name, &buf, &g.body());
    }
}

#[test]
fn requests_carry_what_the_clients_were_asked_to_send() {
    for g in requests() {
        let d = decode(&g);
        let n = g.name.as_str();
        let topic = g.topic();
        let v = g.version;
        match d.body {
            RequestKind::Produce(r) => {
                assert_eq!(r.acks, -1, "{n}: acks=all is every client's default");
                assert!(r.timeout_ms > 0, "{n}");
                assert_eq!(r.transactional_id, None, "{n}");
                let [t] = r.topic_data.as_slice() else {
                    panic!("{n}: {} topics", r.topic_data.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                let [p] = t.partition_data.as_slice() else {
                    panic!("{n}: {} partitions", t.partition_data.len())
                };
                assert_eq!(p.index, 0, "{n}");
                assert_eq!(records_of(n, &p.records), expected_records(), "{n}");
            }
            RequestKind::Fetch(r) => {
                assert_eq!(r.max_wait_ms, 500, "{n}: fetch.wait.max.ms default");
                assert_eq!(r.min_bytes, 1, "{n}");
                assert!(r.max_bytes > 0, "{n}");
                assert_eq!(r.replica_id, -1, "{n}: a consumer, not a follower");
                let [t] = r.topics.as_slice() else {
                    panic!("{n}: {} topics", r.topics.len())
                };
                if v >= 13 {
                    assert!(t.topic.is_empty(), "{n}: v13+ names topics by id");
                    assert!(!t.topic_id.is_nil(), "{n}: topic id");
                } else {
                    assert_eq!(&*t.topic.0, topic, "{n}");
                }
                let [p] = t.partitions.as_slice() else {
                    panic!("{n}: {} partitions", t.partitions.len())
                };
                assert_eq!((p.partition, p.fetch_offset), (0, 0), "{n}");
                assert!(p.partition_max_bytes > 0, "{n}");
                assert!(r.forgotten_topics_data.is_empty(), "{n}");
            }
            RequestKind::ListOffsets(r) => {
                assert_eq!(r.replica_id, -1, "{n}");
                let [t] = r.topics.as_slice() else {
                    panic!("{n}: {} topics", r.topics.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                let [p] = t.partitions.as_slice() else {
                    panic!("{n}: {} partitions", t.partitions.len())
                };
                assert_eq!(p.partition_index, 0, "{n}");
                assert_eq!(p.timestamp, -2, "{n}: EARLIEST (read from the beginning)");
            }
            RequestKind::Metadata(r) => {
                let topics: Option<Vec<Option<String>>> = r.topics.map(|ts| {
                    ts.iter()
                        .map(|t| t.name.as_ref().map(|s| s.0.to_string()))
                        .collect()
                });
                if g.client == "kcat" {
                    // kcat -P asks for its topic, allowing auto-creation.
                    assert_eq!(topics, Some(vec![Some(topic.to_string())]), "{n}");
                    assert!(r.allow_auto_topic_creation, "{n}");
                } else {
                    // The first Metadata of the Python clients only asks for brokers.
                    assert_eq!(topics, Some(vec![]), "{n}");
                }
                assert!(!r.include_topic_authorized_operations, "{n}");
            }
            RequestKind::ApiVersions(r) => {
                if v >= 3 {
                    let software = match g.client.as_str() {
                        "kcat" => "librdkafka",
                        "confluent_kafka" => "confluent-kafka-python",
                        _ => "kafka-python",
                    };
                    assert_eq!(&*r.client_software_name, software, "{n}");
                    assert!(!r.client_software_version.is_empty(), "{n}");
                }
            }
            RequestKind::CreateTopics(r) => {
                let [t] = r.topics.as_slice() else {
                    panic!("{n}: {} topics", r.topics.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                assert_eq!((t.num_partitions, t.replication_factor), (2, 1), "{n}");
                assert!(t.assignments.is_empty(), "{n}");
                let configs: Vec<(String, Option<String>)> = t
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                assert_eq!(
                    configs,
                    vec![("retention.ms".to_string(), Some("3600000".to_string()))],
                    "{n}"
                );
                assert!(!r.validate_only, "{n}");
            }
            RequestKind::DeleteTopics(r) => {
                let names: Vec<String> = if v >= 6 {
                    r.topics
                        .iter()
                        .map(|t| t.name.as_ref().unwrap().0.to_string())
                        .collect()
                } else {
                    r.topic_names.iter().map(|t| t.0.to_string()).collect()
                };
                assert_eq!(names, vec![topic.to_string()], "{n}");
            }
            RequestKind::DeleteRecords(r) => {
                let [t] = r.topics.as_slice() else {
                    panic!("{n}: {} topics", r.topics.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                let [p] = t.partitions.as_slice() else {
                    panic!("{n}: {} partitions", t.partitions.len())
                };
                assert_eq!((p.partition_index, p.offset), (0, 1), "{n}");
            }
            RequestKind::DescribeConfigs(r) => {
                let [res] = r.resources.as_slice() else {
                    panic!("{n}: {} resources", r.resources.len())
                };
                assert_eq!(res.resource_type, 2, "{n}: TOPIC");
                assert_eq!(&*res.resource_name, topic, "{n}");
                assert_eq!(res.configuration_keys, None, "{n}: all keys");
            }
            RequestKind::CreatePartitions(r) => {
                let [t] = r.topics.as_slice() else {
                    panic!("{n}: {} topics", r.topics.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                assert_eq!(t.count, 3, "{n}");
                assert_eq!(t.assignments, None, "{n}");
                assert!(!r.validate_only, "{n}");
            }
            RequestKind::IncrementalAlterConfigs(r) => {
                let [res] = r.resources.as_slice() else {
                    panic!("{n}: {} resources", r.resources.len())
                };
                assert_eq!(res.resource_type, 2, "{n}: TOPIC");
                assert_eq!(&*res.resource_name, topic, "{n}");
                let [c] = res.configs.as_slice() else {
                    panic!("{n}: {} configs", res.configs.len())
                };
                assert_eq!(&*c.name, "retention.ms", "{n}");
                assert_eq!(c.config_operation, 0, "{n}: SET");
                assert_eq!(c.value.as_deref(), Some("7200000"), "{n}");
            }
            RequestKind::DescribeCluster(r) => {
                assert_eq!(r.endpoint_type, 1, "{n}: brokers");
            }
            other => panic!("{n}: no content checks for {other:?}; add some"),
        }
    }
}

/// The response captured for the request in the file of the same name.
struct GoldenResponse {
    golden: Golden,
    correlation_id: i32,
    body: ResponseKind,
}

fn responses() -> Vec<GoldenResponse> {
    let reqs = requests();
    let all = load("responses");
    assert!(!all.is_empty(), "no golden response frames");
    all.into_iter()
        .map(|g| {
            let stem = g.name.trim_start_matches("responses/");
            let req = reqs
                .iter()
                .find(|r| r.name.trim_start_matches("requests/") == stem)
                .unwrap_or_else(|| panic!("{}: no request with that name", g.name));
            let request_header = decode(req).header;
            let mut buf = g.body();
            let header = ResponseHeader::decode(&mut buf, g.api.response_header_version(g.version))
                .unwrap_or_else(|e| panic!("{}: header: {e}", g.name));
            assert_eq!(
                header.correlation_id, request_header.correlation_id,
                "{}: answers another request",
                g.name
            );
            let body = ResponseKind::decode(g.api, &mut buf, g.version)
                .unwrap_or_else(|e| panic!("{}: {e}", g.name));
            assert!(
                buf.is_empty(),
                "{}: {} bytes after the body",
                g.name,
                buf.len()
            );
            GoldenResponse {
                correlation_id: header.correlation_id,
                golden: g,
                body,
            }
        })
        .collect()
}

#[test]
fn responses_reencode_to_the_captured_bytes_with_encode_response() {
    let all = responses();
    // Every request got its response (Produce with acks=0 would not, but no scenario uses it).
    assert_eq!(all.len(), requests().len());
    for r in all {
        let frame = encode_response(r.correlation_id, r.golden.version, &r.body)
            .unwrap_or_else(|e| panic!("{}: {e}", r.golden.name));
        assert_same_bytes(&r.golden.name, &frame, &r.golden.frame);
    }
}

#[test]
fn responses_are_what_the_scenarios_expect() {
    for r in responses() {
        let g = &r.golden;
        let n = g.name.as_str();
        let topic = g.topic();
        match r.body {
            ResponseKind::ApiVersions(b) => {
                assert_eq!(b.error_code, 0, "{n}");
                // Whatever the server advertised then, the codec still decodes now.
                for a in &b.api_keys {
                    let api = ApiKey::try_from(a.api_key).unwrap();
                    let (min, max) = versions::supported_range(api)
                        .unwrap_or_else(|| panic!("{n}: {api:?} advertised, not supported"));
                    assert!(
                        min <= a.min_version && a.max_version <= max,
                        "{n}: {api:?} {}..={} advertised, {min}..={max} supported",
                        a.min_version,
                        a.max_version
                    );
                }
            }
            ResponseKind::Metadata(b) => {
                assert_eq!(b.brokers.len(), 1, "{n}");
                assert_eq!(b.brokers[0].node_id, 1, "{n}");
                assert_eq!(&*b.brokers[0].host, "127.0.0.1", "{n}");
                assert_eq!(b.controller_id, 1, "{n}");
                for t in &b.topics {
                    assert_eq!(t.error_code, 0, "{n}");
                    assert!(t.partitions.iter().all(|p| p.error_code == 0), "{n}");
                }
            }
            ResponseKind::Produce(b) => {
                let [t] = b.responses.as_slice() else {
                    panic!("{n}: {} topics", b.responses.len())
                };
                assert_eq!(&*t.name.0, topic, "{n}");
                let [p] = t.partition_responses.as_slice() else {
                    panic!("{n}: {} partitions", t.partition_responses.len())
                };
                assert_eq!((p.index, p.error_code, p.base_offset), (0, 0, 0), "{n}");
            }
            ResponseKind::Fetch(b) => {
                assert_eq!(b.error_code, 0, "{n}");
                let [t] = b.responses.as_slice() else {
                    panic!("{n}: {} topics", b.responses.len())
                };
                if g.version < 13 {
                    assert_eq!(&*t.topic.0, topic, "{n}");
                }
                let [p] = t.partitions.as_slice() else {
                    panic!("{n}: {} partitions", t.partitions.len())
                };
                assert_eq!((p.partition_index, p.error_code), (0, 0), "{n}");
                assert_eq!(p.high_watermark, 3, "{n}");
                assert_eq!(records_of(n, &p.records), expected_records(), "{n}");
            }
            ResponseKind::ListOffsets(b) => {
                let p = &b.topics[0].partitions[0];
                assert_eq!((p.error_code, p.offset), (0, 0), "{n}: earliest offset");
            }
            ResponseKind::CreateTopics(b) => {
                assert_eq!(&*b.topics[0].name.0, topic, "{n}");
                assert_eq!(b.topics[0].error_code, 0, "{n}");
            }
            ResponseKind::DeleteTopics(b) => {
                assert_eq!(b.responses[0].error_code, 0, "{n}");
            }
            ResponseKind::DeleteRecords(b) => {
                let p = &b.topics[0].partitions[0];
                assert_eq!((p.error_code, p.low_watermark), (0, 1), "{n}");
            }
            ResponseKind::DescribeConfigs(b) => {
                let res = &b.results[0];
                assert_eq!(res.error_code, 0, "{n}");
                let retention = res
                    .configs
                    .iter()
                    .find(|c| &*c.name == "retention.ms")
                    .unwrap_or_else(|| panic!("{n}: no retention.ms"));
                assert_eq!(retention.value.as_deref(), Some("3600000"), "{n}");
                assert_eq!(retention.config_source, 1, "{n}: DYNAMIC_TOPIC_CONFIG");
            }
            ResponseKind::CreatePartitions(b) => {
                assert_eq!(b.results[0].error_code, 0, "{n}");
            }
            ResponseKind::IncrementalAlterConfigs(b) => {
                assert_eq!(b.responses[0].error_code, 0, "{n}");
            }
            ResponseKind::DescribeCluster(b) => {
                assert_eq!(b.error_code, 0, "{n}");
                assert_eq!(b.brokers.len(), 1, "{n}");
                assert_eq!(b.controller_id, 1, "{n}");
            }
            other => panic!("{n}: no content checks for {other:?}; add some"),
        }
    }
}

#[test]
fn hex_names_parse() {
    assert_eq!(
        parse_name("kafka_python-ApiVersions-v4"),
        ("kafka_python".to_string(), ApiKey::ApiVersions, 4)
    );
    assert_eq!(
        parse_name("kcat-IncrementalAlterConfigs-v1"),
        ("kcat".to_string(), ApiKey::IncrementalAlterConfigs, 1)
    );
}
