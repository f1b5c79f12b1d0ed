#!/usr/bin/python3
"""confluent_kafka consumer for the transaction e2e tests.

  txn_consumer.py BOOTSTRAP TOPIC --isolation read_committed|read_uncommitted

assign()s every partition of TOPIC from OFFSET_BEGINNING (group.id set, no
commits) and reads until every partition reported end of partition (with
read_committed that is the last stable offset). Prints every record as JSON
in the summary, the last stdout line.
"""
import argparse
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING

from clients_common import summary, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--isolation", default="read_committed")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "e2e-txn-" + args.isolation,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": args.isolation,
        "enable.partition.eof": True,
    })
    md = c.list_topics(args.topic, timeout=10)
    parts = sorted(md.topics[args.topic].partitions.keys())
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
    recs, errors, eof = [], [], set()
    deadline = time.time() + args.timeout
    while len(eof) < len(parts) and time.time() < deadline:
        for m in c.consume(num_messages=1000, timeout=0.5):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                else:
                    errors.append(str(m.error()))
                continue
            recs.append({"p": m.partition(), "o": m.offset(), "k": text(m.key()),
                         "v": text(m.value()), "h": []})
    c.close()
    if len(eof) < len(parts):
        errors.append("end of partition reached on %d of %d partitions" % (len(eof), len(parts)))
    summary({"records": recs, "errors": errors}, 0 if not errors else 1)


if __name__ == "__main__":
    main()
