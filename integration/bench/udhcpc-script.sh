#!/bin/sh
# busybox udhcpc -s script for the netbond benchmark: sets only the leased address, inside
# the benchmark's network namespace (no routes, no resolv.conf, no hostname).
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface" scope global ;;
  bound|renew)
    cur=$(ip -4 -o addr show dev "$interface" scope global | awk '{print $4}' | cut -d/ -f1)
    if [ -n "$cur" ] && [ "$cur" != "$ip" ]; then
      ip -4 addr flush dev "$interface" scope global
    fi
    ip -4 addr replace "$ip/${mask:-$subnet}" dev "$interface" ;;
esac
exit 0
