#!/usr/bin/python3
"""kafka-python client for the e2e tests.

kafka-python sends Metadata v1, which has no allow_auto_topic_creation field,
so a produce to a new topic relies on the broker's auto.create.topics.enable.

  produce --bootstrap B --topic T --tag TAG --n N [--max-block-ms MS]
  consume --bootstrap B --topic T --n N    (assign + seek_to_beginning)

The last stdout line is a JSON summary; exit code 0 only on success.
"""
import argparse
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from clients_common import key, value, summary, text


def produce(a):
    try:
        p = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", max_block_ms=a.max_block_ms,
                          request_timeout_ms=10000, retries=3)
        futures = []
        for i in range(a.n):
            futures.append(p.send(a.topic, key=key(a.tag, i).encode(), value=value(a.tag, i).encode(),
                                  headers=[("idx", str(i).encode()), ("src", b"kafka-python")]))
        p.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futures]
        p.close(timeout=10)
    except Exception as e:  # the refusal case reports what kind of failure it was
        summary({"ok": False, "error": type(e).__name__, "detail": str(e)[:300]}, 1)
    summary({"ok": True, "produced": len(metas), "partitions": sorted({m.partition for m in metas})})


def consume(a):
    c = KafkaConsumer(bootstrap_servers=a.bootstrap, group_id=None, enable_auto_commit=False)
    parts = None
    deadline = time.time() + 20
    while not parts and time.time() < deadline:
        parts = c.partitions_for_topic(a.topic)
    tps = [TopicPartition(a.topic, p) for p in sorted(parts or [])]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    out = []
    deadline = time.time() + 60
    while len(out) < a.n and time.time() < deadline:
        for tp, msgs in c.poll(timeout_ms=500, max_records=1000).items():
            for m in msgs:
                out.append({"p": m.partition, "o": m.offset, "k": text(m.key), "v": text(m.value),
                            "h": [[k, text(v)] for k, v in m.headers]})
    c.close()
    summary({"ok": len(out) == a.n, "partitions": sorted(parts or []), "records": out}, 0 if len(out) == a.n else 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--tag", default="kp")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--max-block-ms", type=int, default=10000)
    a = ap.parse_args()
    produce(a) if a.mode == "produce" else consume(a)


if __name__ == "__main__":
    main()
