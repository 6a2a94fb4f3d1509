//! Transaction requests between nodes: a transaction coordinator asks the leader of each
//! partition of a decided transaction to write its COMMIT or ABORT marker there (Kafka's
//! WriteTxnMarkers between brokers), and a partition leader asks a transaction's coordinator
//! whether a transactional batch belongs to an open transaction (KIP-890 part 1, Kafka's
//! AddPartitionsToTxn with `verify_only`). The replication layer carries the requests; the
//! broker, which knows partitions and coordinators, registers the `MarkerWriter` that answers.

use crate::transport::GroupId;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// The markers of one transaction for the partitions the receiver leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMarkers {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<GroupId>,
}

/// Per partition: `None` when its marker is stored, or why it is not.
pub type MarkerResults = Vec<(GroupId, Option<String>)>;

/// Does the open transaction of this producer include this partition?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partition: GroupId,
}

/// The coordinator's answer to `VerifyTxn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnVerdict {
    InTransaction,
    NotInTransaction,
    /// The batch's producer id or epoch is not the transactional id's current one.
    Fenced,
    /// The receiver does not coordinate that transactional id (any more).
    NotCoordinator,
}

/// Writes markers to partitions this node leads and verifies transactional batches for the
/// transactional ids it coordinates (implemented by the broker).
pub trait MarkerWriter: Send + Sync + 'static {
    fn write_markers(
        &self,
        markers: TxnMarkers,
    ) -> Pin<Box<dyn Future<Output = MarkerResults> + Send>>;
    fn verify_txn(&self, request: &VerifyTxn) -> TxnVerdict;
}
