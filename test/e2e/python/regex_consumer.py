#!/usr/bin/python3
"""librdkafka (confluent_kafka) regex subscription for internal_topics_test.go.

  regex_consumer.py --bootstrap B --group G --pattern '^.*' --want N [--timeout-s 30]
                    [--blacklist '^__.*']

Subscribes to the pattern and polls until N records arrived or the timeout
passed, then prints one JSON summary line: records per topic, and the topics
the cluster metadata lists (with internal ones), so the test can check that a
regex subscription sees internal topics in metadata but never consumes them.
"""
import argparse
import json
import time

from confluent_kafka import Consumer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--pattern", required=True)
    ap.add_argument("--want", type=int, required=True)
    ap.add_argument("--timeout-s", type=float, default=30)
    ap.add_argument("--blacklist", default="")
    a = ap.parse_args()
    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    if a.blacklist:
        conf["topic.blacklist"] = a.blacklist
    c = Consumer(conf)
    c.subscribe([a.pattern])
    counts = {}
    got = 0
    deadline = time.time() + a.timeout_s
    while time.time() < deadline and got < a.want:
        m = c.poll(0.2)
        if m is None or m.error() is not None:
            continue
        counts[m.topic()] = counts.get(m.topic(), 0) + 1
        got += 1
    # Keep polling a little: records of an internal topic would arrive too.
    end = time.time() + 2
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            counts[m.topic()] = counts.get(m.topic(), 0) + 1
    md = c.list_topics(timeout=10)
    c.close()
    print(json.dumps({"counts": counts, "metadata_topics": sorted(md.topics.keys())}), flush=True)


if __name__ == "__main__":
    main()
