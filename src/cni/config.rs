//! The network configuration as a CNI IPAM plugin receives it on stdin, checked key by
//! key so that a mistake is reported as a CNI error naming the key.

use super::{code, CniError};
use serde_json::Value;
use std::path::PathBuf;

/// The CNI versions this plugin speaks.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// `ipam.ipv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ipv6Mode {
    /// IPv4 only.
    None,
    /// Stateful DHCPv6 (IA_NA) beside DHCPv4.
    Dhcpv6,
    /// As `Dhcpv6`; the on-link prefix and default route come from Router
    /// Advertisements, which the container's kernel processes itself.
    Dhcpv6Ra,
}

/// `ipam.clientId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientIdMode {
    /// RFC 4361: IAID + the host DUID.
    Rfc4361,
    /// The stock `dhcp` plugin's `containerID/network/ifname` string.
    Legacy,
}

/// `ipam.broadcast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Broadcast {
    /// On when the interface shares its MAC with others (ipvlan).
    Auto,
    On,
    Off,
}

/// The `ipam` section, netbond's keys and the stock `dhcp` plugin's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipam {
    pub socket: Option<PathBuf>,
    pub ipv6: Ipv6Mode,
    pub client_id: ClientIdMode,
    /// CNI_ARGS names whose values, joined, identify the attachment instead of the
    /// container ID (so a recreated pod keeps its address).
    pub identity: Vec<String>,
    pub broadcast: Broadcast,
    /// Option 12 from `provide` (a value, or a CNI_ARGS name with `fromArg`).
    pub hostname: Option<HostnameFrom>,
    /// How long ADD waits for the leases, seconds.
    pub timeout: u64,
    /// Option codes from the stock plugin's `request` list, added to the parameter
    /// request list (option 55) after the ones netbond always asks for.
    pub request: Vec<u8>,
}

/// Where the hostname option comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostnameFrom {
    Value(String),
    Arg(String),
}

/// A valid attachment from `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub container_id: String,
    pub ifname: String,
}

/// The parts of the network configuration netbond uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub ipam: Ipam,
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

fn bad(key: &str, what: impl std::fmt::Display) -> CniError {
    CniError::new(
        code::INVALID_CONFIG,
        format!("invalid network configuration: {key}: {what}"),
        "fix the key in the CNI network configuration (see netbond's README, Containers)",
    )
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, CniError> {
    v.as_str().ok_or_else(|| bad(key, "must be a string"))
}

impl NetConf {
    /// Parse stdin. `needs_name` is false for VERSION, which may get anything.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                code::DECODE,
                format!("the network configuration is not JSON: {e}"),
                "the runtime must pass the network configuration on stdin",
            )
        })?;
        Self::from_value(&v)
    }

    /// Parse an already decoded configuration.
    pub fn from_value(v: &Value) -> Result<NetConf, CniError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("(top level)", "must be a JSON object"))?;
        let cni_version = match obj.get("cniVersion") {
            Some(x) => str_of(x, "cniVersion")?.to_string(),
            None => return Err(bad("cniVersion", "missing")),
        };
        if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {cni_version} is not supported"),
                format!("netbond supports {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        let name = match obj.get("name") {
            Some(x) => str_of(x, "name")?.to_string(),
            None => return Err(bad("name", "missing")),
        };
        if name.is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        let ipam = Ipam::from_value(obj.get("ipam").ok_or_else(|| bad("ipam", "missing"))?)?;
        let valid_attachments = match obj.get("cni.dev/valid-attachments") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, x) in a.iter().enumerate() {
                    let key = format!("cni.dev/valid-attachments[{i}]");
                    let c = x
                        .get("containerID")
                        .ok_or_else(|| bad(&key, "has no containerID"))?;
                    let f = x.get("ifname").ok_or_else(|| bad(&key, "has no ifname"))?;
                    out.push(ValidAttachment {
                        container_id: str_of(c, &format!("{key}.containerID"))?.to_string(),
                        ifname: str_of(f, &format!("{key}.ifname"))?.to_string(),
                    });
                }
                Some(out)
            }
            Some(_) => return Err(bad("cni.dev/valid-attachments", "must be a list")),
        };
        Ok(NetConf {
            cni_version,
            name,
            ipam,
            valid_attachments,
        })
    }
}

impl Ipam {
    fn from_value(v: &Value) -> Result<Ipam, CniError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("ipam", "must be an object"))?;
        let mut ipam = Ipam {
            socket: None,
            ipv6: Ipv6Mode::None,
            client_id: ClientIdMode::Rfc4361,
            identity: Vec::new(),
            broadcast: Broadcast::Auto,
            hostname: None,
            timeout: 30,
            request: Vec::new(),
        };
        for (k, x) in obj {
            let key = format!("ipam.{k}");
            match k.as_str() {
                "type" => {}
                "daemonSocketPath" => ipam.socket = Some(PathBuf::from(str_of(x, &key)?)),
                "ipv6" => {
                    ipam.ipv6 = match str_of(x, &key)? {
                        "none" => Ipv6Mode::None,
                        "dhcpv6" => Ipv6Mode::Dhcpv6,
                        "dhcpv6+ra" => Ipv6Mode::Dhcpv6Ra,
                        o => return Err(bad(&key, format!("{o:?} is not none, dhcpv6 or dhcpv6+ra"))),
                    }
                }
                "clientId" => {
                    ipam.client_id = match str_of(x, &key)? {
                        "rfc4361" => ClientIdMode::Rfc4361,
                        "legacy" => ClientIdMode::Legacy,
                        o => return Err(bad(&key, format!("{o:?} is not rfc4361 or legacy"))),
                    }
                }
                "identity" => {
                    let a = x
                        .as_array()
                        .ok_or_else(|| bad(&key, "must be a list of CNI_ARGS names"))?;
                    for (i, n) in a.iter().enumerate() {
                        let n = str_of(n, &format!("{key}[{i}]"))?;
                        if n.is_empty() || n.contains(['=', ';']) {
                            return Err(bad(&format!("{key}[{i}]"), "not a CNI_ARGS name"));
                        }
                        ipam.identity.push(n.to_string());
                    }
                }
                "broadcast" => {
                    ipam.broadcast = match x {
                        Value::Bool(true) => Broadcast::On,
                        Value::Bool(false) => Broadcast::Off,
                        Value::String(s) if s == "auto" => Broadcast::Auto,
                        _ => return Err(bad(&key, "must be true, false or \"auto\"")),
                    }
                }
                "timeout" => {
                    ipam.timeout = match x {
                        Value::Number(n) => n.as_u64().ok_or_else(|| bad(&key, "must be whole seconds"))?,
                        // The stock plugin's Go duration form, seconds only ("30s").
                        Value::String(s) => s
                            .strip_suffix('s')
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(|| bad(&key, "must be seconds, like 30 or \"30s\""))?,
                        _ => return Err(bad(&key, "must be seconds")),
                    };
                    if !(1..=600).contains(&ipam.timeout) {
                        return Err(bad(&key, "must be 1..600 seconds"));
                    }
                }
                // The stock plugin's option lists. `request` adds options to the parameter
                // request list; `provide` may set the host name.
                "request" => ipam.read_request(x, &key)?,
                "provide" => ipam.read_provide(x, &key)?,
                other => {
                    return Err(CniError::new(
                        code::UNSUPPORTED_FIELD,
                        format!("invalid network configuration: ipam.{other}: unknown key"),
                        "netbond's keys: daemonSocketPath, ipv6, clientId, identity, broadcast, timeout, request, provide",
                    ))
                }
            }
        }
        Ok(ipam)
    }

    /// `ipam.request`: option names or codes for the parameter request list.
    fn read_request(&mut self, x: &Value, key: &str) -> Result<(), CniError> {
        let a = x.as_array().ok_or_else(|| bad(key, "must be a list"))?;
        for (i, r) in a.iter().enumerate() {
            let rk = format!("{key}[{i}]");
            let o = r.as_object().ok_or_else(|| bad(&rk, "must be an object"))?;
            for (ok, ov) in o {
                match ok.as_str() {
                    "option" => {
                        let ok = format!("{rk}.option");
                        let code = request_code(str_of(ov, &ok)?, &ok)?;
                        if !self.request.contains(&code) {
                            self.request.push(code);
                        }
                    }
                    "skipDefault" => {
                        let sk = format!("{rk}.skipDefault");
                        // The stock plugin then leaves out routers and subnet
                        // mask; netbond needs both for the lease and the
                        // result, so it cannot honour `true`.
                        if ov
                            .as_bool()
                            .ok_or_else(|| bad(&sk, "must be true or false"))?
                        {
                            return Err(CniError::new(
                                code::UNSUPPORTED_FIELD,
                                format!("{sk}: true is not supported"),
                                "netbond always requests the options a lease and the CNI result need (subnet mask, routers, DNS, routes); remove skipDefault or set it to false",
                            ));
                        }
                    }
                    other => return Err(bad(&format!("{rk}.{other}"), "unknown key")),
                }
            }
        }
        Ok(())
    }

    /// `ipam.provide`: only the host name, as a value or from a CNI_ARGS name.
    fn read_provide(&mut self, x: &Value, key: &str) -> Result<(), CniError> {
        let a = x.as_array().ok_or_else(|| bad(key, "must be a list"))?;
        for (i, p) in a.iter().enumerate() {
            let pk = format!("{key}[{i}]");
            let o = p.as_object().ok_or_else(|| bad(&pk, "must be an object"))?;
            let opt = o
                .get("option")
                .ok_or_else(|| bad(&format!("{pk}.option"), "missing"))?;
            let opt = str_of(opt, &format!("{pk}.option"))?;
            if !matches!(opt, "host-name" | "hostname" | "12") {
                return Err(CniError::new(
                    code::UNSUPPORTED_FIELD,
                    format!("{pk}.option: {opt:?} cannot be provided by netbond"),
                    "netbond provides only host-name (option 12)",
                ));
            }
            let value = o
                .get("value")
                .map(|v| str_of(v, &format!("{pk}.value")))
                .transpose()?;
            let arg = o
                .get("fromArg")
                .map(|v| str_of(v, &format!("{pk}.fromArg")))
                .transpose()?;
            for k2 in o.keys() {
                if !matches!(k2.as_str(), "option" | "value" | "fromArg") {
                    return Err(bad(&format!("{pk}.{k2}"), "unknown key"));
                }
            }
            self.hostname = match (value, arg) {
                (_, Some(a)) => Some(HostnameFrom::Arg(a.to_string())),
                (Some(v), None) => Some(HostnameFrom::Value(v.to_string())),
                (None, None) => {
                    return Err(bad(&pk, "needs value or fromArg"));
                }
            };
        }
        Ok(())
    }
}

/// The option names the stock plugin's `request` list commonly uses (the ISC
/// dhcp-options(5) names), with their codes.
const OPTION_NAMES: &[(&str, u8)] = &[
    ("subnet-mask", 1),
    ("time-offset", 2),
    ("routers", 3),
    ("router", 3),
    ("domain-name-servers", 6),
    ("host-name", 12),
    ("hostname", 12),
    ("domain-name", 15),
    ("interface-mtu", 26),
    ("broadcast-address", 28),
    ("static-routes", 33),
    ("ntp-servers", 42),
    ("vendor-encapsulated-options", 43),
    ("netbios-name-servers", 44),
    ("tftp-server-name", 66),
    ("bootfile-name", 67),
    ("domain-search", 119),
    ("classless-static-routes", 121),
    ("classless-static-route", 121),
];

/// A `request` option (a name from [`OPTION_NAMES`] or a number) as an option code.
/// Codes that are not data a server can be asked for (pad, end, and the message
/// control options 50-61 that the client itself sets) are refused.
fn request_code(v: &str, key: &str) -> Result<u8, CniError> {
    let code = match v.trim().parse::<u8>() {
        Ok(n) => n,
        Err(_) => OPTION_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(v.trim()))
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                CniError::new(
                    code::UNSUPPORTED_FIELD,
                    format!("{key}: unknown DHCPv4 option {v:?}"),
                    "use an option number (1-254) or one of: subnet-mask, routers, domain-name-servers, host-name, domain-name, interface-mtu, broadcast-address, static-routes, ntp-servers, domain-search, classless-static-routes",
                )
            })?,
    };
    if code == 0 || code == 255 || (50..=61).contains(&code) {
        return Err(CniError::new(
            code::UNSUPPORTED_FIELD,
            format!("{key}: option {code} cannot be requested"),
            "options 0, 255 and 50-61 control the DHCP exchange itself; request data options",
        ));
    }
    Ok(code)
}

/// CNI_ARGS (`K=V;K=V`) as pairs; a malformed element is an error naming it.
pub fn parse_args(args: &str) -> Result<Vec<(String, String)>, CniError> {
    let mut out = Vec::new();
    for part in args.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("CNI_ARGS: {part:?} is not KEY=VALUE"),
                "CNI_ARGS is a ;-separated list of KEY=VALUE",
            )
        })?;
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// The value of one CNI_ARGS name.
pub fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NetConf, CniError> {
        NetConf::parse(s.as_bytes())
    }

    #[test]
    fn stock_dhcp_config_moves_over_by_changing_the_type() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"n1","type":"macvlan","master":"eth0",
               "ipam":{"type":"netbond","daemonSocketPath":"/run/x.sock",
                       "request":[{"skipDefault":false,"option":"classless-static-routes"}],
                       "provide":[{"option":"host-name","fromArg":"K8S_POD_NAME"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.name, "n1");
        assert_eq!(c.ipam.socket, Some(PathBuf::from("/run/x.sock")));
        assert_eq!(
            c.ipam.hostname,
            Some(HostnameFrom::Arg("K8S_POD_NAME".into()))
        );
        assert_eq!(c.ipam.ipv6, Ipv6Mode::None);
        assert_eq!(c.ipam.client_id, ClientIdMode::Rfc4361);
        assert_eq!(c.ipam.request, vec![121]);
    }

    #[test]
    fn request_names_and_numbers_become_option_codes() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"n","ipam":{"request":[
               {"option":"static-routes"},{"option":"ntp-servers"},{"option":"252"},
               {"option":"Domain-Search","skipDefault":false},{"option":"33"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.ipam.request, vec![33, 42, 252, 119]);
        for (opt, needle) in [
            (r#"{"option":"flux-capacitor"}"#, "ipam.request[0].option"),
            (r#"{"option":"53"}"#, "ipam.request[0].option"),
            (r#"{"option":"0"}"#, "ipam.request[0].option"),
            (r#"{"option":"256"}"#, "ipam.request[0].option"),
            (r#"{"skipDefault":true}"#, "ipam.request[0].skipDefault"),
        ] {
            let text =
                format!(r#"{{"cniVersion":"1.0.0","name":"n","ipam":{{"request":[{opt}]}}}}"#);
            let e = parse(&text).unwrap_err();
            assert!(e.msg.contains(needle), "{text}: {e}");
            assert_eq!(e.code, code::UNSUPPORTED_FIELD, "{text}: {e}");
        }
    }

    #[test]
    fn netbond_keys() {
        let c = parse(
            r#"{"cniVersion":"1.1.0","name":"n","ipam":{"type":"netbond","ipv6":"dhcpv6+ra",
               "clientId":"legacy","identity":["K8S_POD_NAMESPACE","K8S_POD_NAME"],
               "broadcast":true,"timeout":"12s"},
               "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.ipam.ipv6, Ipv6Mode::Dhcpv6Ra);
        assert_eq!(c.ipam.client_id, ClientIdMode::Legacy);
        assert_eq!(c.ipam.identity.len(), 2);
        assert_eq!(c.ipam.broadcast, Broadcast::On);
        assert_eq!(c.ipam.timeout, 12);
        assert_eq!(c.valid_attachments.unwrap()[0].ifname, "eth0");
    }

    #[test]
    fn bad_keys_are_named() {
        let cases = [
            (
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ipv6":"yes"}}"#,
                "ipam.ipv6",
                7,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"clientId":1}}"#,
                "ipam.clientId",
                7,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"colour":"red"}}"#,
                "ipam.colour",
                2,
            ),
            (r#"{"cniVersion":"1.0.0","ipam":{}}"#, "name", 7),
            (r#"{"cniVersion":"9.9.9","name":"n","ipam":{}}"#, "9.9.9", 1),
            (
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"provide":[{"option":"ntp-servers","value":"x"}]}}"#,
                "ipam.provide[0].option",
                2,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"timeout":0}}"#,
                "ipam.timeout",
                7,
            ),
            ("not json", "not JSON", 6),
        ];
        for (text, needle, code) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.msg.contains(needle), "{text}: {e}");
            assert_eq!(e.code, code, "{text}: {e}");
        }
    }

    #[test]
    fn cni_args() {
        let a = parse_args("IgnoreUnknown=1;K8S_POD_NAME=web-0").unwrap();
        assert_eq!(arg(&a, "K8S_POD_NAME"), Some("web-0"));
        assert_eq!(parse_args("oops").unwrap_err().code, code::INVALID_ENV);
    }
}
