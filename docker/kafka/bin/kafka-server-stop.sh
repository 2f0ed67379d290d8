#!/bin/bash
# Ask the Kafka server(s) in this container to shut down cleanly (SIGTERM).
# Usage: kafka-server-stop.sh [--process-role=broker|controller] [--node-id=N]
set -o nounset
role="" node=""
for a; do
    case $a in
        --process-role=*) role=${a#*=} ;;
        --node-id=*) node=${a#*=} ;;
    esac
done
found=0
for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    [[ $cmd == *java*" kafka.Kafka "* ]] || continue
    conf=${cmd#* kafka.Kafka }; conf=${conf%% *}
    if [[ -n $role ]] && ! grep -Eq "^process\.roles=.*$role" "$conf" 2>/dev/null; then continue; fi
    if [[ -n $node ]] && ! grep -Eq "^node\.id=$node\$" "$conf" 2>/dev/null; then continue; fi
    kill -TERM "${d#/proc/}" && found=1
done
if [[ $found -eq 0 ]]; then
    echo "No kafka server to stop"
    exit 1
fi
