//! The command line: each command parses into its [`Command`], the usage errors, help
//! and version.

use super::args::{self, Cmd, Outcome};
use super::table::{self, ROOT};
use super::{Command, StopStart};
use crate::wifi::WifiAction;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

fn outcome(line: &[&str]) -> Outcome {
    args::parse(&ROOT, line.iter().map(OsString::from))
}

/// The command, or the text that would be printed instead (help, a usage error).
fn parse(line: &[&str]) -> Result<Command, String> {
    match outcome(line) {
        Outcome::Run(p) => table::command(&p).map_err(|e| format!("usage: {}", p.error(&e))),
        Outcome::Print(t) => Err(format!("printed: {t}")),
        Outcome::Usage(t) => Err(format!("usage: {t}")),
    }
}

fn usage_error(line: &[&str]) -> String {
    match parse(line) {
        Err(e) if e.starts_with("usage: ") => e,
        other => panic!("{line:?}: expected a usage error, got {other:?}"),
    }
}

fn printed(line: &[&str]) -> String {
    match outcome(line) {
        Outcome::Print(t) => t,
        Outcome::Run(_) => panic!("{line:?}: parsed, not printed"),
        Outcome::Usage(t) => panic!("{line:?}: a usage error: {t}"),
    }
}

#[test]
fn run_takes_every_option_in_both_forms() {
    let c = parse(&[
        "run",
        "--iface",
        "eth0,eth1",
        "--iface=eth2",
        "--config=/c.toml",
        "--state-dir",
        "/s",
        "--run-dir",
        "/r",
        "--resolv-conf=none",
        "--no-dhcp4",
        "--no-dhcp6",
        "--log-level",
        "debug",
    ]);
    let Ok(Command::Run {
        iface,
        config,
        state_dir,
        run_dir,
        resolv_conf,
        no_dhcp4,
        no_dhcp6,
        log_level,
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!(iface, ["eth0", "eth1", "eth2"]);
    assert_eq!(config.as_deref(), Some(Path::new("/c.toml")));
    assert_eq!(state_dir.as_deref(), Some(Path::new("/s")));
    assert_eq!(run_dir.as_deref(), Some(Path::new("/r")));
    assert_eq!(resolv_conf.as_deref(), Some("none"));
    assert!(no_dhcp4 && no_dhcp6);
    assert_eq!(log_level.as_deref(), Some("debug"));
    // Nothing given: nothing set (the configuration decides).
    let c = parse(&["run"]);
    assert!(
        matches!(&c, Ok(Command::Run { iface, config: None, run_dir: None, no_dhcp4: false, log_level: None, .. }) if iface.is_empty()),
        "{c:?}"
    );
}

#[test]
fn daemon_commands_take_the_run_dir_and_an_interface() {
    let c = parse(&[
        "status",
        "--json",
        "eth0",
        "--run-dir",
        "/r",
        "--cni-socket=/c",
    ]);
    let Ok(Command::Status {
        json: true,
        cni_socket: Some(s),
        at,
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!(s, Path::new("/c"));
    assert_eq!((at.run_dir, at.iface), ("/r".into(), Some("eth0".into())));
    let c = parse(&["monitor"]);
    let Ok(Command::Monitor {
        json: false,
        cni_socket: None,
        at,
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!((at.run_dir, at.iface), ("/run/netbond".into(), None));
    let c = parse(&["renew", "--v4", "eth1"]);
    let Ok(Command::Renew { family, at }) = c else {
        panic!("{c:?}")
    };
    assert_eq!(family.family(), crate::daemon::control::Family::V4);
    assert_eq!(at.iface.as_deref(), Some("eth1"));
    let c = parse(&["release", "--v6"]);
    let Ok(Command::Release { family, .. }) = c else {
        panic!("{c:?}")
    };
    assert_eq!(family.family(), crate::daemon::control::Family::V6);
    let c = parse(&["reload", "--run-dir=/x"]);
    assert!(
        matches!(&c, Ok(Command::Reload { at }) if at.run_dir == Path::new("/x")),
        "{c:?}"
    );
}

#[test]
fn dhcp_and_wifi_take_their_actions() {
    let c = parse(&["dhcp4", "stop", "eth0"]);
    let Ok(Command::Dhcp4 {
        action: StopStart::Stop,
        at,
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!(at.iface.as_deref(), Some("eth0"));
    let c = parse(&["dhcp6", "start"]);
    assert!(
        matches!(&c, Ok(Command::Dhcp6 { action: StopStart::Start, at }) if at.iface.is_none()),
        "{c:?}"
    );
    for (word, action) in [
        ("status", WifiAction::Status),
        ("reconfigure", WifiAction::Reconfigure),
        ("reassociate", WifiAction::Reassociate),
        ("scan", WifiAction::Scan),
        ("stop", WifiAction::Stop),
        ("start", WifiAction::Start),
    ] {
        let c = parse(&["wifi", "wlan0", word]);
        let Ok(Command::Wifi {
            iface,
            action: a,
            run_dir,
        }) = c
        else {
            panic!("{c:?}")
        };
        assert_eq!((iface.as_str(), a), ("wlan0", action));
        assert_eq!(run_dir, Path::new("/run/netbond"));
    }
}

#[test]
fn stop_wait_online_check_config_duid_demo() {
    let c = parse(&["stop", "--release", "--run-dir", "/r"]);
    assert!(
        matches!(&c, Ok(Command::Stop { release: true, run_dir }) if run_dir == Path::new("/r")),
        "{c:?}"
    );
    let c = parse(&["wait-online"]);
    let Ok(Command::WaitOnline {
        timeout,
        any: false,
        all: false,
        iface: None,
        family: None,
        run_dir,
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!((timeout, run_dir), (120.0, "/run/netbond".into()));
    let c = parse(&["wait-online", "--timeout=2.5", "--all", "--iface", "eth0"]);
    assert!(
        matches!(&c, Ok(Command::WaitOnline { timeout, all: true, iface: Some(i), .. }) if *timeout == 2.5 && i == "eth0"),
        "{c:?}"
    );
    let c = parse(&["wait-online", "--any", "--family", "6"]);
    assert!(
        matches!(&c, Ok(Command::WaitOnline { any: true, family: Some(f), .. }) if f == "6"),
        "{c:?}"
    );
    let c = parse(&["check-config", "/etc/x.toml"]);
    assert!(
        matches!(&c, Ok(Command::CheckConfig { path: Some(p) }) if p == Path::new("/etc/x.toml")),
        "{c:?}"
    );
    assert!(matches!(
        parse(&["check-config"]),
        Ok(Command::CheckConfig { path: None })
    ));
    let c = parse(&["duid", "--config", "/c", "--state-dir=/s"]);
    assert!(
        matches!(&c, Ok(Command::Duid { config: Some(c), state_dir: Some(s) }) if c == Path::new("/c") && s == Path::new("/s")),
        "{c:?}"
    );
    assert!(matches!(parse(&["demo"]), Ok(Command::Demo)));
}

#[test]
fn import_maps_every_source() {
    let c = parse(&[
        "import",
        "--dhclient-conf=/a",
        "--dhcp6c-conf",
        "/b",
        "--dhcp6c-duid=/c",
        "--primary=/d",
        "--master-unit=/e",
        "--bonding-conf=/f",
        "--wpa-conf=/g",
        "--supplicant-unit=/h",
        "--unit-dir=/i",
        "--wifi-iface",
        "wlan0",
        "--wifi-iface=wlan1",
        "--dhclient-hooks=/j",
        "-o/out.toml",
        "--force",
    ]);
    let Ok(Command::Import(a)) = c else {
        panic!("{c:?}")
    };
    let got = [
        a.dhclient_conf,
        a.dhcp6c_conf,
        a.dhcp6c_duid,
        a.primary,
        a.master_unit,
        a.bonding_conf,
        a.wpa_conf,
        a.supplicant_unit,
        a.unit_dir,
        a.dhclient_hooks,
    ];
    let want = ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i", "/j"];
    assert_eq!(got, want.map(|w| Some(PathBuf::from(w))));
    assert!(a.force);
    assert_eq!(a.wifi_iface, ["wlan0", "wlan1"]);
    assert_eq!(a.output, Path::new("/out.toml"));
    // -o in its other forms; "-" (standard output) is a value, and the default.
    for line in [["import", "-o", "-"], ["import", "-o=-", "--force"]] {
        let c = parse(&line);
        assert!(
            matches!(&c, Ok(Command::Import(a)) if a.output == Path::new("-")),
            "{c:?}"
        );
    }
    let c = parse(&["import"]);
    assert!(
        matches!(&c, Ok(Command::Import(a)) if a.output == Path::new("-") && !a.force && a.dhclient_conf.is_none()),
        "{c:?}"
    );
}

#[cfg(feature = "cni")]
#[test]
fn cni_subcommands() {
    use crate::cni::CniCommand;
    let c = parse(&["cni", "serve"]);
    let Ok(Command::Cni {
        cmd:
            CniCommand::Serve {
                socket: None,
                state_dir: None,
                hooks_dir: None,
                hooks_timeout: 30,
                log_level,
            },
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!(log_level, "info");
    let c = parse(&[
        "cni",
        "serve",
        "--socket=/s",
        "--state-dir",
        "/d",
        "--hooks-dir=/h",
        "--hooks-timeout",
        "5",
        "--log-level=debug",
    ]);
    assert!(
        matches!(&c, Ok(Command::Cni { cmd: CniCommand::Serve { socket: Some(_), state_dir: Some(_), hooks_dir: Some(_), hooks_timeout: 5, log_level } }) if log_level == "debug"),
        "{c:?}"
    );
    let c = parse(&["cni", "status", "--json", "--socket", "/s"]);
    assert!(
        matches!(&c, Ok(Command::Cni { cmd: CniCommand::Status { socket: Some(s), json: true } }) if s == Path::new("/s")),
        "{c:?}"
    );
    let e = usage_error(&["cni", "serve", "--hooks-timeout=soon"]);
    assert!(
        e.contains("invalid value 'soon' for --hooks-timeout"),
        "{e}"
    );
    assert!(e.contains("netbond cni serve --help"), "{e}");
    let e = usage_error(&["cni", "bogus"]);
    assert!(
        e.contains("unknown command 'bogus' for `netbond cni`"),
        "{e}"
    );
    assert!(printed(&["cni", "help", "serve"]).contains("--hooks-timeout <HOOKS_TIMEOUT>"));
}

#[cfg(not(feature = "cni"))]
#[test]
fn cni_without_the_feature_takes_anything() {
    let c = parse(&["cni", "serve", "--socket", "/s"]);
    let Ok(Command::Cni {
        cmd: crate::cni::CniCommand::Any(args),
    }) = c
    else {
        panic!("{c:?}")
    };
    assert_eq!(args, ["serve", "--socket", "/s"]);
}

#[test]
fn usage_errors_name_the_argument_and_what_is_expected() {
    for (line, want) in [
        (&["bogus"][..], "unknown command 'bogus' for `netbond`"),
        (
            &["run", "--bogus"],
            "unknown option '--bogus' for `netbond run`",
        ),
        (
            &["import", "-x"],
            "unknown option '-x' for `netbond import`",
        ),
        (&["run", "--config"], "--config <CONFIG> needs a value"),
        (&["run", "--config="], "--config <CONFIG> needs a value"),
        (
            &["run", "--config", "--no-dhcp4"],
            "write --config=--no-dhcp4",
        ),
        (&["import", "-o"], "--output <PATH> needs a value"),
        (
            &["status", "eth0", "extra"],
            "unexpected argument 'extra' (this command takes only [IFACE])",
        ),
        (&["demo", "x"], "unexpected argument 'x'"),
        (&["dhcp4"], "missing <ACTION>: expected one of stop, start"),
        (
            &["dhcp4", "STOP"],
            "invalid value 'STOP' for <ACTION>: expected one of stop, start",
        ),
        (&["wifi", "wlan0"], "missing <ACTION>"),
        (&["wifi"], "missing <IFACE>"),
        (
            &["wait-online", "--family", "5"],
            "invalid value '5' for --family <FAMILY>: expected one of 4, 6",
        ),
        (
            &["wait-online", "--timeout", "abc"],
            "invalid value 'abc' for --timeout",
        ),
        (
            &["wait-online", "--any", "--all"],
            "--any cannot be used with --all",
        ),
        (&["renew", "--v6", "--v4"], "--v4 cannot be used with --v6"),
        (&["status", "--json=yes"], "--json takes no value"),
        (
            &["status", "--json", "--json"],
            "--json is given more than once",
        ),
        (
            &["duid", "--config=a", "--config=b"],
            "--config <CONFIG> is given more than once",
        ),
        (&["check-config", ""], "<PATH> cannot be empty"),
        (&["help", "bogus"], "unknown command 'bogus'"),
        (&["help", "run", "x"], "`netbond run` has no subcommands"),
        (&["--help=1"], "--help takes no value"),
        (&["run", "--version"], "unknown option '--version'"),
    ] {
        let e = usage_error(line);
        assert!(e.starts_with("usage: netbond: "), "{line:?}: {e}");
        assert!(e.contains(want), "{line:?}: wanted {want:?} in {e}");
        // The command the error is about: `help run x` is about `run`.
        let sub = match line {
            ["help", s, _, ..] => Some(s),
            [s, ..] if !s.starts_with('-') && *s != "bogus" && *s != "help" => Some(s),
            _ => None,
        };
        let help = match sub {
            Some(s) => format!("run `netbond {s} --help`"),
            None => "run `netbond --help`".to_string(),
        };
        assert!(e.contains(&help), "{line:?}: wanted {help:?} in {e}");
    }
    // No command: the program's help, as an error.
    let e = parse(&[]).unwrap_err();
    assert!(
        e.starts_with("usage: ") && e.contains("\nCommands:\n"),
        "{e}"
    );
}

#[test]
fn options_end_at_double_dash_and_values_may_start_with_a_dash() {
    let c = parse(&["check-config", "--", "-weird.toml"]);
    assert!(
        matches!(&c, Ok(Command::CheckConfig { path: Some(p) }) if p == Path::new("-weird.toml")),
        "{c:?}"
    );
    let c = parse(&["status", "--", "--json"]);
    assert!(
        matches!(&c, Ok(Command::Status { json: false, at, .. }) if at.iface.as_deref() == Some("--json")),
        "{c:?}"
    );
    let c = parse(&["wait-online", "--timeout=-1"]);
    assert!(
        matches!(&c, Ok(Command::WaitOnline { timeout, .. }) if *timeout == -1.0),
        "{c:?}"
    );
    // A path need not be UTF-8.
    use std::os::unix::ffi::OsStringExt;
    let odd = OsString::from_vec(b"--config=/tmp/\xff.toml".to_vec());
    let Outcome::Run(p) = args::parse(&ROOT, [OsString::from("duid"), odd]) else {
        panic!("not parsed")
    };
    let c = table::command(&p);
    let want = OsString::from_vec(b"/tmp/\xff.toml".to_vec());
    assert!(
        matches!(&c, Ok(Command::Duid { config: Some(c), .. }) if c.as_os_str() == want),
        "{c:?}"
    );
}

#[test]
fn help_and_version() {
    let top = printed(&["--help"]);
    assert_eq!(top, printed(&["-h"]));
    assert_eq!(top, printed(&["help"]));
    assert!(top.starts_with("Network agent: "), "{top}");
    assert!(top.contains("\nUsage: netbond <COMMAND>\n"), "{top}");
    // packaging/man.sh reads the "Commands:" block up to the blank line, one command
    // a line; the VM's wifi test looks for the wifi line.
    let block = top.split("\nCommands:\n").nth(1).unwrap();
    let block = block.split("\n\n").next().unwrap();
    let names: Vec<&str> = block
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut want: Vec<&str> = ROOT.subs.iter().map(|c| c.name).collect();
    want.push("help");
    assert_eq!(names, want);
    assert!(block
        .lines()
        .any(|l| l.starts_with("  wifi ") && l.contains(" Control a")));
    assert!(top.contains("  -V, --version  Print version\n"), "{top}");
    let version = format!("netbond {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(printed(&["--version"]), version);
    assert_eq!(printed(&["-V"]), version);
    // Every command: `--help`, `-h` and `help CMD` agree, and show each option.
    for cmd in ROOT.subs {
        let h = printed(&[cmd.name, "--help"]);
        assert_eq!(h, printed(&[cmd.name, "-h"]), "{}", cmd.name);
        assert_eq!(h, printed(&["help", cmd.name]), "{}", cmd.name);
        assert!(h.starts_with(cmd.about), "{h}");
        assert!(h.contains(&format!("Usage: netbond {}", cmd.name)), "{h}");
        for o in cmd.opts {
            assert!(
                h.contains(&format!("--{} ", o.long)) || h.contains(&format!("--{}\n", o.long)),
                "{h}"
            );
        }
    }
    let h = printed(&["wait-online", "--help"]);
    assert!(
        h.contains("      --timeout <TIMEOUT>  Seconds to wait [default: 120]\n"),
        "{h}"
    );
    assert!(h.contains("[possible values: 4, 6]"), "{h}");
    let h = printed(&["import", "--help"]);
    assert!(h.contains("  -o, --output <PATH>"), "{h}");
    let h = printed(&["wifi", "--help"]);
    assert!(h.contains("- reassociate: Reassociate\n"), "{h}");
    // --help wins over what follows it, not over an error before it.
    assert!(printed(&["status", "--help", "--bogus"]).contains("Usage: netbond status"));
    usage_error(&["status", "--bogus", "--help"]);
}

/// Each command of the table parses with each of its options given, so every name the
/// conversion asks for is in the table (a wrong one fails a debug assertion).
#[test]
fn every_option_of_every_command_parses() {
    fn walk(cmd: &'static Cmd, path: &mut Vec<&'static str>) {
        if !cmd.subs.is_empty() {
            for s in cmd.subs {
                path.push(s.name);
                walk(s, path);
                path.pop();
            }
            return;
        }
        if cmd.raw {
            return;
        }
        let required: Vec<&str> = cmd
            .pos
            .iter()
            .filter(|p| p.required)
            .map(|p| p.choices.first().map_or("x", |c| c.0))
            .collect();
        for o in cmd.opts.iter() {
            let given = match (o.value, o.choices.first()) {
                (None, _) => format!("--{}", o.long),
                (Some(_), Some(c)) => format!("--{}={c}", o.long),
                (Some(_), None) if o.long.contains("timeout") => format!("--{}=3", o.long),
                (Some(_), None) => format!("--{}=v", o.long),
            };
            let mut line = path.clone();
            line.extend(&required);
            line.push(&given);
            if let Err(e) = parse(&line) {
                panic!("{line:?}: {e}");
            }
        }
    }
    walk(&ROOT, &mut Vec::new());
}
