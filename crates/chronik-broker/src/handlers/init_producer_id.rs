//! InitProducerId (key 22): a new producer id for an idempotent producer; for a transactional
//! producer, its id and a bumped epoch from the transaction coordinator (which fences older
//! producers with the same transactional id and aborts their open transaction).

use crate::broker::Broker;
use crate::error::{code, fenced_for_version};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use std::sync::Arc;

/// InitProducerId v4+ knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH.
const PRODUCER_FENCED_VERSION: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let fail = |c: i16| {
        InitProducerIdResponse::default()
            .with_error_code(fenced_for_version(c, version >= PRODUCER_FENCED_VERSION))
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
    };
    let ok = |id: i64, epoch: i16| {
        InitProducerIdResponse::default()
            .with_producer_id(id.into())
            .with_producer_epoch(epoch)
    };
    let transactional_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
    if transactional_id.as_deref() == Some("") {
        return fail(code(ResponseError::InvalidRequest));
    }
    let Some(transactional_id) = transactional_id else {
        // Without a transactional id Kafka always hands out a new producer id (epoch 0).
        return match broker.allocate_producer_id() {
            Ok(id) => ok(id, 0),
            Err(e) => {
                tracing::error!(error = %e, "cannot allocate a producer id");
                fail(e.code())
            }
        };
    };
    if let Some(c) = broker.txns.coordinator_error(broker, &transactional_id) {
        return fail(c);
    }
    // v3+ (KIP-360): a producer re-initialising says which id and epoch it had.
    let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    match broker
        .txns
        .init_producer_id(
            broker,
            &transactional_id,
            req.transaction_timeout_ms,
            expected,
        )
        .await
    {
        Ok((id, epoch)) => ok(id, epoch),
        Err(e) => {
            let c = e.code();
            if c != code(ResponseError::ConcurrentTransactions) {
                tracing::info!(transactional_id, error = %e, "InitProducerId refused");
            }
            fail(c)
        }
    }
}
