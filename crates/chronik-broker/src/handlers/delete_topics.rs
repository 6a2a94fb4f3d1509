//! DeleteTopics (key 20): by name (all versions) or by topic id (v6+).

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::{code, NONE};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use std::sync::Arc;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6+ sends `topics` (name or id); earlier versions send `topic_names`.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.as_str().to_string()),
                    t.topic_id,
                )
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| broker.topic_by_id(id).map(|t| t.record.name.clone()));
            let mut r = DeletableTopicResult::default().with_topic_id(id);
            let Some(name) = name else {
                return r.with_error_code(code(ResponseError::UnknownTopicId));
            };
            r.name = Some(topic_name(&name));
            if crate::topics::is_internal_topic(&name) {
                return r
                    .with_error_code(code(ResponseError::InvalidTopicException))
                    .with_error_message(Some(str_bytes(format!(
                        "Cannot delete internal topic {name}"
                    ))));
            }
            if !broker.config.delete_topic_enable {
                return r.with_error_code(code(ResponseError::TopicDeletionDisabled));
            }
            match broker.delete_topic(&name) {
                Ok(deleted_id) => {
                    if version >= 6 {
                        r.topic_id = deleted_id;
                    }
                    r.with_error_code(NONE)
                }
                Err(e) => r
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
