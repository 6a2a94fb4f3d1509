#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property round trips through the codec: arbitrary Produce, Fetch, Metadata and ApiVersions
//! requests at every version Chronik supports are encoded (header + body, size prefix), cut by
//! `split_frame` and decoded by `decode_request`, and must come back equal. Only fields that
//! exist in the chosen version are generated; the others keep their defaults, which is what the
//! decoder fills in.
//!
//! And: no input makes `decode_request` (or `split_frame`) panic.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use chronik_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use chronik_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use chronik_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use chronik_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest, RequestHeader,
    RequestKind, TopicName,
};
use chronik_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use chronik_protocol::{decode_request, split_frame, versions, DecodeError};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

// ---------------------------------------------------------------------------------------------
// Field strategies
// ---------------------------------------------------------------------------------------------

fn string() -> impl Strategy<Value = StrBytes> {
    "\\PC{0,16}".prop_map(StrBytes::from_string)
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-zA-Z0-9._-]{0,24}".prop_map(|s| TopicName(StrBytes::from_string(s)))
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Unknown tagged fields, only in flexible versions. Tags from 10 up, clear of every known tag
/// of the messages generated here.
fn tags(flexible: bool) -> BoxedStrategy<BTreeMap<i32, Bytes>> {
    if flexible {
        btree_map(10i32..20, bytes(8), 0..3).boxed()
    } else {
        Just(BTreeMap::new()).boxed()
    }
}

/// `kafka-protocol` does not re-export the `uuid` crate, so a UUID is made by decoding a v13
/// `FetchTopic` (topic id, empty partitions, no tags) and taking its `topic_id`.
fn uuid_carrier(n: u128) -> FetchTopic {
    let mut b = BytesMut::new();
    b.put_u128(n);
    b.put_u8(1); // compact array of 0 partitions
    b.put_u8(0); // no tagged fields
    FetchTopic::decode(&mut b.freeze(), 13).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Message strategies, per version
// ---------------------------------------------------------------------------------------------

/// The newest version of each API these strategies know the fields of.
const KNOWN_MAX: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 13),
    (ApiKey::Fetch, 18),
    (ApiKey::Metadata, 13),
    (ApiKey::ApiVersions, 4),
];

fn supported(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = versions::supported_range(api).unwrap();
    let known = KNOWN_MAX.iter().find(|(k, _)| *k == api).unwrap().1;
    assert!(
        max <= known,
        "{api:?} v{max} is supported: teach these strategies its fields"
    );
    min..=max
}

fn produce(v: i16) -> impl Strategy<Value = ProduceRequest> {
    let flex = v >= 9;
    let partition = (any::<i32>(), option::of(bytes(64)), tags(flex)).prop_map(|(i, r, t)| {
        PartitionProduceData::default()
            .with_index(i)
            .with_records(r)
            .with_unknown_tagged_fields(t)
    });
    let topic = (
        topic_name(),
        any::<u128>(),
        vec(partition, 0..3),
        tags(flex),
    )
        .prop_map(move |(name, id, ps, t)| {
            let td = TopicProduceData::default()
                .with_partition_data(ps)
                .with_unknown_tagged_fields(t);
            if v <= 12 {
                td.with_name(name)
            } else {
                td.with_topic_id(uuid_carrier(id).topic_id)
            }
        });
    (
        option::of(string()),
        any::<i16>(),
        any::<i32>(),
        vec(topic, 0..3),
        tags(flex),
    )
        .prop_map(|(txn, acks, timeout, topics, t)| {
            ProduceRequest::default()
                .with_transactional_id(txn.map(Into::into))
                .with_acks(acks)
                .with_timeout_ms(timeout)
                .with_topic_data(topics)
                .with_unknown_tagged_fields(t)
        })
}

fn fetch(v: i16) -> impl Strategy<Value = FetchRequest> {
    let flex = v >= 12;
    let partition = (
        (
            any::<i32>(),
            any::<i32>(),
            any::<i64>(),
            any::<i32>(),
            any::<i64>(),
            any::<i32>(),
        ),
        any::<u128>(),
        any::<i64>(),
        tags(flex),
    )
        .prop_map(move |((p, cle, off, lfe, lso, pmb), dir, hw, t)| {
            let mut x = FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(off)
                .with_partition_max_bytes(pmb)
                .with_unknown_tagged_fields(t);
            if v >= 9 {
                x = x.with_current_leader_epoch(cle);
            }
            if v >= 12 {
                x = x.with_last_fetched_epoch(lfe);
            }
            if v >= 5 {
                x = x.with_log_start_offset(lso);
            }
            if v >= 17 {
                x = x.with_replica_directory_id(uuid_carrier(dir).topic_id);
            }
            if v >= 18 {
                x = x.with_high_watermark(hw);
            }
            x
        });
    let topic = (
        topic_name(),
        any::<u128>(),
        vec(partition, 0..3),
        tags(flex),
    )
        .prop_map(move |(name, id, ps, t)| {
            let x = FetchTopic::default()
                .with_partitions(ps)
                .with_unknown_tagged_fields(t);
            if v <= 12 {
                x.with_topic(name)
            } else {
                x.with_topic_id(uuid_carrier(id).topic_id)
            }
        });
    let forgotten = (
        topic_name(),
        any::<u128>(),
        vec(any::<i32>(), 0..4),
        tags(flex),
    )
        .prop_map(move |(name, id, ps, t)| {
            let x = ForgottenTopic::default()
                .with_partitions(ps)
                .with_unknown_tagged_fields(t);
            if v <= 12 {
                x.with_topic(name)
            } else {
                x.with_topic_id(uuid_carrier(id).topic_id)
            }
        });
    (
        (option::of(string()), any::<i32>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i8>()),
        (any::<i32>(), any::<i32>()),
        vec(topic, 0..3),
        vec(forgotten, 0..2),
        string(),
        tags(flex),
    )
        .prop_map(
            move |(
                (cluster_id, replica, replica_epoch),
                (max_wait, min_bytes, max_bytes, isolation),
                (session_id, session_epoch),
                topics,
                forgotten,
                rack,
                t,
            )| {
                let mut r = FetchRequest::default()
                    .with_max_wait_ms(max_wait)
                    .with_min_bytes(min_bytes)
                    .with_max_bytes(max_bytes)
                    .with_isolation_level(isolation)
                    .with_topics(topics)
                    .with_unknown_tagged_fields(t);
                if v >= 12 {
                    r = r.with_cluster_id(cluster_id);
                }
                if v <= 14 {
                    r = r.with_replica_id(replica.into());
                } else {
                    r = r.with_replica_state(
                        ReplicaState::default()
                            .with_replica_id(replica.into())
                            .with_replica_epoch(replica_epoch),
                    );
                }
                if v >= 7 {
                    r = r
                        .with_session_id(session_id)
                        .with_session_epoch(session_epoch)
                        .with_forgotten_topics_data(forgotten);
                }
                if v >= 11 {
                    r = r.with_rack_id(rack);
                }
                r
            },
        )
}

fn metadata(v: i16) -> impl Strategy<Value = MetadataRequest> {
    let flex = v >= 9;
    let topic =
        (option::of(topic_name()), any::<u128>(), tags(flex)).prop_map(move |(name, id, t)| {
            // Names are nullable from v10 (topics by id).
            let name = if v >= 10 {
                name
            } else {
                Some(name.unwrap_or_default())
            };
            let x = MetadataRequestTopic::default()
                .with_name(name)
                .with_unknown_tagged_fields(t);
            if v >= 10 {
                x.with_topic_id(uuid_carrier(id).topic_id)
            } else {
                x
            }
        });
    (
        option::of(vec(topic, 0..4)),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        tags(flex),
    )
        .prop_map(move |(topics, auto_create, cluster_ops, topic_ops, t)| {
            // A null topic list ("all topics") exists from v1; v0 uses an empty one.
            let topics = if v >= 1 {
                topics
            } else {
                Some(topics.unwrap_or_default())
            };
            let mut r = MetadataRequest::default()
                .with_topics(topics)
                .with_unknown_tagged_fields(t);
            if v >= 4 {
                r = r.with_allow_auto_topic_creation(auto_create);
            }
            if (8..=10).contains(&v) {
                r = r.with_include_cluster_authorized_operations(cluster_ops);
            }
            if v >= 8 {
                r = r.with_include_topic_authorized_operations(topic_ops);
            }
            r
        })
}

fn api_versions(v: i16) -> impl Strategy<Value = ApiVersionsRequest> {
    (string(), string(), tags(v >= 3)).prop_map(move |(name, version, t)| {
        let r = ApiVersionsRequest::default().with_unknown_tagged_fields(t);
        if v >= 3 {
            r.with_client_software_name(name)
                .with_client_software_version(version)
        } else {
            r
        }
    })
}

fn header(api: ApiKey, v: i16) -> impl Strategy<Value = RequestHeader> {
    let flexible = api.request_header_version(v) >= 2;
    (any::<i32>(), option::of(string()), tags(flexible)).prop_map(move |(corr, client, t)| {
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(v)
            .with_correlation_id(corr)
            .with_client_id(client)
            .with_unknown_tagged_fields(t)
    })
}

fn body(api: ApiKey, v: i16) -> BoxedStrategy<RequestKind> {
    match api {
        ApiKey::Produce => produce(v).prop_map(RequestKind::Produce).boxed(),
        ApiKey::Fetch => fetch(v).prop_map(RequestKind::Fetch).boxed(),
        ApiKey::Metadata => metadata(v).prop_map(RequestKind::Metadata).boxed(),
        ApiKey::ApiVersions => api_versions(v).prop_map(RequestKind::ApiVersions).boxed(),
        other => panic!("no strategy for {other:?}"),
    }
}

/// (version, header, body) for `api` at any version Chronik supports.
fn request(api: ApiKey) -> impl Strategy<Value = (i16, RequestHeader, RequestKind)> {
    supported(api).prop_flat_map(move |v| (Just(v), header(api, v), body(api, v)))
}

/// Size prefix + header + body, as a client sends it.
fn encode_frame(api: ApiKey, v: i16, header: &RequestHeader, body: &RequestKind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(v))
        .unwrap();
    body.encode(&mut buf, v).unwrap();
    let size = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// The frame arrives in two pieces (cut at `cut`), followed by the start of the next frame;
/// `split_frame` waits for the whole frame, takes exactly it, and `decode_request` gives back
/// the header and body that were encoded.
fn check_round_trip(
    api: ApiKey,
    v: i16,
    header: RequestHeader,
    body: RequestKind,
    cut: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let frame = encode_frame(api, v, &header, &body);
    let size = frame.len() - 4;
    let cut = cut.index(frame.len());
    let mut buf = BytesMut::from(&frame[..cut]);
    prop_assert_eq!(split_frame(&mut buf, size), Ok(None), "incomplete frame");
    buf.extend_from_slice(&frame[cut..]);
    buf.extend_from_slice(&[0, 0]); // first bytes of the next frame
    let one = split_frame(&mut buf, size).unwrap();
    prop_assert_eq!(one.as_ref().map(|b| &b[..]), Some(&frame[4..]));
    prop_assert_eq!(&buf[..], &[0u8, 0][..], "the next frame's bytes stay");
    let decoded = decode_request(one.unwrap())
        .map_err(|e| TestCaseError::fail(format!("{api:?} v{v}: {e}")))?;
    prop_assert_eq!(decoded.api_key, api);
    prop_assert_eq!(decoded.header, header);
    prop_assert_eq!(decoded.body, body);
    Ok(())
}

proptest! {
    #[test]
    fn produce_round_trips((v, h, b) in request(ApiKey::Produce), cut in any::<prop::sample::Index>()) {
        check_round_trip(ApiKey::Produce, v, h, b, cut)?;
    }

    #[test]
    fn fetch_round_trips((v, h, b) in request(ApiKey::Fetch), cut in any::<prop::sample::Index>()) {
        check_round_trip(ApiKey::Fetch, v, h, b, cut)?;
    }

    #[test]
    fn metadata_round_trips((v, h, b) in request(ApiKey::Metadata), cut in any::<prop::sample::Index>()) {
        check_round_trip(ApiKey::Metadata, v, h, b, cut)?;
    }

    #[test]
    fn api_versions_round_trips((v, h, b) in request(ApiKey::ApiVersions), cut in any::<prop::sample::Index>()) {
        check_round_trip(ApiKey::ApiVersions, v, h, b, cut)?;
    }

    /// Arbitrary bytes: `decode_request` answers Ok or Err, never panics.
    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Bytes::from(b));
    }

    /// Arbitrary bytes as a stream: `split_frame` with a small maximum, then `decode_request` on
    /// every frame, as a connection reads them (the `frame_and_request` fuzz target, in short).
    #[test]
    fn arbitrary_streams_never_panic(b in vec(any::<u8>(), 0..512), max in 0usize..256) {
        let mut buf = BytesMut::from(&b[..]);
        while let Ok(Some(frame)) = split_frame(&mut buf, max) {
            let _ = decode_request(frame);
        }
    }

    /// A valid header of a supported API and version, then arbitrary bytes: reaches the body
    /// decoders, where pure random bytes rarely get.
    #[test]
    fn supported_header_then_arbitrary_body_never_panics(
        which in any::<prop::sample::Index>(),
        version in any::<prop::sample::Index>(),
        body in vec(any::<u8>(), 0..256),
    ) {
        let (api, min, max) = *which.get(versions::SUPPORTED);
        let v = min + i16::try_from(version.index(usize::try_from(max - min + 1).unwrap())).unwrap();
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(v)
            .encode(&mut buf, api.request_header_version(v))
            .unwrap();
        buf.extend_from_slice(&body);
        let _ = decode_request(buf.freeze());
    }

    /// Valid requests with a few bytes overwritten, or cut short, still never panic.
    #[test]
    fn damaged_requests_never_panic(
        (v, h, b) in request(ApiKey::Fetch),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        keep in any::<prop::sample::Index>(),
    ) {
        let frame = encode_frame(ApiKey::Fetch, v, &h, &b);
        let mut body = frame[4..].to_vec();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        body.truncate(keep.index(body.len() + 1));
        let _ = decode_request(Bytes::from(body));
    }
}

/// A 22-byte Produce v3 request whose topic array claims i32::MAX entries. The decoder must say
/// Malformed; today it asks the allocator for ~200 GB up front (kafka-protocol 0.18
/// `Array::decode` does `Vec::with_capacity(n)` before reading an element) and the process
/// aborts — one such frame takes chronik-server down.
#[test]
fn huge_array_count_is_an_error_not_an_abort() {
    let frame: &[u8] = &[
        0, 0, 0, 3, // Produce v3
        0, 0, 0, 1, // correlation id
        0xff, 0xff, // client id: null
        0xff, 0xff, // transactional id: null
        0, 1, // acks
        0, 0, 0, 0, // timeout
        0x7f, 0xff, 0xff, 0xff, // topic_data: i32::MAX entries, none present
    ];
    assert!(matches!(
        decode_request(Bytes::from_static(frame)),
        Err(DecodeError::Malformed(_))
    ));
}

/// The proptests pick versions at random; this makes sure each supported version of each API is
/// exercised (a few deterministic cases per version).
#[test]
fn every_supported_version_round_trips() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for (api, _) in KNOWN_MAX {
        for v in supported(*api) {
            for _ in 0..8 {
                let h = header(*api, v).new_tree(&mut runner).unwrap().current();
                let b = body(*api, v).new_tree(&mut runner).unwrap().current();
                let frame = encode_frame(*api, v, &h, &b);
                let decoded = decode_request(Bytes::copy_from_slice(&frame[4..]))
                    .unwrap_or_else(|e| panic!("{api:?} v{v}: {e}"));
                assert_eq!(decoded.header, h, "{api:?} v{v}");
                assert_eq!(decoded.body, b, "{api:?} v{v}");
            }
        }
    }
}
