"""Reading Chronik's segment files from the outside, for the corruption faults.

A partition's log is `<data-dir>/<topic>-<partition>/<base offset, 20 digits>.log`: magic v2
record batches back to back (docs/formats/segment-log.md).  This module parses them independently
of the server (so a corruption fault knows exactly what it destroyed) and decodes the records of
uncompressed batches (Kafka's record format v2: zigzag varints), with the byte position of every
value, so that a fault can flip a byte inside a value.

Only what the chaos faults need: no CRC computation, no index files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

BATCH_HEADER_BYTES = 61          # base_offset .. records_count; the records follow
LOG_OVERHEAD = 12                # base_offset (8) + batch_length (4)


@dataclass
class Record:
    offset: int
    value: bytes | None
    value_pos: int | None        # byte position of the value in the segment file


@dataclass
class Batch:
    pos: int                     # byte position in the segment file
    size: int                    # bytes, header included
    base_offset: int
    last_offset: int
    compressed: bool
    records: list[Record] = field(default_factory=list)  # empty when compressed or unparsable

    @property
    def end(self) -> int:
        return self.pos + self.size


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag-encoded varint at pos: (value, position after it)."""
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def parse_records(data: bytes, start: int, end: int, base_offset: int, count: int) -> list[Record]:
    """The records of an uncompressed batch whose records occupy data[start:end]."""
    out = []
    pos = start
    for _ in range(count):
        length, pos = _varint(data, pos)
        rec_end = pos + length
        if length < 0 or rec_end > end:
            raise ValueError("record overruns its batch")
        pos += 1                                   # attributes
        _, pos = _varint(data, pos)                # timestamp delta
        delta, pos = _varint(data, pos)            # offset delta
        klen, pos = _varint(data, pos)
        pos += max(klen, 0)
        vlen, pos = _varint(data, pos)
        value = None if vlen < 0 else data[pos:pos + vlen]
        out.append(Record(base_offset + delta, value, None if vlen < 0 else pos))
        pos = rec_end
    return out


def parse_segment(data: bytes) -> list[Batch]:
    """Every complete batch at the start of a segment file (stops at a torn tail)."""
    batches = []
    pos = 0
    while pos + BATCH_HEADER_BYTES <= len(data):
        size = LOG_OVERHEAD + int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
        if size < BATCH_HEADER_BYTES or pos + size > len(data):
            break
        base = int.from_bytes(data[pos:pos + 8], "big", signed=True)
        attributes = int.from_bytes(data[pos + 21:pos + 23], "big")
        last_delta = int.from_bytes(data[pos + 23:pos + 27], "big", signed=True)
        count = int.from_bytes(data[pos + 57:pos + 61], "big", signed=True)
        b = Batch(pos, size, base, base + last_delta, compressed=bool(attributes & 0x7))
        if not b.compressed:
            try:
                b.records = parse_records(data, pos + BATCH_HEADER_BYTES, pos + size, base, count)
            except ValueError:
                b.records = []
        batches.append(b)
        pos += size
    return batches


def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    return data_dir / f"{topic}-{partition}"


def active_segment(data_dir: Path, topic: str, partition: int) -> Path | None:
    """The partition's last segment file (the one appends go to), or None."""
    segments = sorted(partition_dir(data_dir, topic, partition).glob("*.log"))
    return segments[-1] if segments else None


def read_log(data_dir: Path, topic: str, partition: int) -> tuple[list[tuple[int, str | None]],
                                                                 list[tuple[int, int]]]:
    """Every record of a partition's segment files, in order: ([(offset, value)], [(first, last)
    offsets of batches whose records could not be decoded (compressed, unparsable)])."""
    records: list[tuple[int, str | None]] = []
    opaque: list[tuple[int, int]] = []
    for seg in sorted(partition_dir(data_dir, topic, partition).glob("*.log")):
        for b in parse_segment(seg.read_bytes()):
            if b.compressed or not b.records:
                opaque.append((b.base_offset, b.last_offset))
                continue
            records += [(r.offset, None if r.value is None else r.value.decode("utf-8", "replace"))
                        for r in b.records]
    return records, opaque
