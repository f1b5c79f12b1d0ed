#!/usr/bin/python3
"""Transactional confluent_kafka (librdkafka) producer for the e2e tests.

  txn_producer.py BOOTSTRAP TOPIC [--commit N] [--abort M] [--tag-commit T] [--tag-abort T]

init_transactions(), then one transaction with N records (tag T-commit,
round-robin over the topic's partitions) that is committed, then one with M
records (tag T-abort) that is aborted. Record content follows
clients_common.py. The last stdout line is a JSON summary; exit code 0 only
when every step succeeded.
"""
import argparse
import time

from confluent_kafka import KafkaException, Producer

from clients_common import key, value, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--commit", type=int, default=10)
    ap.add_argument("--abort", type=int, default=5)
    ap.add_argument("--tag-commit", default="pycommit")
    ap.add_argument("--tag-abort", default="pyabort")
    ap.add_argument("--txn-id", default="e2e-python-txn")
    args = ap.parse_args()

    out = {"committed": 0, "aborted": 0, "delivered": 0, "errors": [], "step": "init"}
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.txn_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "transaction.timeout.ms": 60000,
    })

    def on_delivery(err, msg):
        if err is not None:
            out["errors"].append("delivery: %s" % err)
        else:
            out["delivered"] += 1

    try:
        md = p.list_topics(args.topic, timeout=10)
        parts = sorted(md.topics[args.topic].partitions.keys())
        t0 = time.time()
        p.init_transactions(30)
        out["init_s"] = round(time.time() - t0, 3)

        for tag, n, commit in ((args.tag_commit, args.commit, True), (args.tag_abort, args.abort, False)):
            out["step"] = "begin " + tag
            p.begin_transaction()
            for i in range(n):
                p.produce(args.topic, key=key(tag, i), value=value(tag, i),
                          partition=parts[i % len(parts)], on_delivery=on_delivery)
                p.poll(0)
            if commit:
                out["step"] = "commit " + tag
                p.commit_transaction(30)
                out["committed"] += n
            else:
                # Flush first so the aborted records really reach the log.
                out["step"] = "flush " + tag
                left = p.flush(30)
                if left:
                    out["errors"].append("%d messages not delivered before abort" % left)
                out["step"] = "abort " + tag
                p.abort_transaction(30)
                out["aborted"] += n
        out["step"] = "done"
    except KafkaException as e:
        err = e.args[0]
        out["errors"].append("%s: %s (code %s, retriable %s, abortable %s, fatal %s)" % (
            out["step"], err.str(), err.name(), err.retriable(), err.txn_requires_abort(), err.fatal()))
    summary(out, 0 if not out["errors"] and out["step"] == "done" else 1)


if __name__ == "__main__":
    main()
