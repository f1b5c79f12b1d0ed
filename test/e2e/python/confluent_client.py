#!/usr/bin/python3
"""confluent_kafka (librdkafka) client for the e2e tests.

  roundtrip --bootstrap B --prefix P --n N --codecs none,gzip,...
      per codec: produce N records (keys, headers, acks=all, compression.type)
      to topic P<codec>, then consume them back with assign() and verify key,
      value, headers, partition/offset from the delivery report, order per
      partition and exactly-once arrival.
  produce --bootstrap B --topic T --tag TAG --n N [--codec C]
  consume --bootstrap B --topic T --n N   (prints every record as JSON)

Consumer groups are not implemented by the broker yet, so consumers use
assign() with OFFSET_BEGINNING and never commit. The last stdout line is a
JSON summary; the exit code is 0 only when everything checked out.
"""
import argparse
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

from clients_common import key, value, parse_value, summary, text


def produce(bootstrap, topic, tag, n, codec, extra_headers):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 5,
        "enable.idempotence": True,
    })
    reports = {}
    errors = []

    def on_delivery(i, err, msg):
        # Delivery reports do not carry headers in this client version, so
        # the index is bound per message.
        if err is not None:
            errors.append("%d: %s" % (i, err))
        else:
            reports[i] = (msg.partition(), msg.offset())

    for i in range(n):
        headers = [("idx", str(i))] + extra_headers
        while True:
            try:
                p.produce(topic, key=key(tag, i), value=value(tag, i), headers=headers,
                          on_delivery=lambda err, msg, i=i: on_delivery(i, err, msg))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    if left:
        errors.append("%d messages not delivered after flush" % left)
    return reports, errors


def consume(bootstrap, topic, n, timeout_s=60):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "e2e-assign-only",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions.keys())
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out = []
    deadline = time.time() + timeout_s
    while len(out) < n and time.time() < deadline:
        for m in c.consume(num_messages=1000, timeout=0.5):
            if m.error() is not None:
                raise RuntimeError("consume error: %s" % m.error())
            out.append({
                "p": m.partition(),
                "o": m.offset(),
                "k": text(m.key()),
                "v": text(m.value()),
                "h": [[k, text(v)] for k, v in (m.headers() or [])],
            })
    # Anything beyond n would be a duplicate; give it a short chance to show.
    for m in c.consume(num_messages=1000, timeout=0.3):
        if m.error() is None:
            out.append({"p": m.partition(), "o": m.offset(), "k": text(m.key()), "v": text(m.value()),
                        "h": [[k, text(v)] for k, v in (m.headers() or [])]})
    c.close()
    return out, parts


def verify(tag, n, reports, records, extra_headers):
    """Returns a list of problems (empty when the records are exactly right)."""
    problems = []
    seen = {}
    last = {}
    for r in records:
        try:
            vtag, i = parse_value(r["v"])
        except ValueError as e:
            problems.append(str(e))
            continue
        if vtag != tag or not 0 <= i < n:
            problems.append("foreign record %r" % r["v"])
            continue
        if i in seen:
            problems.append("record %d delivered twice" % i)
        seen[i] = True
        want_h = [["idx", str(i)]] + [list(h) for h in extra_headers]
        if r["k"] != key(tag, i) or r["h"] != want_h:
            problems.append("record %d: key %r headers %r" % (i, r["k"], r["h"]))
        if i in reports and (r["p"], r["o"]) != reports[i]:
            problems.append("record %d at %d/%d, delivery report said %s" % (i, r["p"], r["o"], reports[i]))
        prev = last.get(r["p"])
        if prev is not None and (r["o"] <= prev[0] or i <= prev[1]):
            problems.append("partition %d out of order at offset %d" % (r["p"], r["o"]))
        last[r["p"]] = (r["o"], i)
    if len(seen) != n:
        problems.append("%d distinct records of %d" % (len(seen), n))
    return problems[:20]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["roundtrip", "produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic")
    ap.add_argument("--prefix")
    ap.add_argument("--tag", default="py")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--codec", default="none")
    ap.add_argument("--codecs", default="none,gzip,snappy,lz4,zstd")
    a = ap.parse_args()

    if a.mode == "consume":
        records, parts = consume(a.bootstrap, a.topic, a.n)
        summary({"ok": len(records) == a.n, "partitions": parts, "records": records}, 0 if len(records) == a.n else 1)

    if a.mode == "produce":
        reports, errors = produce(a.bootstrap, a.topic, a.tag, a.n, a.codec, [("src", "python")])
        ok = not errors and len(reports) == a.n
        summary({"ok": ok, "produced": len(reports), "errors": errors[:20]}, 0 if ok else 1)

    result = {}
    all_ok = True
    for codec in a.codecs.split(","):
        topic = a.prefix + codec
        extra = [("codec", codec)]
        t0 = time.time()
        reports, errors = produce(a.bootstrap, topic, codec, a.n, codec, extra)
        records, parts = consume(a.bootstrap, topic, a.n)
        problems = errors + verify(codec, a.n, reports, records, extra)
        ok = not problems and len(reports) == a.n and len(records) == a.n
        all_ok = all_ok and ok
        result[codec] = {"ok": ok, "produced": len(reports), "consumed": len(records),
                         "partitions_used": sorted({p for p, _ in reports.values()}),
                         "problems": problems, "seconds": round(time.time() - t0, 2)}
    summary({"ok": all_ok, "codecs": result}, 0 if all_ok else 1)


if __name__ == "__main__":
    main()
