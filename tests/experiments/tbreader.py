"""Read scalar tags from TensorBoard event files: tensorboard's EventAccumulator when
installed, else the TFRecord framing parsed by hand with tensorboardX's protobufs."""

from __future__ import annotations

import glob
import os
import struct


def scalar_tags(logdir: str) -> dict[str, list[tuple[int, float]]]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return _read_raw(logdir)
    acc = EventAccumulator(logdir)
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def _read_raw(logdir: str) -> dict[str, list[tuple[int, float]]]:
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for v in event.summary.value:
                value = v.simple_value if v.HasField("simple_value") else None
                if value is not None:
                    out.setdefault(v.tag, []).append((event.step, value))
    return out
