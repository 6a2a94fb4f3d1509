//! EndTxn (key 26): commit or abort the producer's open transaction. Answered once the
//! decision is stored; the markers are written before the answer when every partition of the
//! transaction can take them, and retried by the coordinator otherwise.

use crate::broker::Broker;
use crate::error::NONE;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = req.transactional_id.0.to_string();
    if let Some(c) = broker.txns.coordinator_error(broker, &transactional_id) {
        return EndTxnResponse::default().with_error_code(c);
    }
    let producer = (req.producer_id.0, req.producer_epoch);
    let result = broker
        .txns
        .end_txn(broker, &transactional_id, producer, req.committed)
        .await;
    EndTxnResponse::default().with_error_code(match result {
        Ok(()) => NONE,
        Err(e) => e.code(),
    })
}
