"""What compat/librdkafka.py expects of librdkafka's integration tests against Chronik.

NOT_APPLICABLE: tests that are not run, with the reason: they need something a single plaintext
Chronik node in this environment cannot give (SASL/SSL, Kafka's own command-line tools or Java
client, several brokers, ...). Keys are test names (0045_subscribe_update) or numbers (0045).
Tests flagged TEST_F_LOCAL (client-only, or librdkafka's mock cluster) are never run either.

EXPECTED_FAIL: tests that are run and known to fail, with the reason: a Chronik gap (named so it
can be fixed in the server) or a limit of the environment. Keys are test names, or
"<test>[<sub-test function>]" for SPLIT_SUBTESTS; a value (reason, "full") is expected to fail in
full mode only (the failing sub-test is skipped in quick mode). A test that then passes is reported as XPASS:
remove it here and update docs/compatibility.md.

CI_TESTS: the subset run by tests/test_compat_librdkafka.py (covers every API Chronik advertises).

Keep this file and docs/compatibility.md in step.
"""

_CLI = "needs Kafka's command-line tools (KAFKA_PATH: {})"
_THREE = "needs 3 brokers ({}); run in the three-node cluster run (--brokers 3)"

NOT_APPLICABLE: dict[str, str] = {
    # Kafka's command-line tools / Java client
    "0052_msg_timestamps": _CLI.format("kafka-topics.sh creates its topics with "
                                       "message.timestamp.type"),
    "0077_compaction": _CLI.format("kafka-topics.sh creates its compacted topic"),
    "0045_subscribe_update_topic_remove": _CLI.format("kafka-topics.sh --delete removes a topic "
                                                      "under a live subscription"),
    "0045_subscribe_update_non_exist_and_partchange": _CLI.format("kafka-topics.sh --alter adds "
                                                                  "partitions"),
    "0109_auto_create_topics": _CLI.format("kafka-acls.sh denies a topic") + " and ACLs",
    "0115_producer_auth": _CLI.format("kafka-acls.sh") + " and ACLs",
    "0119_consumer_auth": _CLI.format("kafka-acls.sh") + " and ACLs",
    "0098_consumer_txn": "needs Java and Kafka's client jars (tests/java TransactionProducerCli)",
    # several brokers
    "0107_topic_recreate": _THREE.format("creates topics with replication factor 3"),
    "0111_delay_create_topics": _THREE.format("creates its topic with replication factor 3"),
    "0101_fetch_from_follower": _THREE.format("follower fetching with client.rack and a "
                                              "rack-aware replica.selector.class"),
    "0103_transactions": _THREE.format("creates its topics with replication factor 3"),
    # SASL / SSL
    "0097_ssl_verify": "needs an SSL listener (trivup's SSL_* certificates)",
    "0126_oauthbearer_oidc": "needs SASL/OAUTHBEARER and an OIDC token endpoint",
    "0135_sasl_credentials": "needs SASL PLAIN or SCRAM",
    "0142_reauthentication": "needs SASL (KIP-368 re-authentication)",
    # not flagged TEST_F_LOCAL, but only talk to librdkafka's mock cluster
    "0139_offset_validation_mock": "librdkafka mock cluster only (never connects to the broker)",
    "0150_telemetry_mock": "librdkafka mock cluster only (never connects to the broker)",
}

_ACL = ("ACLs: Chronik does not advertise CreateAcls/DescribeAcls/DeleteAcls (API keys 30, 29, 31); "
        "librdkafka fails the call locally with _UNSUPPORTED_FEATURE")

EXPECTED_FAIL: dict[str, str] = {
    # Chronik gaps (docs/compatibility.md has the details)
    "0081_admin[do_test_CreateAcls]": _ACL,
    "0081_admin[do_test_DescribeAcls]": _ACL,
    "0081_admin[do_test_DeleteAcls]": _ACL,
    "0081_admin[do_test_UserScramCredentials]": "SCRAM credentials: DescribeUserScramCredentials "
                                                "/ AlterUserScramCredentials (API keys 50, 51) "
                                                "are not advertised (no SASL)",
}

# Run only against three nodes (--brokers 3): the NOT_APPLICABLE entries that need 3 brokers.
NEEDS_THREE_BROKERS: set[str] = {k for k, v in NOT_APPLICABLE.items() if v.startswith("needs 3 brokers")}

# Expected to fail against three nodes only (in addition to EXPECTED_FAIL).
EXPECTED_FAIL_3NODES: dict[str, str] = {}

# Together (in quick mode, about 2 minutes with 2 jobs) these make requests of every API Chronik
# advertises but those in CI_UNCOVERED_OK; tests/test_compat_librdkafka.py checks it.
CI_TESTS: list[str] = [
    # produce, fetch, list offsets, compression, idempotence
    "0012", "0017", "0031", "0041", "0044", "0054", "0090",
    # transactions: commit and abort, read_committed fetches of aborted transactions
    "0129",
    # consumer groups: join/sync/heartbeat/leave, commits, cooperative rebalancing
    "0056", "0064", "0099", "0113",
    # admin
    "0081_admin[do_test_CreateTopics]", "0081_admin[do_test_DeleteTopics]",
    "0081_admin[do_test_CreatePartitions]", "0081_admin[do_test_DescribeConfigs]",
    "0081_admin[do_test_DescribeConfigs_groups]", "0081_admin[do_test_AlterConfigs]",
    "0081_admin[do_test_IncrementalAlterConfigs]", "0081_admin[do_test_DeleteRecords]",
    "0081_admin[do_test_ListOffsets]", "0081_admin[do_test_ListConsumerGroups]",
    "0081_admin[do_test_DescribeConsumerGroups]", "0081_admin[do_test_DeleteGroups]",
    "0081_admin[do_test_AlterConsumerGroupOffsets]",
    "0081_admin[do_test_ListConsumerGroupOffsets]",
    "0081_admin[do_test_DeleteConsumerGroupOffsets]",
]

# Advertised APIs the CI subset may leave unused, and why.
_TXN_PY = ("librdkafka's only test of it against a broker (0103) needs three brokers; "
           "tests/test_transactions.py covers it with confluent-kafka and kafka-python")
CI_UNCOVERED_OK: dict[str, str] = {
    "AddOffsetsToTxn": _TXN_PY + " (send_offsets_to_transaction)",
    "TxnOffsetCommit": _TXN_PY + " (send_offsets_to_transaction)",
    "DescribeTransactions": "librdkafka has no admin call for it; tests/test_transactions.py "
                            "describes transactions with kafka-python's admin client",
    "ListTransactions": "librdkafka has no admin call for it; tests/test_transactions.py lists "
                        "transactions with kafka-python's admin client",
    "DescribeCluster": "librdkafka describes the cluster with Metadata, never with the "
                       "DescribeCluster API; tests/test_protocol_versions.py covers every version",
    "OffsetForLeaderEpoch": "librdkafka validates a fetch position with it (KIP-320) only after a "
                            "leader change, which a single node never has; "
                            "tests/test_protocol_versions.py sweeps every version, and "
                            "tests/test_cluster.py's consumers use it after a failover",
}

# Wall-clock limit of one test number's test-runner process (default 900 s).
TEST_TIMEOUT_S: dict[str, int] = {}

# Tests whose sub-tests are run one at a time (SUBTESTS=function:), each reported on its own as
# "<test>[<function>]": one failing sub-test would otherwise hide the results of all later ones.
SPLIT_SUBTESTS: set[str] = {"0081"}
