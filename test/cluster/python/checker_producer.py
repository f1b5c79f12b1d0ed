#!/usr/bin/python3
"""librdkafka (confluent_kafka) producer for the cluster checker.

  checker_producer.py --bootstrap B --topic T --prefix P --seconds S

Produces unique ids P-<n> (key = value = id) with enable.idempotence and
acks=all for S seconds at a steady rate, then flushes. The last stdout line
is JSON: {"acked": [[partition, offset, id], ...], "failed": N}.
"""
import argparse
import json
import time

from confluent_kafka import Producer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    a = ap.parse_args()
    p = Producer({
        "bootstrap.servers": a.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 6000,
        "linger.ms": 5,
    })
    acked, failed = [], [0]

    def report(err, msg):
        if err is not None:
            failed[0] += 1
        else:
            acked.append([msg.partition(), msg.offset(), msg.value().decode()])

    end = time.time() + a.seconds
    n = 0
    while time.time() < end:
        rid = "%s-%d" % (a.prefix, n)
        try:
            p.produce(a.topic, key=rid, value=rid, on_delivery=report)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        if n % 50 == 0:
            p.poll(0)
            time.sleep(0.02)  # at most 2,500 records a second
    p.flush(30)
    print(json.dumps({"acked": acked, "failed": failed[0]}))


if __name__ == "__main__":
    main()
