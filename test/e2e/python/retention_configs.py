#!/usr/bin/python3
"""confluent_kafka.admin topic configs for retention_test.go.

  retention_configs.py --bootstrap B --topic T

confluent_kafka 1.7.0 has alter_configs (AlterConfigs, key 33: replaces the
topic's explicit configs) and describe_configs, not incremental_alter_configs.
Sets retention.ms and cleanup.policy, tries a bad value, describes, and prints
one JSON line: {"configs": {name: [value, source]}, "bad_error": "..."}.
"""
import argparse
import json

from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    a = ap.parse_args()
    adm = AdminClient({"bootstrap.servers": a.bootstrap})

    res = ConfigResource("topic", a.topic, set_config={"retention.ms": "86400000", "cleanup.policy": "compact,delete"})
    for f in adm.alter_configs([res], request_timeout=15).values():
        f.result(timeout=15)

    bad = ConfigResource("topic", a.topic, set_config={"retention.bytes": "lots"})
    bad_error = ""
    try:
        for f in adm.alter_configs([bad], request_timeout=15).values():
            f.result(timeout=15)
    except Exception as e:  # KafkaException carrying INVALID_CONFIG
        bad_error = str(e)

    out = {}
    for f in adm.describe_configs([ConfigResource("topic", a.topic)], request_timeout=15).values():
        for name, entry in f.result(timeout=15).items():
            out[name] = [entry.value, ConfigSource(entry.source).name]
    print(json.dumps({"configs": out, "bad_error": bad_error}))


if __name__ == "__main__":
    main()
