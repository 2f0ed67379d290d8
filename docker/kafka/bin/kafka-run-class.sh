#!/bin/bash
# Run a Java class with the Kafka jars on the class path (kafka stand-in
# image).  Usage: kafka-run-class.sh [-daemon] [-name NAME] [-loggc] CLASS [ARGS...]
# Honours the usual Kafka launcher variables: KAFKA_HEAP_OPTS (default
# -Xmx256M), KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_GC_LOG_OPTS, KAFKA_JMX_OPTS,
# JMX_PORT, KAFKA_LOG4J_OPTS, KAFKA_OPTS, LOG_DIR, CLASSPATH, JAVA_HOME.
# The JVM replaces this shell (exec), so signals reach it directly.
set -o nounset -o errexit

KAFKA_HOME=/opt/kafka
while [[ $# -gt 0 ]]; do
    case $1 in
        -daemon) shift ;;                     # containers run in the foreground
        -name)   shift 2 ;;
        -loggc)  shift ;;
        *) break ;;
    esac
done
if [[ $# -lt 1 ]]; then
    echo "usage: $0 [-daemon] [-name NAME] [-loggc] CLASS [ARGS...]" >&2
    exit 1
fi

java=java
[[ -n ${JAVA_HOME:-} ]] && java=$JAVA_HOME/bin/java
cp="$KAFKA_HOME/libs/*"
[[ -n ${CLASSPATH:-} ]] && cp="$CLASSPATH:$cp"

heap=${KAFKA_HEAP_OPTS:--Xmx256M}
perf=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}
jmx=${KAFKA_JMX_OPTS:-}
if [[ -n ${JMX_PORT:-} ]]; then
    jmx="$jmx -Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false -Dcom.sun.management.jmxremote.port=$JMX_PORT"
fi
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$KAFKA_HOME/config/tools-log4j2.properties}
log_dir=${LOG_DIR:-$KAFKA_HOME/logs}

# shellcheck disable=SC2086 # option strings are word-split on purpose
exec "$java" $heap $perf ${KAFKA_GC_LOG_OPTS:-} $jmx -Dkafka.logs.dir="$log_dir" $log4j \
    -cp "$cp" ${KAFKA_OPTS:-} "$@"
