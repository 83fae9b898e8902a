//! The command line: `netbond run`, `netbond check-config`, `netbond duid`, ...
//! Parsed by netbond's own small parser (`args.rs`) from the table in `table.rs`.

mod args;
mod table;

use crate::config::Config;
use crate::daemon::control::{self, Family, Request};
use crate::daemon::{self, Overrides, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/netbond/netbond.toml";

/// A command line, parsed by [`table::command`]; the commands' and options' help
/// texts are in `table.rs`. An option not given is `None` (or its table default).
#[derive(Debug)]
enum Command {
    Run {
        iface: Vec<String>,
        config: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        run_dir: Option<PathBuf>,
        resolv_conf: Option<String>,
        no_dhcp4: bool,
        no_dhcp6: bool,
        log_level: Option<String>,
    },
    Demo,
    Status {
        json: bool,
        cni_socket: Option<PathBuf>,
        at: DaemonAt,
    },
    Monitor {
        json: bool,
        cni_socket: Option<PathBuf>,
        at: DaemonAt,
    },
    Renew {
        family: FamilyArgs,
        at: DaemonAt,
    },
    Release {
        family: FamilyArgs,
        at: DaemonAt,
    },
    Dhcp4 {
        action: StopStart,
        at: DaemonAt,
    },
    Dhcp6 {
        action: StopStart,
        at: DaemonAt,
    },
    Wifi {
        iface: String,
        action: crate::wifi::WifiAction,
        run_dir: PathBuf,
    },
    Stop {
        release: bool,
        run_dir: PathBuf,
    },
    WaitOnline {
        timeout: f64,
        any: bool,
        all: bool,
        iface: Option<String>,
        family: Option<String>,
        run_dir: PathBuf,
    },
    Reload {
        at: DaemonAt,
    },
    #[cfg_attr(not(feature = "import"), allow(dead_code))]
    Import(ImportArgs),
    CheckConfig {
        path: Option<PathBuf>,
    },
    Cni {
        cmd: crate::cni::CniCommand,
    },
    Duid {
        config: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    },
}

/// `netbond import`: the sources' paths (`None`: the default) and where to write. (A
/// build without the import feature parses them and refuses the command.)
#[derive(Debug)]
#[cfg_attr(not(feature = "import"), allow(dead_code))]
struct ImportArgs {
    dhclient_conf: Option<PathBuf>,
    dhcp6c_conf: Option<PathBuf>,
    dhcp6c_duid: Option<PathBuf>,
    primary: Option<PathBuf>,
    master_unit: Option<PathBuf>,
    bonding_conf: Option<PathBuf>,
    wpa_conf: Option<PathBuf>,
    supplicant_unit: Option<PathBuf>,
    unit_dir: Option<PathBuf>,
    wifi_iface: Vec<String>,
    dhclient_hooks: Option<PathBuf>,
    output: PathBuf,
    force: bool,
}

/// Where the running daemon's control socket is.
#[derive(Debug)]
struct DaemonAt {
    /// The daemon's run directory [default: /run/netbond].
    run_dir: PathBuf,
    /// One of the daemon's interfaces [default: all of them].
    iface: Option<String>,
}

#[derive(Debug)]
struct FamilyArgs {
    /// DHCPv4 only.
    v4: bool,
    /// DHCPv6 only.
    v6: bool,
}

impl FamilyArgs {
    fn family(&self) -> Family {
        match (self.v4, self.v6) {
            (true, false) => Family::V4,
            (false, true) => Family::V6,
            _ => Family::Both,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum StopStart {
    Stop,
    Start,
}

/// The single-threaded runtime of a client command (and of the CNI daemon); the error
/// is printed here.
pub fn small_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("netbond: {e}");
            ExitCode::FAILURE
        })
}

/// Send one request to the daemon and print the outcome.
fn client(at: &DaemonAt, req: Request, json: bool) -> ExitCode {
    host_call(&at.run_dir, req, json)
}

/// One request to the host daemon in `run_dir`, its answer printed (a status as text
/// or JSON). Also `netbond status` in a build without the CNI front end.
pub(crate) fn host_call(run_dir: &Path, req: Request, json: bool) -> ExitCode {
    let rt = match crate::cli::small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(control::call(run_dir, &req)) {
        Err(e) => {
            eprintln!("netbond: {e}");
            ExitCode::from(3)
        }
        Ok(resp) if !resp.ok => {
            eprintln!("netbond: {}", resp.error.unwrap_or_default());
            ExitCode::from(1)
        }
        Ok(resp) => {
            match (&resp.status, json) {
                (Some(s), true) => {
                    println!("{}", serde_json::to_string_pretty(s).unwrap_or_default())
                }
                (Some(s), false) => print!("{}", crate::dhcp::status::render(s)),
                (None, _) => println!("{}", resp.message.unwrap_or_default()),
            }
            ExitCode::SUCCESS
        }
    }
}

/// `netbond wait-online`: ask the daemon to answer when online; while it cannot be
/// reached (starting, restarting) try again every 250 ms until the timeout.
fn wait_online(
    run_dir: &Path,
    timeout: f64,
    policy: Option<crate::daemon::online::Policy>,
    iface: Option<String>,
    family: Option<u8>,
) -> ExitCode {
    use std::time::{Duration, Instant};
    if !(0.0..=86_400.0).contains(&timeout) {
        eprintln!("netbond: --timeout must be 0 to 86400 seconds");
        return ExitCode::from(2);
    }
    let rt = match crate::cli::small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let mut reached = false;
    let mut last_error: String;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let req = Request::WaitOnline {
            policy,
            iface: iface.clone(),
            family,
            timeout_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        };
        // The daemon answers by the deadline; allow it a moment more to do so.
        match rt.block_on(control::call_within(
            run_dir,
            &req,
            left + Duration::from_secs(5),
        )) {
            Ok(resp) if resp.ok => {
                println!("{}", resp.message.unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            Ok(resp) => {
                reached = true;
                let e = resp.error.unwrap_or_default();
                if !e.starts_with("netbond is stopping") {
                    eprintln!("netbond: {e}");
                    return ExitCode::from(1);
                }
                // Stopping: maybe a restart; the next one is waited for.
                last_error = e;
            }
            // Waiting cannot fix permissions.
            Err(e) if e.starts_with("permission denied") => {
                eprintln!("netbond: {e}");
                return ExitCode::from(3);
            }
            Err(e) => last_error = e,
        }
        if Instant::now() >= deadline {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(250)));
    }
    if reached {
        eprintln!("netbond: not online within {timeout} s: {last_error}");
        ExitCode::from(1)
    } else {
        eprintln!("netbond: no answer from the daemon within {timeout} s: {last_error}");
        ExitCode::from(3)
    }
}

fn load_config(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), String> {
    match path {
        Some(p) => Config::load(p)
            .map(|c| (c, Some(p.to_path_buf())))
            .map_err(|e| e.to_string()),
        None if Path::new(DEFAULT_CONFIG).exists() => {
            let p = Path::new(DEFAULT_CONFIG);
            Config::load(p)
                .map(|c| (c, Some(p.to_path_buf())))
                .map_err(|e| e.to_string())
        }
        None => Ok((Config::default(), None)),
    }
}

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match command {
        Command::Run {
            iface,
            config,
            state_dir,
            run_dir,
            resolv_conf,
            no_dhcp4,
            no_dhcp6,
            log_level,
        } => {
            let overrides = Overrides {
                state_dir,
                run_dir,
                resolv_conf,
                no_dhcp4,
                no_dhcp6,
            };
            run(&iface, config.as_deref(), overrides, log_level.as_deref())
        }
        Command::Demo => crate::tools::demo::main(),
        #[cfg(not(feature = "import"))]
        Command::Import(_) => crate::features::import_refused(),
        #[cfg(feature = "import")]
        Command::Import(a) => import(a),
        Command::Status {
            json,
            cni_socket,
            at,
        } => crate::cni::client::status(&at.run_dir, at.iface.clone(), json, cni_socket),
        Command::Monitor {
            json,
            cni_socket,
            at,
        } => monitor(&at, json, cni_socket),
        Command::Renew { family, at } => {
            let iface = at.iface.clone();
            let family = family.family();
            client(&at, Request::Renew { family, iface }, false)
        }
        Command::Release { family, at } => {
            let iface = at.iface.clone();
            let family = family.family();
            client(&at, Request::Release { family, iface }, false)
        }
        Command::Dhcp4 { action, at } => {
            let req = stop_start(action, Family::V4, at.iface.clone());
            client(&at, req, false)
        }
        Command::Dhcp6 { action, at } => {
            let req = stop_start(action, Family::V6, at.iface.clone());
            client(&at, req, false)
        }
        Command::Reload { at } => client(&at, Request::Reload, false),
        Command::Stop { release, run_dir } => {
            let at = DaemonAt {
                run_dir,
                iface: None,
            };
            client(&at, Request::Shutdown { release }, false)
        }
        Command::WaitOnline {
            timeout,
            any,
            all,
            iface,
            family,
            run_dir,
        } => {
            let family = family.and_then(|f| f.parse().ok());
            wait_online(&run_dir, timeout, policy_of(any, all), iface, family)
        }
        Command::Wifi {
            iface,
            action,
            run_dir,
        } => {
            let at = DaemonAt {
                run_dir,
                iface: None,
            };
            client(&at, Request::Wifi { iface, action }, false)
        }
        Command::CheckConfig { path } => check_config(path),
        Command::Cni { cmd } => crate::cni::run(cmd),
        Command::Duid { config, state_dir } => duid(config.as_deref(), state_dir),
    }
}

/// The command line as a [`Command`]; help, the version and usage errors are printed
/// here (usage errors exit 2).
fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command, ExitCode> {
    use std::io::Write;
    let usage = |text: &str| {
        let _ = std::io::stderr().write_all(text.as_bytes());
        ExitCode::from(2)
    };
    match args::parse(&table::ROOT, args) {
        args::Outcome::Run(p) => table::command(&p).map_err(|e| usage(&p.error(&e))),
        args::Outcome::Print(text) => {
            // A closed pipe (`netbond --help | head`) is no error.
            let _ = std::io::stdout().write_all(text.as_bytes());
            Err(ExitCode::SUCCESS)
        }
        args::Outcome::Usage(text) => Err(usage(&text)),
    }
}

/// `netbond import`: the sources given on the command line over the defaults.
#[cfg(feature = "import")]
fn import(a: ImportArgs) -> ExitCode {
    let mut src = crate::tools::import::ImportSources::defaults();
    for (slot, given) in [
        (&mut src.dhclient_conf, a.dhclient_conf),
        (&mut src.dhcp6c_conf, a.dhcp6c_conf),
        (&mut src.dhcp6c_duid, a.dhcp6c_duid),
        (&mut src.primary_conf, a.primary),
        (&mut src.master_unit, a.master_unit),
        (&mut src.bonding_conf, a.bonding_conf),
        (&mut src.wpa_conf, a.wpa_conf),
        (&mut src.supplicant_unit, a.supplicant_unit),
        (&mut src.unit_dir, a.unit_dir),
        (&mut src.dhclient_hooks, a.dhclient_hooks),
    ] {
        if given.is_some() {
            *slot = given;
        }
    }
    src.wifi_ifaces = a.wifi_iface;
    crate::tools::import::cli(&src, &a.output, a.force)
}

/// `wait-online --any` / `--all`; neither: the daemon's `[daemon] online`.
fn policy_of(any: bool, all: bool) -> Option<crate::daemon::online::Policy> {
    match (any, all) {
        (true, _) => Some(crate::daemon::online::Policy::Any),
        (_, true) => Some(crate::daemon::online::Policy::All),
        _ => None,
    }
}

/// `netbond run`: the configuration (file, then the command line), the interfaces, the
/// runtime, then the daemon until it stops.
fn run(
    iface: &[String],
    config: Option<&Path>,
    overrides: Overrides,
    log_level: Option<&str>,
) -> ExitCode {
    let (mut cfg, config_path) = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netbond: {e}");
            return ExitCode::from(2);
        }
    };
    overrides.apply(&mut cfg);
    crate::logging::init(log_level, &cfg.daemon.log_level);
    let ifnames = match cfg.managed_interfaces(iface) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("netbond: {e}");
            return ExitCode::from(2);
        }
    };
    if !cfg.dhcp4.enabled && !cfg.dhcp6.enabled {
        eprintln!("netbond: both DHCPv4 and DHCPv6 are disabled: nothing to do");
        return ExitCode::from(2);
    }
    // The blocking pool only closes packet sockets (see sock::PacketFd), in
    // bursts at start and stop with many interfaces; its threads must be gone
    // soon after, or an idle daemon would wake up 10 s later for one to exit.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(32)
        .thread_keep_alive(std::time::Duration::from_millis(50))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netbond: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        ifnames,
        config_path,
        cfg,
        overrides,
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::logging::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `netbond duid`: the configured DUID, else the one in the state directory.
fn duid(config: Option<&Path>, state_dir: Option<PathBuf>) -> ExitCode {
    let (mut cfg, _) = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netbond: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(d) = state_dir {
        cfg.daemon.state_dir = d;
    }
    if let Some(d) = &cfg.identity.duid {
        println!("{d}");
        return ExitCode::SUCCESS;
    }
    match crate::state::store::Store::open(&cfg.daemon.state_dir)
        .ok()
        .and_then(|s| s.load_duid())
    {
        Some(d) => {
            println!("{d}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "netbond: no DUID yet in {} (one is made at the first `netbond run`)",
                cfg.daemon.state_dir.display()
            );
            ExitCode::from(1)
        }
    }
}

/// `netbond check-config`: load and validate the file, say OK or what is wrong.
fn check_config(path: Option<PathBuf>) -> ExitCode {
    let p = path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match Config::load(&p) {
        Ok(_) => {
            println!("{}: OK", p.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `netbond monitor`: print events until the daemon goes away (exit 0) or cannot be
/// reached (exit 3).
fn monitor(at: &DaemonAt, json: bool, cni_socket: Option<PathBuf>) -> ExitCode {
    let rt = match crate::cli::small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        use std::io::Write;
        // The subscriptions are in place once `follow` returns (it says so on stderr,
        // so that `--json` output stays pure).
        let mut lines =
            match crate::cni::client::follow(&at.run_dir, at.iface.clone(), cni_socket).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("netbond: {e}");
                    return ExitCode::from(3);
                }
            };
        let mut out = std::io::stdout().lock();
        loop {
            let line = match lines.recv().await {
                Some(Ok(l)) => l,
                None => return ExitCode::SUCCESS,
                Some(Err(e)) => {
                    eprintln!("netbond: {e}");
                    return ExitCode::from(3);
                }
            };
            let text = if json { line } else { human_event(&line) };
            // A closed pipe (`netbond monitor | head`) ends the monitor quietly.
            if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
    })
}

/// One event as a line for people: time, sequence, interface, type, then the rest.
fn human_event(line: &str) -> String {
    let Ok(serde_json::Value::Object(mut ev)) = serde_json::from_str(line) else {
        return line.to_string();
    };
    let mut take = |k: &str| ev.remove(k).unwrap_or(serde_json::Value::Null);
    let time = take("time");
    let seq = take("seq");
    let kind = take("type");
    let iface = take("interface");
    take("v");
    let mut s = format!(
        "{} #{} {} {}",
        time.as_str().unwrap_or("?"),
        seq,
        iface.as_str().unwrap_or("-"),
        kind.as_str().unwrap_or("?")
    );
    for (k, v) in ev {
        if !v.is_null() {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    s
}

fn stop_start(a: StopStart, family: Family, iface: Option<String>) -> Request {
    match a {
        StopStart::Stop => Request::Stop { family, iface },
        StopStart::Start => Request::Start { family, iface },
    }
}

#[cfg(test)]
mod tests;
