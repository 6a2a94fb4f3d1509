//! What the transaction coordinator refuses, in Kafka's terms; the broker maps each to its
//! error code.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// The transaction is completing (markers being written): retry shortly.
    #[error("a previous transaction of this transactional id is still completing")]
    ConcurrentTransactions,
    /// The producer id does not belong to the transactional id (or the id is unknown).
    #[error("the producer id does not match the transactional id")]
    InvalidProducerIdMapping,
    /// A newer producer with the same transactional id has taken over.
    #[error("the producer was fenced by a newer one with the same transactional id")]
    ProducerFenced,
    /// The request does not fit the transaction's state (e.g. commit after abort).
    #[error("the request is not valid in the transaction's current state")]
    InvalidTxnState,
    /// `transaction.timeout.ms` is not within (0, `transaction.max.timeout.ms`].
    #[error("the transaction timeout is larger than transaction.max.timeout.ms or not positive")]
    InvalidTransactionTimeout,
    /// No producer id could be allocated.
    #[error("no producer id could be allocated")]
    ProducerIdUnavailable,
}
