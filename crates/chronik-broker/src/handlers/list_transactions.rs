//! ListTransactions (key 66), v0-1: the transactional ids this node coordinates, filtered by
//! state names, producer ids and (v1) a minimum running time in ms; unknown state names are
//! reported back as Kafka does.

use super::str_bytes;
use crate::broker::{now_ms, Broker};
use chronik_txn::TxnState;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse};
use std::sync::Arc;

const STATES: [TxnState; 6] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
];

pub async fn handle(
    broker: &Arc<Broker>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let unknown: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = now_ms();
    let st = broker.txns.read().await;
    let states = st
        .transactions()
        .filter(|(_, m)| {
            req.state_filters.is_empty()
                || req
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == m.state.name())
        })
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        .filter(|(_, m)| req.duration_filter < 0 || now - m.start_ms >= req.duration_filter)
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(str_bytes(id.as_str()).into())
                .with_producer_id(m.producer_id.into())
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
