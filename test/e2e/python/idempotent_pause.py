#!/usr/bin/python3
"""Idempotent confluent_kafka (librdkafka) producer that pauses mid-stream.

  idempotent_pause.py BOOTSTRAP TOPIC --tag T --first N --pause S --second M

Produces records 0..N-1 of data set T to partition 0 (enable.idempotence,
acks=all) and flushes, sleeps S seconds (the broker's producer state may
expire meanwhile), then produces records N..N+M-1 with the same producer and
flushes. The last stdout line is a JSON summary; exit code 0 only when every
record was delivered.
"""
import argparse
import time

from confluent_kafka import Producer

from clients_common import key, value, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--tag", default="pypause")
    ap.add_argument("--first", type=int, default=10)
    ap.add_argument("--second", type=int, default=10)
    ap.add_argument("--pause", type=float, default=3)
    args = ap.parse_args()

    out = {"delivered": 0, "errors": []}

    def report(err, msg):
        if err is not None:
            out["errors"].append(str(err))
        else:
            out["delivered"] += 1

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "message.timeout.ms": 30000,
        "error_cb": lambda err: out["errors"].append("error_cb: " + str(err)),
    })
    for start, n in ((0, args.first), (args.first, args.second)):
        for i in range(start, start + n):
            p.produce(args.topic, value=value(args.tag, i), key=key(args.tag, i), partition=0, on_delivery=report)
            p.poll(0)
        left = p.flush(30)
        if left:
            out["errors"].append("%d records not delivered after 30 s" % left)
        if start == 0:
            time.sleep(args.pause)
    summary(out, 0 if out["delivered"] == args.first + args.second and not out["errors"] else 1)


if __name__ == "__main__":
    main()
