//! Control records: the transaction markers (COMMIT, ABORT) that end a producer's transaction
//! in a partition. A marker is a batch of one record with the transactional and control
//! attribute bits set, written by the transaction coordinator, never by a client.
//!
//! ```text
//! attributes = 0x0030 (transactional | control), base_sequence = -1, records_count = 1
//! record key:   version int16 = 0, type int16 (0 = ABORT, 1 = COMMIT)
//! record value: version int16 = 0, coordinator_epoch int32
//! ```

use crate::batch::BatchHeader;
use crate::batch_builder::{self, Producer};

/// Attributes of a marker batch: transactional (bit 4) and control (bit 5).
pub const MARKER_ATTRIBUTES: i16 = (1 << 4) | (1 << 5);
const CONTROL_RECORD_VERSION: i16 = 0;

/// What a control record says (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    pub fn code(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            0 => Some(Self::Abort),
            1 => Some(Self::Commit),
            _ => None,
        }
    }
}

/// One transaction marker to write to a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub control: ControlType,
    pub coordinator_epoch: i32,
}

/// The marker's record batch (base offset 0; the log assigns the real one).
pub fn marker_batch(m: &TxnMarker, timestamp: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key.extend_from_slice(&m.control.code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    value.extend_from_slice(&m.coordinator_epoch.to_be_bytes());
    let producer = Producer {
        id: m.producer_id,
        epoch: m.producer_epoch,
        base_sequence: -1,
    };
    batch_builder::build(
        MARKER_ATTRIBUTES,
        producer,
        &[(Some(&key), Some(&value))],
        timestamp,
    )
}

/// The control type of a control batch (`batch` starts with its header); `None` if it is not
/// a control batch or its first record's key does not parse as a control record.
pub fn control_type(batch: &[u8]) -> Option<ControlType> {
    marker_of(batch).map(|(control, _)| control)
}

/// The control type and the coordinator epoch of a marker batch; `None` if it is not a
/// control batch or its first record does not parse as a control record.
pub fn marker_of(batch: &[u8]) -> Option<(ControlType, i32)> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return None;
    }
    let records = batch_builder::records(batch)?;
    let (key, value) = records.first()?;
    let code = i16::from_be_bytes(key.as_ref()?.get(2..4)?.try_into().ok()?);
    let epoch = i32::from_be_bytes(value.as_ref()?.get(2..6)?.try_into().ok()?);
    Some((ControlType::from_code(code)?, epoch))
}

/// The control record type of a log-start request (Chronik's own, outside Kafka's range).
const LOG_START_TYPE: i16 = 0x4c53;

/// A request to move a replicated partition's log start offset to `offset` (DeleteRecords in
/// a cluster): a control batch proposed as a Raft entry and applied by every replica, never
/// stored in the partition's log (clients cannot send control batches).
pub fn log_start_batch(offset: i64, timestamp: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key.extend_from_slice(&LOG_START_TYPE.to_be_bytes());
    let value = offset.to_be_bytes();
    batch_builder::build(
        MARKER_ATTRIBUTES,
        Producer::NONE,
        &[(Some(&key), Some(&value))],
        timestamp,
    )
}

/// The offset of a log-start request batch; `None` for any other batch.
pub fn log_start_of(batch: &[u8]) -> Option<i64> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return None;
    }
    let records = batch_builder::records(batch)?;
    let (key, value) = records.first()?;
    let code = i16::from_be_bytes(key.as_ref()?.get(2..4)?.try_into().ok()?);
    if code != LOG_START_TYPE {
        return None;
    }
    Some(i64::from_be_bytes(
        value.as_ref()?.get(..8)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch;

    #[test]
    fn golden_bytes_of_a_commit_marker() {
        let m = TxnMarker {
            producer_id: 7,
            producer_epoch: 2,
            control: ControlType::Commit,
            coordinator_epoch: 5,
        };
        let b = marker_batch(&m, 1_000);
        let h = batch::validate(&b).map_err(|e| e.to_string());
        let h = h.unwrap_or_else(|e| panic!("marker does not validate: {e}"));
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.records_count
            ),
            (7, 2, -1, 1)
        );
        // The one record: length 16, attributes 0, timestamp delta 0, offset delta 0,
        // key (length 4): version 0, type 1; value (length 6): version 0, coordinator epoch 5;
        // no headers.
        assert_eq!(
            &b[61..],
            &[0x20, 0, 0, 0, 0x08, 0, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 5, 0][..]
        );
        assert_eq!(control_type(&b), Some(ControlType::Commit));
        assert_eq!(marker_of(&b), Some((ControlType::Commit, 5)));
        assert_eq!(log_start_of(&b), None);
    }

    #[test]
    fn a_log_start_request_round_trips_and_is_no_marker() {
        let b = log_start_batch(1234, 1_000);
        assert!(batch::validate(&b).is_ok());
        assert_eq!(log_start_of(&b), Some(1234));
        assert_eq!(marker_of(&b), None);
    }

    #[test]
    fn abort_markers_read_back_and_data_batches_are_not_control() {
        let m = TxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            control: ControlType::Abort,
            coordinator_epoch: 0,
        };
        assert_eq!(control_type(&marker_batch(&m, 0)), Some(ControlType::Abort));
        assert_eq!(
            control_type(&batch_builder::uncompressed_batch(1, 0, b"x")),
            None
        );
    }
}
