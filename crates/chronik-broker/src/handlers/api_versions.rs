//! ApiVersions (key 18).

use crate::error::code;
use chronik_protocol::versions::SUPPORTED;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

/// The normal response: every supported API with its version range.
pub fn api_versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// Kafka's answer to an ApiVersions request of an unknown version: encoded as v0, error
/// UNSUPPORTED_VERSION, and the supported ranges so the client can pick one.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(code(ResponseError::UnsupportedVersion))
        .with_api_keys(api_keys())
}
