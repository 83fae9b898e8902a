//! The commands, options and their help texts (the one source of the `--help` output
//! and so of the man page, `packaging/man.sh`), and the conversion of a parsed command
//! line into a [`Command`].

use super::args::{Cmd, Opt, Parsed, Pos};
use super::{Command, DaemonAt, FamilyArgs, ImportArgs, StopStart};
use std::ffi::OsString;
use std::path::PathBuf;

/// The program: `netbond COMMAND ...`.
pub static ROOT: Cmd = Cmd {
    name: "netbond",
    about: "Network agent: DHCPv4 + DHCPv6 with one stable identity that survives MAC changes",
    subs: COMMANDS,
    version: true,
    ..Cmd::LEAF
};

const DEFAULT_RUN_DIR: &str = "/run/netbond";

/// `--run-dir` of the commands that talk to the daemon.
const AT_RUN_DIR: Opt = Opt {
    long: "run-dir",
    value: Some("RUN_DIR"),
    help: "The daemon's run directory",
    default: Some(DEFAULT_RUN_DIR),
    ..Opt::FLAG
};

/// The optional interface of the commands that talk to the daemon.
const AT_IFACE: Pos = Pos {
    name: "IFACE",
    help: "One of the daemon's interfaces [default: all of them]",
    ..Pos::OPTIONAL
};

const V4: Opt = Opt {
    long: "v4",
    help: "DHCPv4 only",
    conflicts: Some("v6"),
    ..Opt::FLAG
};

const V6: Opt = flag("v6", "DHCPv6 only");

const STOP_START: Pos = Pos {
    name: "ACTION",
    help: "stop or start",
    required: true,
    choices: &[("stop", ""), ("start", "")],
    ..Pos::OPTIONAL
};

const LOG_LEVEL_HELP: &str = "error, warn, info, debug or trace (RUST_LOG overrides)";

/// A path option without a default of its own.
const fn path(long: &'static str, value: &'static str, help: &'static str) -> Opt {
    Opt {
        long,
        value: Some(value),
        help,
        ..Opt::FLAG
    }
}

const fn flag(long: &'static str, help: &'static str) -> Opt {
    Opt {
        long,
        help,
        ..Opt::FLAG
    }
}

static COMMANDS: &[Cmd] = &[
    Cmd {
        name: "run",
        about: "Run in the foreground, logging to stderr",
        opts: &[
            Opt {
                long: "iface",
                value: Some("IFACE"),
                help: "An interface to configure; repeat it (or give a comma list) to serve several from one process. In bond mode, extra interfaces beside the bond",
                repeat: true,
                split: true,
                ..Opt::FLAG
            },
            path("config", "CONFIG", "Configuration file [default: /etc/netbond/netbond.toml when it exists]"),
            path("state-dir", "STATE_DIR", "Lease store and DUID directory [default: /var/lib/netbond]"),
            path("run-dir", "RUN_DIR", "Runtime directory [default: /run/netbond]"),
            path("resolv-conf", "RESOLV_CONF", "resolv.conf to write, or \"none\" [default: /etc/resolv.conf]"),
            flag("no-dhcp4", "Do not run the DHCPv4 client"),
            flag("no-dhcp6", "Do not run the DHCPv6 client"),
            path("log-level", "LOG_LEVEL", LOG_LEVEL_HELP),
        ],
        ..Cmd::LEAF
    },
    Cmd {
        name: "demo",
        about: "Build a throwaway lab (namespaces, dnsmasq; a bond when the kernel has one), show a failover live, and clean up. Touches nothing of the host's network",
        ..Cmd::LEAF
    },
    Cmd {
        name: "status",
        about: "Show the interface, bond, leases, identity (from the running daemon), and the CNI daemon's container attachments when it runs",
        opts: &[
            flag("json", "Machine-readable output (stable; see README)"),
            path("cni-socket", "CNI_SOCKET", "The CNI daemon's socket, whose attachments are listed too [default: RUN_DIR/cni.sock when it exists]"),
            AT_RUN_DIR,
        ],
        pos: &[AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "monitor",
        about: "Follow events (leases, DNS, NTP, bond, Wi-Fi, daemon; and the CNI daemon's container attachments when it runs) as they happen; see the README for the JSON format",
        opts: &[
            flag("json", "One JSON object per line (stable, versioned; see README)"),
            path("cni-socket", "CNI_SOCKET", "The CNI daemon's socket, whose events are followed too [default: RUN_DIR/cni.sock when it exists]"),
            AT_RUN_DIR,
        ],
        pos: &[AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "renew",
        about: "Renew the lease(s) now",
        opts: &[V4, V6, AT_RUN_DIR],
        pos: &[AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "release",
        about: "Release the lease(s) and stop the client(s) until `start`",
        opts: &[V4, V6, AT_RUN_DIR],
        pos: &[AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "dhcp4",
        about: "Stop or start the DHCPv4 client alone",
        opts: &[AT_RUN_DIR],
        pos: &[STOP_START, AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "dhcp6",
        about: "Stop or start the DHCPv6 client alone",
        opts: &[AT_RUN_DIR],
        pos: &[STOP_START, AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "wifi",
        about: "Control a wireless port's wpa_supplicant",
        opts: &[AT_RUN_DIR],
        pos: &[
            Pos {
                name: "IFACE",
                help: "The wireless interface",
                required: true,
                ..Pos::OPTIONAL
            },
            Pos {
                name: "ACTION",
                help: "status, reconfigure, reassociate, scan, stop or start",
                required: true,
                choices: &[
                    ("status", "wpa_supplicant's STATUS"),
                    ("reconfigure", "Re-read the supplicant's configuration"),
                    ("reassociate", "Reassociate"),
                    ("scan", "Scan and return the results"),
                    ("stop", "Stop the supplicant for this interface (the rest keeps running)"),
                    ("start", "Start it again"),
                ],
                ..Pos::OPTIONAL
            },
        ],
        ..Cmd::LEAF
    },
    Cmd {
        name: "stop",
        about: "Stop the running daemon. Without --release the network stays as it is (addresses, routes, DNS, the bond; the leases are saved and the next start confirms them). With --release: release both families' leases, remove the addresses, routes, DNS and MTU, delete the bond (unless [bond] keep_on_stop), then exit. Returns when the daemon has done it",
        opts: &[
            flag("release", "Release the leases and remove the configuration first"),
            AT_RUN_DIR,
        ],
        ..Cmd::LEAF
    },
    Cmd {
        name: "wait-online",
        about: "Wait until the running daemon says the host is online: exit 0; 1 when the timeout passes first; 3 when no daemon answered at all. A daemon still starting (no control socket yet) is waited for, checking every 250 ms",
        opts: &[
            Opt {
                long: "timeout",
                value: Some("TIMEOUT"),
                help: "Seconds to wait",
                default: Some("120"),
                ..Opt::FLAG
            },
            Opt {
                long: "any",
                help: "One interface with a lease is enough [default: the daemon's `online`]",
                conflicts: Some("all"),
                ..Opt::FLAG
            },
            flag("all", "Every managed interface (or the --iface one) must have one"),
            path("iface", "IFACE", "Only this interface"),
            Opt {
                long: "family",
                value: Some("FAMILY"),
                help: "Only this family: 4 (a DHCPv4 lease) or 6 (a global IPv6 address: DHCPv6 or SLAAC)",
                choices: &["4", "6"],
                ..Opt::FLAG
            },
            AT_RUN_DIR,
        ],
        ..Cmd::LEAF
    },
    Cmd {
        name: "reload",
        about: "Make the running daemon re-read its configuration (like SIGHUP)",
        opts: &[AT_RUN_DIR],
        pos: &[AT_IFACE],
        ..Cmd::LEAF
    },
    Cmd {
        name: "import",
        about: "Convert a classic dhclient/dhcp6c/bonding setup into a netbond.toml, keeping the exact DUID so the DHCP servers' fixed addresses still match",
        opts: &[
            path("dhclient-conf", "PATH", "dhclient.conf [default: /etc/dhclient.conf, else /etc/dhcp/dhclient.conf]"),
            path("dhcp6c-conf", "PATH", "WIDE dhcp6c.conf [default: /etc/wide-dhcpv6/dhcp6c.conf]"),
            path("dhcp6c-duid", "PATH", "dhcp6c's DUID file [default: /var/lib/dhcpv6/dhcp6c_duid]"),
            path("primary", "PATH", "The bond primary: PRI=ifname [default: /etc/primary.conf]"),
            path("master-unit", "PATH", "The classic master unit [default: /etc/systemd/system/master@.service]"),
            path("bonding-conf", "PATH", "Bonding module options [default: /etc/modprobe.d/bonding.conf]"),
            path("wpa-conf", "PATH", "wpa_supplicant.conf [default: /etc/wpa_supplicant/wpa_supplicant.conf]"),
            path("supplicant-unit", "PATH", "The classic supplicant unit template, for its -c, -D and iw settings [default: /etc/systemd/system/supplicant@.service]"),
            path("unit-dir", "DIR", "Where the enabled supplicant@IFACE.service links are (`*.wants/`) [default: /etc/systemd/system]"),
            Opt {
                long: "wifi-iface",
                value: Some("IFACE"),
                help: "A Wi-Fi interface to write a [[wifi]] table for (repeatable); replaces the enabled supplicant@IFACE.service instances found in the unit directory",
                repeat: true,
                ..Opt::FLAG
            },
            path("dhclient-hooks", "DIR", "dhclient's exit hooks, named in the notes [default: /etc/dhcp/dhclient-exit-hooks.d]"),
            Opt {
                long: "output",
                short: Some('o'),
                value: Some("PATH"),
                help: "Where to write the configuration; \"-\" is standard output",
                default: Some("-"),
                ..Opt::FLAG
            },
            flag("force", "Replace an existing output file"),
        ],
        ..Cmd::LEAF
    },
    Cmd {
        name: "check-config",
        about: "Check a configuration file and report the first error with its position",
        pos: &[Pos {
            name: "PATH",
            help: "The file [default: /etc/netbond/netbond.toml]",
            ..Pos::OPTIONAL
        }],
        ..Cmd::LEAF
    },
    CNI,
    Cmd {
        name: "duid",
        about: "Print the DUID netbond uses (from the config or the state dir)",
        opts: &[
            path("config", "CONFIG", "Configuration file"),
            path("state-dir", "STATE_DIR", "State directory [default: /var/lib/netbond]"),
        ],
        ..Cmd::LEAF
    },
];

const CNI_ABOUT: &str = "Containers: the CNI IPAM daemon and its status (see README, Containers)";

#[cfg(feature = "cni")]
const CNI: Cmd = Cmd {
    name: "cni",
    about: CNI_ABOUT,
    subs: &[
        Cmd {
            name: "serve",
            about: "Run the host daemon that holds the containers' leases (one event loop)",
            opts: &[
                path("socket", "SOCKET", "The socket the plugin connects to [default: /run/netbond/cni.sock]. Ignored when systemd passes a socket (netbond-cni.socket)"),
                path("state-dir", "STATE_DIR", "The host DUID and the leases [default: /var/lib/netbond/cni]"),
                path("hooks-dir", "HOOKS_DIR", "Run the programs in DIR on the attachments' events, as the host daemon runs its `[hooks] dir` (README, Hooks); they run as root, as this daemon does. [default: no hooks]"),
                Opt {
                    long: "hooks-timeout",
                    value: Some("HOOKS_TIMEOUT"),
                    help: "Seconds a hook may run before it is killed",
                    default: Some("30"),
                    ..Opt::FLAG
                },
                Opt {
                    long: "log-level",
                    value: Some("LOG_LEVEL"),
                    help: LOG_LEVEL_HELP,
                    default: Some("info"),
                    ..Opt::FLAG
                },
            ],
            ..Cmd::LEAF
        },
        Cmd {
            name: "status",
            about: "List the attachments the daemon holds",
            opts: &[
                path("socket", "SOCKET", "The daemon's socket [default: /run/netbond/cni.sock]"),
                flag("json", "Machine-readable output"),
            ],
            ..Cmd::LEAF
        },
    ],
    ..Cmd::LEAF
};

/// Without the cni feature the command stays, takes anything, and refuses it
/// (`features::cni::run`).
#[cfg(not(feature = "cni"))]
const CNI: Cmd = Cmd {
    name: "cni",
    about: CNI_ABOUT,
    pos: &[Pos {
        name: "ARGS",
        help: "(not in this build)",
        many: true,
        ..Pos::OPTIONAL
    }],
    raw: true,
    ..Cmd::LEAF
};

fn path_of(p: &Parsed, long: &str) -> Option<PathBuf> {
    p.value(long).map(PathBuf::from)
}

fn text_of(p: &Parsed, long: &str) -> Result<Option<String>, String> {
    p.text(p.value(long), &format!("--{long}"))
}

fn number<T: std::str::FromStr>(p: &Parsed, long: &str, what: &str) -> Result<T, String> {
    let v = text_of(p, long)?.unwrap_or_default();
    v.parse()
        .map_err(|_| format!("invalid value '{v}' for --{long}: expected {what}"))
}

fn daemon_at(p: &Parsed) -> Result<DaemonAt, String> {
    // dhcp4 and dhcp6 take their action first.
    let n = usize::from(matches!(p.path[0], "dhcp4" | "dhcp6"));
    Ok(DaemonAt {
        run_dir: path_of(p, "run-dir").unwrap_or_else(|| DEFAULT_RUN_DIR.into()),
        iface: p.text(p.pos(n), "<IFACE>")?,
    })
}

fn family(p: &Parsed) -> FamilyArgs {
    FamilyArgs {
        v4: p.flag("v4"),
        v6: p.flag("v6"),
    }
}

fn stop_start(p: &Parsed) -> StopStart {
    match p.pos(0) {
        Some(a) if a == "start" => StopStart::Start,
        _ => StopStart::Stop,
    }
}

/// The parsed command line as a [`Command`]; an error is a usage error's message.
pub fn command(p: &Parsed) -> Result<Command, String> {
    Ok(match p.path[0] {
        "run" => Command::Run {
            iface: p
                .values("iface")
                .into_iter()
                .map(|v| p.text(Some(v), "--iface").map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?,
            config: path_of(p, "config"),
            state_dir: path_of(p, "state-dir"),
            run_dir: path_of(p, "run-dir"),
            resolv_conf: text_of(p, "resolv-conf")?,
            no_dhcp4: p.flag("no-dhcp4"),
            no_dhcp6: p.flag("no-dhcp6"),
            log_level: text_of(p, "log-level")?,
        },
        "demo" => Command::Demo,
        "status" => Command::Status {
            json: p.flag("json"),
            cni_socket: path_of(p, "cni-socket"),
            at: daemon_at(p)?,
        },
        "monitor" => Command::Monitor {
            json: p.flag("json"),
            cni_socket: path_of(p, "cni-socket"),
            at: daemon_at(p)?,
        },
        "renew" => Command::Renew {
            family: family(p),
            at: daemon_at(p)?,
        },
        "release" => Command::Release {
            family: family(p),
            at: daemon_at(p)?,
        },
        "dhcp4" => Command::Dhcp4 {
            action: stop_start(p),
            at: daemon_at(p)?,
        },
        "dhcp6" => Command::Dhcp6 {
            action: stop_start(p),
            at: daemon_at(p)?,
        },
        "reload" => Command::Reload { at: daemon_at(p)? },
        "cni" => Command::Cni { cmd: cni(p)? },
        _ => return other(p),
    })
}

/// The commands that do not talk to a running daemon (and `wifi`, `stop`).
fn other(p: &Parsed) -> Result<Command, String> {
    let run_dir = || path_of(p, "run-dir").unwrap_or_else(|| DEFAULT_RUN_DIR.into());
    Ok(match p.path[0] {
        "wifi" => Command::Wifi {
            iface: p.text(p.pos(0), "<IFACE>")?.unwrap_or_default(),
            action: wifi_action(p.pos(1)),
            run_dir: run_dir(),
        },
        "stop" => Command::Stop {
            release: p.flag("release"),
            run_dir: run_dir(),
        },
        "wait-online" => Command::WaitOnline {
            timeout: number(p, "timeout", "a number of seconds")?,
            any: p.flag("any"),
            all: p.flag("all"),
            iface: text_of(p, "iface")?,
            family: text_of(p, "family")?,
            run_dir: run_dir(),
        },
        "check-config" => Command::CheckConfig {
            path: p.pos(0).map(PathBuf::from),
        },
        "duid" => Command::Duid {
            config: path_of(p, "config"),
            state_dir: path_of(p, "state-dir"),
        },
        "import" => import(p)?,
        other => return Err(format!("unknown command '{other}'")),
    })
}

fn import(p: &Parsed) -> Result<Command, String> {
    let wifi_iface = p.values("wifi-iface");
    Ok(Command::Import(ImportArgs {
        dhclient_conf: path_of(p, "dhclient-conf"),
        dhcp6c_conf: path_of(p, "dhcp6c-conf"),
        dhcp6c_duid: path_of(p, "dhcp6c-duid"),
        primary: path_of(p, "primary"),
        master_unit: path_of(p, "master-unit"),
        bonding_conf: path_of(p, "bonding-conf"),
        wpa_conf: path_of(p, "wpa-conf"),
        supplicant_unit: path_of(p, "supplicant-unit"),
        unit_dir: path_of(p, "unit-dir"),
        wifi_iface: wifi_iface
            .into_iter()
            .map(|v| {
                p.text(Some(v), "--wifi-iface")
                    .map(Option::unwrap_or_default)
            })
            .collect::<Result<_, _>>()?,
        dhclient_hooks: path_of(p, "dhclient-hooks"),
        output: path_of(p, "output").unwrap_or_else(|| "-".into()),
        force: p.flag("force"),
    }))
}

fn wifi_action(a: Option<OsString>) -> crate::wifi::WifiAction {
    use crate::wifi::WifiAction;
    // The parser has checked the value against the table's choices.
    match a.as_ref().and_then(|a| a.to_str()) {
        Some("reconfigure") => WifiAction::Reconfigure,
        Some("reassociate") => WifiAction::Reassociate,
        Some("scan") => WifiAction::Scan,
        Some("stop") => WifiAction::Stop,
        Some("start") => WifiAction::Start,
        _ => WifiAction::Status,
    }
}

#[cfg(feature = "cni")]
fn cni(p: &Parsed) -> Result<crate::cni::CniCommand, String> {
    use crate::cni::CniCommand;
    Ok(match p.path.get(1) {
        Some(&"serve") => CniCommand::Serve {
            socket: path_of(p, "socket"),
            state_dir: path_of(p, "state-dir"),
            hooks_dir: path_of(p, "hooks-dir"),
            hooks_timeout: number(p, "hooks-timeout", "a whole number of seconds")?,
            log_level: text_of(p, "log-level")?.unwrap_or_default(),
        },
        _ => CniCommand::Status {
            socket: path_of(p, "socket"),
            json: p.flag("json"),
        },
    })
}

#[cfg(not(feature = "cni"))]
fn cni(p: &Parsed) -> Result<crate::cni::CniCommand, String> {
    let args = (0..).map_while(|n| p.pos(n));
    Ok(crate::cni::CniCommand::Any(
        args.map(|a| a.to_string_lossy().into_owned()).collect(),
    ))
}
