//! InitProducerId (key 22): a new producer id for an idempotent producer. Transactional
//! producers are refused until transactions are implemented.

use crate::broker::Broker;
use crate::error::code;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let fail = |c: i16| {
        InitProducerIdResponse::default()
            .with_error_code(c)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
    };
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        return fail(code(ResponseError::CoordinatorNotAvailable));
    }
    // Without a transactional id Kafka always hands out a new producer id (epoch 0).
    match broker.allocate_producer_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(id.into())
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            fail(e.code())
        }
    }
}
