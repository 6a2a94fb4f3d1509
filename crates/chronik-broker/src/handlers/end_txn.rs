//! EndTxn (key 26): commit or abort the producer's open transaction. Answered once the
//! decision is stored; the markers are written before the answer when every partition of the
//! transaction can take them, and retried by the coordinator otherwise.

use crate::broker::Broker;
use crate::error::{fenced_for_version, NONE};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use std::sync::Arc;

/// Version 2+ knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH.
const PRODUCER_FENCED_VERSION: i16 = 2;

pub async fn handle(broker: &Arc<Broker>, version: i16, req: EndTxnRequest) -> EndTxnResponse {
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
        Err(e) => fenced_for_version(e.code(), version >= PRODUCER_FENCED_VERSION),
    })
}
