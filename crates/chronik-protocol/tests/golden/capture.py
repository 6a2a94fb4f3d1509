#!/usr/bin/env python3
"""Capture Kafka request and response frames exchanged by real clients and chronik-server.

A TCP proxy on 127.0.0.1 sits between the clients and the server and logs every frame
(size prefix included) as hex. Requests are attributed to a client by the `client_id` of
their request header, so every client below is configured with a fixed client id.

Two modes:

  capture.py proxy --listen 127.0.0.1:19092 --upstream 127.0.0.1:9092 --out DIR
      Only the proxy, for ad-hoc captures; Ctrl-C writes the files. The server must
      advertise the proxy's address (`--advertised-addr`), or clients will go around it.

  capture.py run --server target/release/chronik-server --out DIR
      Starts a fresh server (temporary data directory, advertised address = the proxy),
      runs the fixed client scenarios below through the proxy, writes the files, stops
      the server. Needs kcat on PATH and confluent-kafka + kafka-python importable
      (the repository's .venv).

Files: DIR/requests/<client>-<Api>-v<version>.hex and DIR/responses/<same name>, one frame
each: the first request seen for that (client, API, version) and the server's response to
it (no response file when the server sends none, e.g. Produce with acks=0). `run` deletes
the *.hex files already in those two directories first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

# Kafka API keys -> the names kafka-protocol's `ApiKey` uses (its Debug form).
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    32: "DescribeConfigs", 33: "AlterConfigs", 35: "DescribeLogDirs",
    36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups",
    44: "IncrementalAlterConfigs", 47: "OffsetDelete", 60: "DescribeCluster", 61: "DescribeProducers",
    75: "DescribeTopicPartitions",
}

HEX_LINE = 64  # hex characters per line in the files


def api_name(key: int) -> str:
    return API_NAMES.get(key, f"Api{key}")


def to_hex(frame: bytes) -> str:
    h = frame.hex()
    return "\n".join(h[i:i + HEX_LINE] for i in range(0, len(h), HEX_LINE)) + "\n"


def parse_request_header(frame: bytes) -> tuple[int, int, int, str]:
    """(api_key, version, correlation_id, client_id) of a size-prefixed request frame."""
    api, ver, corr = struct.unpack_from(">hhi", frame, 4)
    client = "unknown"
    if len(frame) >= 14:
        (n,) = struct.unpack_from(">h", frame, 12)
        if 0 <= n <= len(frame) - 14:
            client = frame[14:14 + n].decode("utf-8", "replace") or "unknown"
    return api, ver, corr, client


class Recorder:
    """Keeps the first request per (client, api, version) and the response to it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: dict[tuple[str, int, int], dict] = {}
        self.pending: dict[tuple[int, int], tuple[str, int, int] | None] = {}
        self.counts: dict[tuple[str, int, int], int] = {}

    def on_request(self, conn: int, frame: bytes) -> None:
        if len(frame) < 12:
            return
        api, ver, corr, client = parse_request_header(frame)
        key = (client, api, ver)
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if key not in self.kept:
                self.kept[key] = {"conn": conn, "corr": corr, "request": frame, "response": None}
                self.pending[(conn, corr)] = key
            else:
                self.pending[(conn, corr)] = None

    def on_response(self, conn: int, frame: bytes) -> None:
        if len(frame) < 8:
            return
        (corr,) = struct.unpack_from(">i", frame, 4)
        with self.lock:
            key = self.pending.pop((conn, corr), None)
            if key is not None:
                self.kept[key]["response"] = frame

    def write(self, out: Path) -> list[str]:
        req_dir, resp_dir = out / "requests", out / "responses"
        req_dir.mkdir(parents=True, exist_ok=True)
        resp_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        with self.lock:
            for (client, api, ver), rec in sorted(self.kept.items()):
                name = f"{client}-{api_name(api)}-v{ver}.hex"
                (req_dir / name).write_text(to_hex(rec["request"]))
                if rec["response"] is not None:
                    (resp_dir / name).write_text(to_hex(rec["response"]))
                lines.append(
                    f"{name:55} request {len(rec['request']):5} B, response "
                    f"{len(rec['response']) if rec['response'] is not None else '-':>5} B, "
                    f"seen {self.counts[(client, api, ver)]}x"
                )
        return lines


class Proxy:
    """Forwards bytes both ways unchanged and hands whole frames to the recorder."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], rec: Recorder) -> None:
        self.upstream = upstream
        self.rec = rec
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(listen)
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.next_conn = 0
        self.closed = False

    def serve_in_background(self) -> None:
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.next_conn += 1
            conn = self.next_conn
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(conn, client, server, self.rec.on_request),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, server, client, self.rec.on_response),
                             daemon=True).start()

    @staticmethod
    def _pump(conn: int, src: socket.socket, dst: socket.socket, on_frame) -> None:
        buf = bytearray()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                # Record before forwarding, so a request is always known before its response.
                while len(buf) >= 4:
                    (size,) = struct.unpack_from(">i", buf, 0)
                    if size < 0 or len(buf) < 4 + size:
                        break
                    on_frame(conn, bytes(buf[:4 + size]))
                    del buf[:4 + size]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    s.shutdown(how)
                except OSError:
                    pass


def host_port(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host, int(port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Fixed client scenarios (topic names and contents are fixed so captures are stable)
# ---------------------------------------------------------------------------

KCAT_TOPIC = "golden-kcat"
CK_TOPIC = "golden-ck"
KP_TOPIC = "golden-kp"
VALUES = [b"golden-0", b"golden-1", b"golden-2"]


def run_kcat(bootstrap: str) -> None:
    base = ["kcat", "-b", bootstrap, "-X", "client.id=kcat"]
    payload = b"".join(b"k%d:%s\n" % (i, v) for i, v in enumerate(VALUES))
    subprocess.run(base + ["-P", "-t", KCAT_TOPIC, "-p", "0", "-K:"], input=payload,
                   check=True, timeout=60)
    subprocess.run(base + ["-L"], check=True, timeout=60, stdout=subprocess.DEVNULL)
    out = subprocess.run(base + ["-C", "-t", KCAT_TOPIC, "-o", "beginning", "-e"],
                         check=True, timeout=60, stdout=subprocess.PIPE).stdout
    assert out.split() == VALUES, out


def run_confluent(bootstrap: str) -> None:
    import confluent_kafka as ck
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewPartitions, NewTopic)

    common = {"bootstrap.servers": bootstrap, "client.id": "confluent_kafka"}
    admin = AdminClient(dict(common))
    for f in admin.create_topics([NewTopic(CK_TOPIC, 2, 1, config={"retention.ms": "3600000"})],
                                 operation_timeout=10).values():
        f.result(30)
    res = ConfigResource(ConfigResource.Type.TOPIC, CK_TOPIC)
    for f in admin.describe_configs([res]).values():
        f.result(30)
    for f in admin.create_partitions([NewPartitions(CK_TOPIC, 3)]).values():
        f.result(30)
    alter = ConfigResource(ConfigResource.Type.TOPIC, CK_TOPIC, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([alter]).values():
        f.result(30)
    admin.describe_cluster().result(30)

    producer = ck.Producer({**common, "linger.ms": 0, "enable.idempotence": False})
    for i, v in enumerate(VALUES):
        producer.produce(CK_TOPIC, value=v, key=b"k%d" % i, partition=0)
    assert producer.flush(30) == 0

    consumer = ck.Consumer({**common, "group.id": "golden", "enable.auto.commit": False,
                            "enable.auto.offset.store": False, "auto.offset.reset": "earliest"})
    consumer.assign([ck.TopicPartition(CK_TOPIC, 0, ck.OFFSET_BEGINNING)])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < len(VALUES) and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=10, timeout=0.5):
            if m.error() is None:
                got.append(m.value())
    consumer.close()
    assert got == VALUES, got

    for f in admin.delete_records([ck.TopicPartition(CK_TOPIC, 0, 1)]).values():
        f.result(30)
    for f in admin.delete_topics([CK_TOPIC], operation_timeout=10).values():
        f.result(30)


def run_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka_python",
                             request_timeout_ms=15000)
    admin.create_topics([NewTopic(KP_TOPIC, 2, 1, topic_configs={"retention.ms": "3600000"})])
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, KP_TOPIC)])
    admin.create_partitions({KP_TOPIC: NewPartitions(3)})
    admin.describe_cluster()

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="kafka_python",
                             linger_ms=0, enable_idempotence=False)
    for i, v in enumerate(VALUES):
        producer.send(KP_TOPIC, value=v, key=b"k%d" % i, partition=0)
    producer.flush(30)
    producer.close(10)

    tp = TopicPartition(KP_TOPIC, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="kafka_python",
                             group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < len(VALUES) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(r.value for r in records)
    consumer.close()
    assert got == VALUES, got

    admin.delete_records({tp: 1})
    admin.delete_topics([KP_TOPIC])
    admin.close()


def wait_ready(http: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{http}/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server not ready")


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for sub in ("requests", "responses"):
        for f in (out / sub).glob("*.hex"):
            f.unlink()
    rec = Recorder()
    kafka_port, http_port = free_port(), free_port()
    proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", kafka_port), rec)
    bootstrap = f"127.0.0.1:{proxy.addr[1]}"
    data_dir = tempfile.mkdtemp(prefix="chronik-golden-")
    server = subprocess.Popen(
        [args.server, "--data-dir", data_dir, "--kafka-addr", f"127.0.0.1:{kafka_port}",
         "--http-addr", f"127.0.0.1:{http_port}", "--advertised-addr", bootstrap],
        stderr=open(os.path.join(data_dir, "server.log"), "wb"))
    failures = []
    try:
        wait_ready(f"127.0.0.1:{http_port}", server)
        proxy.serve_in_background()
        for name, scenario in (("kcat", run_kcat), ("confluent_kafka", run_confluent),
                               ("kafka_python", run_kafka_python)):
            if args.only and name not in args.only:
                continue
            try:
                scenario(bootstrap)
                print(f"{name}: ok")
            except Exception as e:  # keep what was captured, report the failure
                failures.append(name)
                print(f"{name}: FAILED: {e!r}", file=sys.stderr)
        time.sleep(0.5)  # let the last responses through
    finally:
        proxy.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if failures:
            print(f"server log kept in {data_dir}/server.log", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    for line in rec.write(out):
        print(line)
    return 1 if failures else 0


def cmd_proxy(args: argparse.Namespace) -> int:
    rec = Recorder()
    proxy = Proxy(host_port(args.listen), host_port(args.upstream), rec)
    proxy.serve_in_background()
    print(f"proxy on {proxy.addr[0]}:{proxy.addr[1]} -> {args.upstream}; Ctrl-C to write files",
          file=sys.stderr)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    proxy.close()
    for line in rec.write(Path(args.out)):
        print(line)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="start a server and capture the fixed client scenarios")
    r.add_argument("--server", default="target/release/chronik-server")
    r.add_argument("--out", default=str(Path(__file__).resolve().parent))
    r.add_argument("--only", nargs="*", help="scenarios to run (kcat confluent_kafka kafka_python)")
    r.set_defaults(func=cmd_run)
    x = sub.add_parser("proxy", help="only run the logging proxy")
    x.add_argument("--listen", default="127.0.0.1:19092")
    x.add_argument("--upstream", default="127.0.0.1:9092")
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_proxy)
    args = p.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
