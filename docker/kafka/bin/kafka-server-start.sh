#!/bin/bash
# Start a Kafka server in the foreground (kafka stand-in image).
# Usage: kafka-server-start.sh [-daemon] server.properties [--override k=v ...]
set -o nounset -o errexit
[[ ${1:-} == -daemon ]] && shift
if [[ $# -lt 1 ]]; then
    echo "usage: $0 [-daemon] server.properties [--override property=value]*" >&2
    exit 1
fi
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
# Logging: the broker config written by /etc/kafka/docker/run.
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties}
exec "$(dirname "$0")/kafka-run-class.sh" -name kafkaServer kafka.Kafka "$@"
