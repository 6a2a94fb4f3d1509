//! DescribeTransactions (key 65): the state of transactional ids this node coordinates;
//! TRANSACTIONAL_ID_NOT_FOUND for unknown ones, NOT_COORDINATOR for ids coordinated elsewhere.

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::{code, NONE};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let errors: Vec<Option<i16>> = req
        .transactional_ids
        .iter()
        .map(|id| broker.txns.coordinator_error(broker, id.0.as_str()))
        .collect();
    let st = broker.txns.read().await;
    let states = req
        .transactional_ids
        .into_iter()
        .zip(errors)
        .map(|(id, error)| {
            let base = TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1)
                .with_transaction_state(str_bytes(""));
            if let Some(c) = error {
                return base.with_error_code(c);
            }
            let Some(m) = st.get(id.0.as_str()) else {
                return base.with_error_code(code(ResponseError::TransactionalIdNotFound));
            };
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &m.partitions {
                by_topic.entry(t.as_str()).or_default().push(*p);
            }
            let topics = by_topic
                .into_iter()
                .map(|(t, ps)| {
                    TopicData::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect();
            base.with_error_code(NONE)
                .with_transaction_state(str_bytes(m.state.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(m.producer_id.into())
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
