#!/usr/bin/python3
"""confluent_kafka group consumer for groups_test.go.

  groups_consumer.py --bootstrap B --topic T --group G [--session-ms 6000]

subscribe()s to T in group G and prints one JSON line per event, flushed:
{"assigned": [partitions]} on every assignment, {"p": P, "o": O} per record.
Runs until stdin closes (the test ends it), then closes the consumer (leaving
the group) and prints {"done": true}.
"""
import argparse
import json
import sys
import threading

from confluent_kafka import Consumer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--session-ms", type=int, default=6000)
    a = ap.parse_args()
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "session.timeout.ms": a.session_ms,
        "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
    })
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    def on_assign(consumer, parts):
        print(json.dumps({"assigned": sorted(p.partition for p in parts)}), flush=True)

    c.subscribe([a.topic], on_assign=on_assign)
    while not stop.is_set():
        m = c.poll(0.2)
        if m is None or m.error() is not None:
            continue
        print(json.dumps({"p": m.partition(), "o": m.offset()}), flush=True)
    c.close()
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
