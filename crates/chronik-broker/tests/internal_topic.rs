#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Clients cannot write to or delete `__consumer_offsets` (Kafka refuses both).

use chronik_broker::topics::CONSUMER_OFFSETS_TOPIC;
use chronik_broker::{dispatch, Broker, BrokerConfig};
use chronik_protocol::kafka_protocol::messages::*;
use chronik_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use chronik_protocol::{decode_request, DecodedRequest};
use std::sync::Arc;

const INVALID_TOPIC_EXCEPTION: i16 = 17;

fn wire(api: ApiKey, version: i16, body: RequestKind) -> DecodedRequest {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1);
    let mut buf = bytes::BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    decode_request(buf.freeze()).unwrap()
}

fn offsets_topic() -> TopicName {
    TopicName(StrBytes::from_static_str(CONSUMER_OFFSETS_TOPIC))
}

async fn broker_with_offsets_topic(dir: &std::path::Path) -> Arc<Broker> {
    let broker = Broker::open(BrokerConfig::new(
        1,
        dir.to_path_buf(),
        "127.0.0.1".into(),
        9092,
    ))
    .unwrap();
    broker.groups.ensure_offsets_topic(&broker).unwrap();
    broker
}

#[tokio::test]
async fn produce_to_the_offsets_topic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_offsets_topic(dir.path()).await;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(offsets_topic())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from_static(b"garbage"))),
            ])]);
    let resp = dispatch(
        &broker,
        wire(ApiKey::Produce, 9, RequestKind::Produce(req)),
        "/127.0.0.1",
    )
    .await
    .unwrap();
    let ResponseKind::Produce(resp) = resp else {
        panic!("not a produce response")
    };
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code,
        INVALID_TOPIC_EXCEPTION
    );
    let p = broker.partition(CONSUMER_OFFSETS_TOPIC, 0).unwrap();
    assert_eq!(Broker::offsets(&p).2, 0, "nothing was appended");
}

#[tokio::test]
async fn deleting_the_offsets_topic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_offsets_topic(dir.path()).await;
    let req = DeleteTopicsRequest::default().with_topic_names(vec![offsets_topic()]);
    let resp = dispatch(
        &broker,
        wire(ApiKey::DeleteTopics, 4, RequestKind::DeleteTopics(req)),
        "/127.0.0.1",
    )
    .await
    .unwrap();
    let ResponseKind::DeleteTopics(resp) = resp else {
        panic!("not a delete-topics response")
    };
    assert_eq!(resp.responses[0].error_code, INVALID_TOPIC_EXCEPTION);
    assert!(broker.topic(CONSUMER_OFFSETS_TOPIC).is_some());
}
