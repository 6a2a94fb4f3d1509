//! Transaction markers sent between nodes: a transaction coordinator asks the leader of each
//! partition of a decided transaction to write its COMMIT or ABORT marker there (Kafka's
//! WriteTxnMarkers between brokers). The replication layer carries the request; the broker,
//! which knows partitions and groups, registers the `MarkerWriter` that writes them.

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

/// Writes markers to partitions this node leads (implemented by the broker).
pub trait MarkerWriter: Send + Sync + 'static {
    fn write_markers(
        &self,
        markers: TxnMarkers,
    ) -> Pin<Box<dyn Future<Output = MarkerResults> + Send>>;
}
