#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages), only if missing:
# kcat (librdkafka CLI), Python confluent_kafka and kafka-python for
# /usr/bin/python3. Safe to run repeatedly.
set -euo pipefail

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
/usr/bin/python3 -c 'import confluent_kafka' >/dev/null 2>&1 || need+=(python3-confluent-kafka)
/usr/bin/python3 -c 'import kafka' >/dev/null 2>&1 || need+=(python3-kafka)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)

if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies present"
  exit 0
fi
echo "installing test dependencies: ${need[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
