#!/bin/sh
# packaging/man.sh NETBOND_BINARY > netbond.8 — the manual page, made from the
# binary's own --help texts (the one source of truth for options), wrapped in roff:
# no extra build dependency. Used by packaging/build-deb.sh and the PKGBUILD.
set -eu
BIN=${1:?usage: packaging/man.sh NETBOND_BINARY}
VERSION=$("$BIN" --version | awk '{print $2}')
DATE=${SOURCE_DATE_EPOCH:+$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)}
DATE=${DATE:-$(date -u +%Y-%m-%d)}
# roff-safe verbatim text: backslashes doubled, a leading . or ' escaped
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
verbatim() { echo '.nf'; echo '.RS 4'; esc; echo '.RE'; echo '.fi'; }
# the subcommands, from the "Commands:" block of the top-level help
subs=$("$BIN" --help | awk '/^Commands:/{c=1;next} /^$/{c=0} c && $1!="help"{print $1}')

cat <<EOF
.TH NETBOND 8 "$DATE" "netbond $VERSION" "System Administration"
.SH NAME
netbond \\- network agent: kernel bond, DHCPv4/DHCPv6 with one DUID, wpa_supplicant control
.SH SYNOPSIS
.B netbond
.I COMMAND
.RI [ OPTIONS ]
.SH DESCRIPTION
netbond creates an active-backup bond, enslaves wired and Wi-Fi ports as they appear,
and runs DHCPv4 and DHCPv6 on it with one DUID, so the servers see the same client
whichever port is active. It runs as
.BR netbond.service ;
.B netbond-wait-online.service
orders network-online.target after it. The other commands talk to the running
daemon over its control socket in /run/netbond.
.PP
EOF
"$BIN" --help | verbatim
echo '.SH COMMANDS'
for s in $subs; do
  echo ".SS netbond $s"
  "$BIN" "$s" --help | verbatim
done
cat <<'EOF'
.SH SIGNALS
SIGTERM stops the daemon as [daemon] on_stop says (by default keeping addresses,
routes, DNS and the bond, so a restart never drops the network).
SIGHUP re-reads the configuration. SIGUSR1 logs a status line. SIGUSR2 renews now.
.SH FILES
.TP
.I /etc/netbond/netbond.toml
the configuration (every key, with its default:
.IR /usr/share/doc/netbond/examples/netbond.toml )
.TP
.I /var/lib/netbond
the DUID and the last lease per interface and family
.TP
.I /run/netbond
the control socket
.TP
.I /run/wpa_supplicant
control sockets of the wpa_supplicant instances netbond supervises
.SH SEE ALSO
.BR systemctl (1),
.BR wpa_cli (8),
.BR wpa_supplicant (8),
/usr/share/doc/netbond/README.md
EOF
