"""Record content shared with the Go tests (see clients_helpers_test.go).

Record i of a data set tagged `tag` has key k-<tag>-<i%97> and value
v-<tag>-<i:07d>-<crc32("tag/i"):08x>, so each record can be checked alone.
"""
import json
import sys
import zlib


def key(tag, i):
    return "k-%s-%d" % (tag, i % 97)


def value(tag, i):
    return "v-%s-%07d-%08x" % (tag, i, zlib.crc32(("%s/%d" % (tag, i)).encode()) & 0xFFFFFFFF)


def parse_value(v):
    """Returns (tag, index) of a value made by value(), or raises ValueError."""
    if not v.startswith("v-"):
        raise ValueError("bad value %r" % v)
    rest, idx, crc = v[2:].rsplit("-", 2)
    i = int(idx)
    if value(rest, i) != v:
        raise ValueError("checksum mismatch in %r" % v)
    return rest, i


def summary(obj, code=0):
    """Prints the JSON summary as the last stdout line and exits."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def text(b):
    return None if b is None else b.decode("utf-8")
