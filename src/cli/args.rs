//! A small command-line parser: the commands are described by static tables ([`Cmd`],
//! [`Opt`], [`Pos`]), from which the same tables give the help texts. netbond's own
//! instead of a general crate because the CLI needs few things (long options with a
//! value, one short option, positionals, one level of nested commands) and the binary
//! size matters (issue 14 item 7).
//!
//! Accepted forms: `--opt value`, `--opt=value`, `-o value`, `-ovalue`, `-o=value`;
//! options and positionals in any order; `--` ends the options. A separate value that
//! starts with `-` is taken as an option, not a value (`--opt=-x` gives such a value).
//! Every usage error names the argument and what was expected, and points to `--help`.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// A command (or the program itself): its options, positionals and subcommands.
pub struct Cmd {
    pub name: &'static str,
    /// One line (the first sentence is what the parent's command list shows, whole).
    pub about: &'static str,
    pub opts: &'static [Opt],
    pub pos: &'static [Pos],
    /// Subcommands: one of them must follow (and `help [COMMAND]` is added).
    pub subs: &'static [Cmd],
    /// Only the program: `-V`/`--version`.
    pub version: bool,
    /// Everything after the command is taken as positionals, unparsed (a stand-in that
    /// refuses whatever it is given).
    pub raw: bool,
}

impl Cmd {
    /// A command with only a description; the other fields are set with `..Cmd::LEAF`.
    pub const LEAF: Cmd = Cmd {
        name: "",
        about: "",
        opts: &[],
        pos: &[],
        subs: &[],
        version: false,
        raw: false,
    };
}

/// An option: `--long` (and `-s`), a flag or with a value.
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name in the help (`<PATH>`); `None`: a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
    /// Used when the option is not given, and shown in the help.
    pub default: Option<&'static str>,
    /// The only values accepted (empty: any).
    pub choices: &'static [&'static str],
    /// May be given more than once; each `,`-separated part is a value when `split`.
    pub repeat: bool,
    pub split: bool,
    /// Another option's long name that cannot be given together with this one.
    pub conflicts: Option<&'static str>,
}

impl Opt {
    /// A flag; the other fields are set with `..Opt::FLAG`.
    pub const FLAG: Opt = Opt {
        long: "",
        short: None,
        value: None,
        help: "",
        default: None,
        choices: &[],
        repeat: false,
        split: false,
        conflicts: None,
    };
}

/// A positional argument.
pub struct Pos {
    pub name: &'static str,
    pub help: &'static str,
    pub required: bool,
    /// Takes every remaining positional.
    pub many: bool,
    /// The only values accepted, each with its description (empty: any).
    pub choices: &'static [(&'static str, &'static str)],
}

impl Pos {
    /// An optional positional; the other fields are set with `..Pos::OPTIONAL`.
    pub const OPTIONAL: Pos = Pos {
        name: "",
        help: "",
        required: false,
        many: false,
        choices: &[],
    };
}

/// What the command line asks for.
pub enum Outcome {
    /// Run this command.
    Run(Parsed),
    /// Print this text on standard output and exit 0 (`--help`, `--version`).
    Print(String),
    /// A usage error (or a command with subcommands given none): print on standard
    /// error, exit 2.
    Usage(String),
}

/// A parsed command line: the command's path and what was given.
pub struct Parsed {
    /// The chosen command's names from the program down, e.g. `["cni", "serve"]`.
    pub path: Vec<&'static str>,
    root: &'static Cmd,
    cmd: &'static Cmd,
    /// Per option of `cmd.opts`, in order: the values given (a flag: one empty value).
    values: Vec<Vec<OsString>>,
    pos: Vec<OsString>,
}

/// A usage error, with the command it is about.
struct Error {
    msg: String,
    cmd: &'static Cmd,
    path: Vec<&'static str>,
}

/// Parse the arguments after the program name against `root`.
pub fn parse(root: &'static Cmd, args: impl IntoIterator<Item = OsString>) -> Outcome {
    let args: Vec<OsString> = args.into_iter().collect();
    match parse_in(root, root, Vec::new(), &args) {
        Ok(o) => o,
        Err(e) => Outcome::Usage(error_text(root, &e)),
    }
}

fn error_text(root: &Cmd, e: &Error) -> String {
    let full = full_name(root, &e.path);
    format!(
        "{}: {}\n\nUsage: {}\n\nFor more information, run `{full} --help`.\n",
        root.name,
        e.msg,
        usage(root, e.cmd, &e.path),
    )
}

fn full_name(root: &Cmd, path: &[&str]) -> String {
    let mut s = root.name.to_string();
    for p in path {
        s.push(' ');
        s.push_str(p);
    }
    s
}

/// One command level: its options and positionals, or a subcommand's.
fn parse_in(
    root: &'static Cmd,
    cmd: &'static Cmd,
    path: Vec<&'static str>,
    args: &[OsString],
) -> Result<Outcome, Error> {
    let err = |msg: String| Error {
        msg,
        cmd,
        path: path.clone(),
    };
    let mut values: Vec<Vec<OsString>> = cmd.opts.iter().map(|_| Vec::new()).collect();
    let mut pos: Vec<OsString> = Vec::new();
    let mut options_ended = cmd.raw;
    let mut i = 0;
    if cmd.raw && matches!(args.first().and_then(|a| a.to_str()), Some("-h" | "--help")) {
        return Ok(Outcome::Print(help(root, cmd, &path)));
    }
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if !options_ended && arg == "--" {
            options_ended = true;
            continue;
        }
        if options_ended || !is_option(arg) {
            if !cmd.subs.is_empty() {
                return sub(root, cmd, path, arg, &args[i..]);
            }
            pos.push(arg.clone());
            if pos.len() > cmd.pos.len() && !cmd.pos.last().is_some_and(|p| p.many) {
                return Err(err(unexpected(cmd, arg)));
            }
            continue;
        }
        let (name, inline) = split_option(arg);
        let name = name.as_str();
        let text = arg.to_string_lossy();
        let builtin =
            matches!(name, "--help" | "-h") || cmd.version && matches!(name, "--version" | "-V");
        if builtin && inline.is_some() {
            return Err(err(format!("{name} takes no value (given '{text}')")));
        }
        match name {
            "--help" | "-h" if inline.is_none() => {
                return Ok(Outcome::Print(help(root, cmd, &path)))
            }
            "--version" | "-V" if cmd.version && inline.is_none() => {
                return Ok(Outcome::Print(format!(
                    "{} {}\n",
                    cmd.name,
                    env!("CARGO_PKG_VERSION")
                )))
            }
            _ => {}
        }
        let Some(k) = find_option(cmd, name) else {
            let msg = format!("unknown option '{name}' for `{}`", full_name(root, &path));
            return Err(err(msg));
        };
        let opt = &cmd.opts[k];
        let value = match (opt.value, inline) {
            (None, None) => OsString::new(),
            (None, Some(_)) => {
                return Err(err(format!(
                    "{} takes no value (given '{text}')",
                    label(opt)
                )))
            }
            (Some(_), Some(v)) => v,
            (Some(_), None) => match args.get(i) {
                Some(v) if !is_option(v) => {
                    i += 1;
                    v.clone()
                }
                next => return Err(err(missing_value(opt, next))),
            },
        };
        if opt.value.is_some() && value.is_empty() {
            return Err(err(missing_value(opt, None)));
        }
        if !values[k].is_empty() && !opt.repeat {
            return Err(err(format!("{} is given more than once", label(opt))));
        }
        for v in split_values(opt, value) {
            check_choice(opt.choices, &v, &label(opt)).map_err(&err)?;
            values[k].push(v);
        }
    }
    finish(root, cmd, path, values, pos)
}

/// The checks that need the whole command line, then the result.
fn finish(
    root: &'static Cmd,
    cmd: &'static Cmd,
    path: Vec<&'static str>,
    values: Vec<Vec<OsString>>,
    pos: Vec<OsString>,
) -> Result<Outcome, Error> {
    let err = |msg: String| Error {
        msg,
        cmd,
        path: path.clone(),
    };
    if !cmd.subs.is_empty() {
        // As a bare `git`: the help, but as an error (a command was expected).
        return Ok(Outcome::Usage(help(root, cmd, &path)));
    }
    for (k, opt) in cmd.opts.iter().enumerate() {
        let Some(other) = opt.conflicts else { continue };
        let j = find_option(cmd, &format!("--{other}")).unwrap_or(k);
        if j != k && !values[k].is_empty() && !values[j].is_empty() {
            let msg = format!("--{} cannot be used with --{other}", opt.long);
            return Err(err(msg));
        }
    }
    for (p, spec) in cmd.pos.iter().enumerate() {
        match pos.get(p) {
            None if spec.required => {
                let mut msg = format!("missing <{}> ({})", spec.name, spec.help);
                if !spec.choices.is_empty() {
                    msg = format!("missing <{}>: {}", spec.name, one_of(spec.choices));
                }
                return Err(err(msg));
            }
            None => {}
            Some(v) => {
                let name = format!("<{}>", spec.name);
                if v.is_empty() {
                    return Err(err(format!("{name} cannot be empty")));
                }
                let choices: Vec<&str> = spec.choices.iter().map(|c| c.0).collect();
                check_choice(&choices, v, &name).map_err(&err)?;
            }
        }
    }
    Ok(Outcome::Run(Parsed {
        path,
        root,
        cmd,
        values,
        pos,
    }))
}

/// `netbond cni serve ...`: the rest goes to the subcommand; `help [COMMAND]...` prints
/// a command's help.
fn sub(
    root: &'static Cmd,
    cmd: &'static Cmd,
    mut path: Vec<&'static str>,
    name: &OsStr,
    rest: &[OsString],
) -> Result<Outcome, Error> {
    let text = name.to_str().unwrap_or("");
    if text == "help" {
        return help_for(root, cmd, path, rest);
    }
    let Some(next) = cmd.subs.iter().find(|s| s.name == text) else {
        return Err(Error {
            msg: unknown_command(root, cmd, &path, name),
            cmd,
            path,
        });
    };
    path.push(next.name);
    parse_in(root, next, path, rest)
}

/// `help`, `help run`, `help cni serve`, `help help`.
fn help_for(
    root: &'static Cmd,
    mut cmd: &'static Cmd,
    mut path: Vec<&'static str>,
    names: &[OsString],
) -> Result<Outcome, Error> {
    for (n, name) in names.iter().enumerate() {
        if name == "help" && n + 1 == names.len() {
            let mut s = full_name(root, &path);
            s.push_str(" help [COMMAND]...");
            return Ok(Outcome::Print(format!(
                "{HELP_ABOUT}\n\nUsage: {s}\n\nArguments:\n  [COMMAND]...  Print help for the subcommand(s)\n"
            )));
        }
        if cmd.subs.is_empty() {
            return Err(Error {
                msg: format!(
                    "`{}` has no subcommands (given '{}')",
                    full_name(root, &path),
                    name.to_string_lossy()
                ),
                cmd,
                path,
            });
        }
        match cmd.subs.iter().find(|s| name == s.name) {
            Some(next) => {
                cmd = next;
                path.push(next.name);
            }
            None => {
                return Err(Error {
                    msg: unknown_command(root, cmd, &path, name),
                    cmd,
                    path,
                })
            }
        }
    }
    Ok(Outcome::Print(help(root, cmd, &path)))
}

const HELP_ABOUT: &str = "Print this message or the help of the given subcommand(s)";

fn unknown_command(root: &Cmd, cmd: &Cmd, path: &[&str], name: &OsStr) -> String {
    let names: Vec<&str> = cmd.subs.iter().map(|s| s.name).collect();
    format!(
        "unknown command '{}' for `{}`; the commands are: {}, help",
        name.to_string_lossy(),
        full_name(root, path),
        names.join(", ")
    )
}

fn unexpected(cmd: &Cmd, arg: &OsStr) -> String {
    let takes = match cmd.pos {
        [] => "no arguments, only options".to_string(),
        p => {
            let names: Vec<String> = p.iter().map(pos_usage).collect();
            format!("only {}", names.join(" "))
        }
    };
    format!(
        "unexpected argument '{}' (this command takes {takes})",
        arg.to_string_lossy()
    )
}

fn missing_value(opt: &Opt, next: Option<&OsString>) -> String {
    let mut msg = format!("{} needs a value", label(opt));
    if let Some(n) = next {
        let n = n.to_string_lossy();
        let _ = write!(
            msg,
            " (got the option '{n}'; write --{}={n} for a value that starts with '-')",
            opt.long
        );
    }
    msg
}

/// `--name <VALUE>` as the help shows it.
fn label(opt: &Opt) -> String {
    match opt.value {
        Some(v) => format!("--{} <{v}>", opt.long),
        None => format!("--{}", opt.long),
    }
}

fn check_choice(choices: &[&str], value: &OsStr, name: &str) -> Result<(), String> {
    if choices.is_empty() || choices.iter().any(|c| value == *c) {
        return Ok(());
    }
    Err(format!(
        "invalid value '{}' for {name}: expected one of {}",
        value.to_string_lossy(),
        choices.join(", ")
    ))
}

fn one_of(choices: &[(&str, &str)]) -> String {
    let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
    format!("expected one of {}", names.join(", "))
}

/// `--name=value` or `-ovalue`/`-o=value` split into the option and its value (the
/// value as given, not necessarily UTF-8).
fn split_option(arg: &OsStr) -> (String, Option<OsString>) {
    let bytes = arg.as_bytes();
    let (name, value) = if bytes.starts_with(b"--") {
        match bytes.iter().position(|&b| b == b'=') {
            Some(eq) => (&bytes[..eq], Some(&bytes[eq + 1..])),
            None => (bytes, None),
        }
    } else {
        // `-` and one character (a UTF-8 sequence's length from its first byte).
        let len = 1 + bytes.get(1).map_or(0, |&b| utf8_len(b));
        let (name, rest) = bytes.split_at(len.min(bytes.len()));
        match rest {
            [] => (name, None),
            [b'=', v @ ..] | v => (name, Some(v)),
        }
    };
    let name = String::from_utf8_lossy(name).into_owned();
    (name, value.map(|v| OsStr::from_bytes(v).to_os_string()))
}

fn utf8_len(first: u8) -> usize {
    match first.leading_ones() {
        2 => 2,
        3 => 3,
        4 => 4,
        _ => 1,
    }
}

fn find_option(cmd: &Cmd, name: &str) -> Option<usize> {
    cmd.opts.iter().position(|o| {
        name.strip_prefix("--") == Some(o.long)
            || o.short
                .is_some_and(|s| name.len() == 1 + s.len_utf8() && name.ends_with(s))
    })
}

/// A separate argument that looks like an option is never an option's value.
fn is_option(v: &OsStr) -> bool {
    v.as_bytes().first() == Some(&b'-') && v.len() > 1
}

fn split_values(opt: &Opt, value: OsString) -> Vec<OsString> {
    match value.to_str() {
        Some(s) if opt.split => s.split(',').map(OsString::from).collect(),
        _ => vec![value],
    }
}

impl Parsed {
    fn index(&self, long: &str) -> usize {
        let k = self.cmd.opts.iter().position(|o| o.long == long);
        // Only the table's own names are asked for (the unit tests parse every command).
        debug_assert!(k.is_some(), "no option --{long} in `{}`", self.cmd.name);
        k.unwrap_or(usize::MAX)
    }

    /// Whether a flag was given.
    pub fn flag(&self, long: &str) -> bool {
        self.values
            .get(self.index(long))
            .is_some_and(|v| !v.is_empty())
    }

    /// An option's value (the last one given), else its default.
    pub fn value(&self, long: &str) -> Option<OsString> {
        let k = self.index(long);
        match self.values.get(k).and_then(|v| v.last()) {
            Some(v) => Some(v.clone()),
            None => self.cmd.opts.get(k)?.default.map(OsString::from),
        }
    }

    /// Every value given for a repeatable option.
    pub fn values(&self, long: &str) -> Vec<OsString> {
        self.values
            .get(self.index(long))
            .cloned()
            .unwrap_or_default()
    }

    /// The `n`th positional.
    pub fn pos(&self, n: usize) -> Option<OsString> {
        self.pos.get(n).cloned()
    }

    /// A value that must be text (an interface name, a level).
    pub fn text(&self, v: Option<OsString>, name: &str) -> Result<Option<String>, String> {
        v.map(|v| {
            v.into_string()
                .map_err(|v| format!("{name}: '{}' is not valid UTF-8", v.to_string_lossy()))
        })
        .transpose()
    }

    /// A usage error found while converting the values (a number that is not one),
    /// in the same shape as the parser's own.
    pub fn error(&self, msg: &str) -> String {
        let e = Error {
            msg: msg.to_string(),
            cmd: self.cmd,
            path: self.path.clone(),
        };
        error_text(self.root, &e)
    }
}

/// `netbond status [OPTIONS] [IFACE]`.
fn usage(root: &Cmd, cmd: &Cmd, path: &[&str]) -> String {
    let mut s = full_name(root, path);
    if !cmd.opts.is_empty() {
        s.push_str(" [OPTIONS]");
    }
    if !cmd.subs.is_empty() {
        s.push_str(" <COMMAND>");
    }
    for p in cmd.pos {
        s.push(' ');
        s.push_str(&pos_usage(p));
    }
    s
}

fn pos_usage(p: &Pos) -> String {
    match (p.required, p.many) {
        (true, false) => format!("<{}>", p.name),
        (false, false) => format!("[{}]", p.name),
        (true, true) => format!("<{}>...", p.name),
        (false, true) => format!("[{}]...", p.name),
    }
}

/// The help text: description, usage, commands, arguments, options.
pub fn help(root: &Cmd, cmd: &Cmd, path: &[&str]) -> String {
    let mut s = format!("{}\n\nUsage: {}\n", cmd.about, usage(root, cmd, path));
    if !cmd.subs.is_empty() {
        let mut rows: Vec<(String, String)> = cmd
            .subs
            .iter()
            .map(|c| (c.name.to_string(), c.about.to_string()))
            .collect();
        rows.push(("help".into(), HELP_ABOUT.into()));
        section(&mut s, "Commands", rows);
    }
    let rows = cmd.pos.iter().map(|p| {
        let mut h = p.help.to_string();
        let width = p.choices.iter().map(|c| c.0.len()).max().unwrap_or(0) + 1;
        if p.choices.iter().any(|c| !c.1.is_empty()) {
            // One line each, under the description (the section indents them).
            for (name, about) in p.choices {
                let _ = write!(h, "\n- {:width$} {about}", format!("{name}:"));
            }
        } else if !p.choices.is_empty() {
            let names: Vec<&str> = p.choices.iter().map(|c| c.0).collect();
            let _ = write!(h, " [possible values: {}]", names.join(", "));
        }
        (pos_usage(p), h)
    });
    section(&mut s, "Arguments", rows.collect());
    let mut rows: Vec<(String, String)> = cmd.opts.iter().map(option_row).collect();
    rows.push(("-h, --help".into(), "Print help".into()));
    if cmd.version {
        rows.push(("-V, --version".into(), "Print version".into()));
    }
    section(&mut s, "Options", rows);
    s
}

fn option_row(o: &Opt) -> (String, String) {
    let mut left = match o.short {
        Some(c) => format!("-{c}, --{}", o.long),
        None => format!("    --{}", o.long),
    };
    if let Some(v) = o.value {
        let _ = write!(left, " <{v}>");
    }
    let mut h = o.help.to_string();
    if let Some(d) = o.default {
        let _ = write!(h, " [default: {d}]");
    }
    if !o.choices.is_empty() {
        let _ = write!(h, " [possible values: {}]", o.choices.join(", "));
    }
    (left, h)
}

/// `Title:` and two aligned columns (the man page generator reads `Commands:`).
fn section(s: &mut String, title: &str, rows: Vec<(String, String)>) {
    if rows.is_empty() {
        return;
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let _ = write!(s, "\n{title}:\n");
    for (left, right) in rows {
        let mut lines = right.split('\n');
        let _ = writeln!(s, "  {left:width$}  {}", lines.next().unwrap_or(""));
        for line in lines {
            let _ = writeln!(s, "  {:width$}  {line}", "");
        }
    }
}
