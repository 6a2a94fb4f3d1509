//! Request decoding: header first (to learn the API and version), then the body.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::versions;

/// A decoded request.
#[derive(Debug)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

/// Why a frame could not become a request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// ApiVersions at a version Chronik does not know: answered in v0 with UNSUPPORTED_VERSION.
    #[error("unsupported ApiVersions version {version}")]
    UnsupportedApiVersions { correlation_id: i32, version: i16 },
    /// Unknown API key: Kafka closes the connection.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API at a version Chronik does not serve: Kafka closes the connection.
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    /// The bytes do not parse: the connection is closed.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Decodes one frame (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Malformed(
            "frame shorter than a request header".into(),
        ));
    }
    let mut peek = frame.clone();
    let api_raw = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api_key = ApiKey::try_from(api_raw).map_err(|_| DecodeError::UnknownApiKey(api_raw))?;
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Err(DecodeError::UnsupportedApiVersions {
                correlation_id,
                version,
            });
        }
        return Err(DecodeError::UnsupportedVersion {
            api: api_key,
            version,
        });
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| DecodeError::Malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| DecodeError::Malformed(format!("{api_key:?} v{version}: {e}")))?;
    Ok(DecodedRequest {
        header,
        api_key,
        body,
    })
}
