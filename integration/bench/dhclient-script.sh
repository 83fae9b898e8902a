#!/bin/sh
# dhclient -sf script for the netbond benchmark. It only sets (or removes) the leased
# address on the interface, inside the benchmark's network namespace: no routes, no
# resolv.conf, no hostname, no hooks. ISC dhclient passes everything in the environment.
case "$reason" in
  PREINIT|PREINIT6)
    ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" 2>/dev/null
    fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  EXPIRE|FAIL|RELEASE|STOP)
    [ -n "$old_ip_address" ] && ip -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" 2>/dev/null ;;
  BOUND6|RENEW6|REBIND6|REBOOT6)
    [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" dev "$interface" ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/${old_ip6_prefixlen:-128}" dev "$interface" 2>/dev/null ;;
esac
exit 0
