//! `__transaction_state` records: one per change of a transactional id's state, keyed by the
//! transactional id (the topic is compacted, so the newest record of each id is its state; a
//! record without a value removes an expired id). Big-endian, strings with an int16 length.
//!
//! ```text
//! key:   version int16 = 0, transactional_id string
//! value: version int16 = 0, producer_id int64, last_producer_id int64, producer_epoch int16,
//!        last_producer_epoch int16, timeout_ms int32, state int8 (Kafka's TransactionState
//!        ids: 0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort, 4 CompleteCommit,
//!        5 CompleteAbort), partitions int32 count then (topic string, partition int32)…,
//!        start_ms int64, last_update_ms int64
//! ```

use crate::state::{TransactionMetadata, TxnState};
use std::collections::BTreeSet;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
/// Partitions one stored transaction may list (bounds what a damaged record can allocate).
pub const TXN_PARTITIONS_MAX: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    /// `None`: the transactional id expired and is forgotten.
    pub metadata: Option<TransactionMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("transaction record is truncated")]
    Truncated,
    #[error("unknown transaction record version {0}")]
    UnknownVersion(i16),
    #[error("unknown transaction state {0}")]
    UnknownState(i8),
    #[error("transaction record is malformed: {0}")]
    Malformed(&'static str),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..len.max(0) as usize).unwrap_or_default());
}

impl TxnRecord {
    pub fn encode_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.transactional_id.len());
        out.extend_from_slice(&KEY_VERSION.to_be_bytes());
        put_str(&mut out, &self.transactional_id);
        out
    }

    pub fn encode_value(&self) -> Option<Vec<u8>> {
        let m = self.metadata.as_ref()?;
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
        out.extend_from_slice(&m.producer_id.to_be_bytes());
        out.extend_from_slice(&m.last_producer_id.to_be_bytes());
        out.extend_from_slice(&m.producer_epoch.to_be_bytes());
        out.extend_from_slice(&m.last_producer_epoch.to_be_bytes());
        out.extend_from_slice(&m.timeout_ms.to_be_bytes());
        out.push(m.state.code() as u8);
        let n = i32::try_from(m.partitions.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (topic, partition) in &m.partitions {
            put_str(&mut out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        out.extend_from_slice(&m.start_ms.to_be_bytes());
        out.extend_from_slice(&m.last_update_ms.to_be_bytes());
        Some(out)
    }

    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        let mut k = Reader(key);
        let version = k.i16()?;
        if version != KEY_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let transactional_id = k.string()?;
        let Some(value) = value else {
            return Ok(Self {
                transactional_id,
                metadata: None,
            });
        };
        let mut v = Reader(value);
        let version = v.i16()?;
        if version != VALUE_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let producer_id = v.i64()?;
        let last_producer_id = v.i64()?;
        let producer_epoch = v.i16()?;
        let last_producer_epoch = v.i16()?;
        let timeout_ms = v.i32()?;
        let code = v.i8()?;
        let state = TxnState::from_code(code).ok_or(RecordError::UnknownState(code))?;
        let n = usize::try_from(v.i32()?).map_err(|_| RecordError::Malformed("count"))?;
        if n > TXN_PARTITIONS_MAX {
            return Err(RecordError::Malformed("too many partitions"));
        }
        let mut partitions = BTreeSet::new();
        for _ in 0..n {
            let topic = v.string()?;
            partitions.insert((topic, v.i32()?));
        }
        let start_ms = v.i64()?;
        let last_update_ms = v.i64()?;
        Ok(Self {
            transactional_id,
            metadata: Some(TransactionMetadata {
                producer_id,
                last_producer_id,
                producer_epoch,
                last_producer_epoch,
                timeout_ms,
                state,
                partitions,
                start_ms,
                last_update_ms,
            }),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let head = self.0.get(..N).ok_or(RecordError::Truncated)?;
        let out: [u8; N] = head.try_into().map_err(|_| RecordError::Truncated)?;
        self.0 = self.0.get(N..).unwrap_or_default();
        Ok(out)
    }
    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.take::<1>()?))
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take::<2>()?))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take::<4>()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take::<8>()?))
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let len = usize::try_from(self.i16()?).map_err(|_| RecordError::Malformed("string"))?;
        let bytes = self.0.get(..len).ok_or(RecordError::Truncated)?;
        let s = std::str::from_utf8(bytes).map_err(|_| RecordError::Malformed("utf-8"))?;
        self.0 = self.0.get(len..).unwrap_or_default();
        Ok(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_and_round_trip() {
        let r = TxnRecord {
            transactional_id: "tx".into(),
            metadata: Some(TransactionMetadata {
                producer_id: 9,
                last_producer_id: -1,
                producer_epoch: 3,
                last_producer_epoch: 2,
                timeout_ms: 60_000,
                state: TxnState::Ongoing,
                partitions: [("t".to_string(), 1)].into_iter().collect(),
                start_ms: 5,
                last_update_ms: 6,
            }),
        };
        assert_eq!(r.encode_key(), vec![0, 0, 0, 2, b't', b'x']);
        let value = r.encode_value().unwrap_or_default();
        let mut expected = vec![0, 0]; // version
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&(-1i64).to_be_bytes());
        expected.extend_from_slice(&[0, 3, 0, 2]); // epochs
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1]);
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&6i64.to_be_bytes());
        assert_eq!(value, expected);
        assert_eq!(TxnRecord::decode(&r.encode_key(), Some(&value)), Ok(r));
    }

    #[test]
    fn tombstones_and_damage() {
        let r = TxnRecord {
            transactional_id: "gone".into(),
            metadata: None,
        };
        assert_eq!(r.encode_value(), None);
        assert_eq!(TxnRecord::decode(&r.encode_key(), None), Ok(r));
        assert_eq!(
            TxnRecord::decode(&[0, 0, 0, 9, b'x'], None),
            Err(RecordError::Truncated)
        );
        assert_eq!(
            TxnRecord::decode(&[0, 1, 0, 0], None),
            Err(RecordError::UnknownVersion(1))
        );
    }
}
