//! Response framing: size prefix, response header, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Encodes a whole response frame (size prefix included) for a request at `version`.
/// The header version follows the API's rule (ApiVersions always uses header v0).
pub fn encode_response(
    correlation_id: i32,
    version: i16,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let header_version = body.header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| EncodeError(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(e.to_string()))?;
    let size =
        i32::try_from(buf.len() - 4).map_err(|_| EncodeError("response too large".into()))?;
    if let Some(prefix) = buf.get_mut(..4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(buf.freeze())
}

/// A response the codec could not encode (a field out of range for the version).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode response: {0}")]
pub struct EncodeError(pub String);
