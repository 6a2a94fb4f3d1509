//! Records of `__consumer_offsets`, in Kafka's key and value schemas (non-flexible encoding:
//! big-endian integers, strings as `int16` length + UTF-8, bytes as `int32` length).
//!
//! ```text
//! OffsetCommitKey   (key version 1): group string, topic string, partition int32
//! OffsetCommitValue (version 3):     offset int64, leader_epoch int32, metadata string, commit_timestamp int64
//! GroupMetadataKey  (key version 2): group string
//! GroupMetadataValue (version 3):    protocol_type string, generation int32, protocol nullable string,
//!                                    leader nullable string, current_state_timestamp int64,
//!                                    members [member_id string, group_instance_id nullable string,
//!                                    client_id string, client_host string, rebalance_timeout int32,
//!                                    session_timeout int32, subscription bytes, assignment bytes]
//! ```
//! A record with a null value is a tombstone: the offset, or the whole group, is deleted.

use crate::types::CommittedOffset;
use bytes::Bytes;

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// A member as stored with its group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's stored metadata: the generation and its assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Metadata {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

impl GroupRecord {
    pub fn group_id(&self) -> &str {
        match self {
            Self::Offset { group_id, .. } | Self::Metadata { group_id, .. } => group_id,
        }
    }

    pub fn encode_key(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Self::Offset {
                group_id,
                topic,
                partition,
                ..
            } => {
                w.i16(OFFSET_KEY_VERSION);
                w.string(group_id);
                w.string(topic);
                w.i32(*partition);
            }
            Self::Metadata { group_id, .. } => {
                w.i16(GROUP_KEY_VERSION);
                w.string(group_id);
            }
        }
        w.0
    }

    /// `None` for a tombstone.
    pub fn encode_value(&self) -> Option<Vec<u8>> {
        let mut w = Writer::default();
        match self {
            Self::Offset { value, .. } => {
                let v = value.as_ref()?;
                w.i16(OFFSET_VALUE_VERSION);
                w.i64(v.offset);
                w.i32(v.leader_epoch);
                w.string(&v.metadata);
                w.i64(v.commit_timestamp_ms);
            }
            Self::Metadata { value, .. } => {
                let v = value.as_ref()?;
                w.i16(GROUP_VALUE_VERSION);
                w.string(&v.protocol_type);
                w.i32(v.generation_id);
                w.nullable_string(v.protocol_name.as_deref());
                w.nullable_string(v.leader.as_deref());
                w.i64(v.current_state_timestamp_ms);
                w.i32(i32::try_from(v.members.len()).unwrap_or(i32::MAX));
                for m in &v.members {
                    w.string(&m.member_id);
                    w.nullable_string(m.group_instance_id.as_deref());
                    w.string(&m.client_id);
                    w.string(&m.client_host);
                    w.i32(m.rebalance_timeout_ms);
                    w.i32(m.session_timeout_ms);
                    w.bytes(&m.subscription);
                    w.bytes(&m.assignment);
                }
            }
        }
        Some(w.0)
    }

    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        let mut k = Reader(key);
        match k.i16()? {
            0 | OFFSET_KEY_VERSION => {
                let group_id = k.string()?;
                let topic = k.string()?;
                let partition = k.i32()?;
                let value = value.map(decode_offset_value).transpose()?;
                Ok(Self::Offset {
                    group_id,
                    topic,
                    partition,
                    value,
                })
            }
            GROUP_KEY_VERSION => {
                let group_id = k.string()?;
                let value = value.map(decode_group_value).transpose()?;
                Ok(Self::Metadata { group_id, value })
            }
            v => Err(RecordError(format!("unknown key version {v}"))),
        }
    }
}

fn decode_offset_value(bytes: &[u8]) -> Result<CommittedOffset, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=OFFSET_VALUE_VERSION).contains(&version) {
        return Err(RecordError(format!(
            "unknown offset value version {version}"
        )));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version != GROUP_VALUE_VERSION {
        return Err(RecordError(format!(
            "unsupported group value version {version}"
        )));
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = r.i64()?;
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        members.push(MemberMetadata {
            member_id: r.string()?,
            group_instance_id: r.nullable_string()?,
            client_id: r.string()?,
            client_host: r.string()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn string(&mut self, s: &str) {
        let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
        self.i16(len);
        self.0
            .extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(i16::from_be_bytes(a))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(i32::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| RecordError("invalid UTF-8".into()))
    }
    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or_else(|| RecordError("null string".into()))
    }
    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(self.take(len as usize)?))
    }
}

pub use chronik_types::ids::partition_for;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_record_golden_bytes() {
        let r = GroupRecord::Offset {
            group_id: "g".into(),
            topic: "t".into(),
            partition: 2,
            value: Some(CommittedOffset {
                offset: 5,
                leader_epoch: -1,
                metadata: "m".into(),
                commit_timestamp_ms: 7,
            }),
        };
        assert_eq!(
            r.encode_key(),
            vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]
        );
        let v = r.encode_value().unwrap();
        assert_eq!(
            v,
            vec![
                0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 1, b'm', 0, 0, 0, 0, 0, 0,
                0, 7
            ]
        );
        assert_eq!(GroupRecord::decode(&r.encode_key(), Some(&v)).unwrap(), r);
    }

    #[test]
    fn group_record_round_trips_and_tombstones_have_no_value() {
        let r = GroupRecord::Metadata {
            group_id: "grp".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 3,
                protocol_name: Some("range".into()),
                leader: Some("m-1".into()),
                current_state_timestamp_ms: 99,
                members: vec![MemberMetadata {
                    member_id: "m-1".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        };
        assert_eq!(r.encode_key(), vec![0, 2, 0, 3, b'g', b'r', b'p']);
        let v = r.encode_value().unwrap();
        assert_eq!(GroupRecord::decode(&r.encode_key(), Some(&v)).unwrap(), r);
        let tomb = GroupRecord::Metadata {
            group_id: "grp".into(),
            value: None,
        };
        assert_eq!(tomb.encode_value(), None);
        assert_eq!(GroupRecord::decode(&tomb.encode_key(), None).unwrap(), tomb);
    }

    #[test]
    fn truncated_records_are_errors() {
        assert!(GroupRecord::decode(&[0, 1, 0, 5, b'g'], None).is_err());
        assert!(GroupRecord::decode(&[0, 9], None).is_err());
    }

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "chaos-test-consumer".hashCode() == 1928982340 in Java; % 50 = 40.
        assert_eq!(partition_for("chaos-test-consumer", 50), 40);
        assert_eq!(partition_for("", 50), 0);
    }
}
