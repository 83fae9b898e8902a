//! The option keys of `[dhcp4]` and `[dhcp6]` that carry what goes on the wire as it is:
//! the classes, the extra options to send and to request. Checked at load (an error
//! names the key), turned here into what the engines take.

use super::Config;
use serde::{Deserialize, Serialize};

/// An extra option's value: colon-separated hex octets (`"de:ad:be:ef"`), or text sent
/// as its UTF-8 octets (`{ text = "..." }`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(
    untagged,
    expecting = "colon-separated hex octets (\"de:ad:be:ef\") or { text = \"...\" }"
)]
pub enum OptionValue {
    /// Colon-separated hex octets.
    Hex(String),
    /// Text, sent as its UTF-8 octets.
    Text(TextValue),
}

/// `{ text = "..." }`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextValue {
    /// The text.
    pub text: String,
}

impl OptionValue {
    fn octets(&self, code: u32) -> Result<Vec<u8>, String> {
        match self {
            OptionValue::Hex(h) => netbond_proto::duid::parse_hex_octets(h).map_err(|_| {
                format!(
                    "option {code}: {h:?} is not colon-separated hex octets (for text write {{ text = \"...\" }})"
                )
            }),
            OptionValue::Text(t) => Ok(t.text.as_bytes().to_vec()),
        }
    }
}

/// DHCPv4 codes the client sends itself (message type, client id, requested address,
/// server id, parameter list, lease time, host name, FQDN, vendor and user class,
/// maximum size, rapid commit) and the pad/end markers.
const OWN4: [u32; 14] = [0, 12, 50, 51, 53, 54, 55, 57, 60, 61, 77, 80, 81, 255];
/// DHCPv6 codes the client sends itself or that only servers and relays send (client
/// and server id, IA_NA, IA_TA, IAADDR, ORO, elapsed time, relay message,
/// authentication, unicast, status code, rapid commit, user and vendor class, interface
/// id, reconfigure, IA_PD, IAPREFIX, client FQDN).
const OWN6: [u32; 20] = [
    0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 25, 26, 39,
];
/// The most octets an extra DHCPv6 option may carry (a message must fit one datagram).
const MAX_LEN6: usize = 1024;

/// `send` as (code, octets), checked: a code in `1..=max`, not in `own`, at most
/// `max_len` octets.
fn parse_send(
    send: &std::collections::BTreeMap<String, OptionValue>,
    max: u32,
    own: &[u32],
    max_len: usize,
) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for (k, v) in send {
        let code: u32 = k
            .parse()
            .ok()
            .filter(|c| (1..=max).contains(c))
            .ok_or_else(|| format!("{k:?} is not an option code (1 to {max})"))?;
        if own.contains(&code) {
            return Err(format!(
                "option {code} is sent by netbond itself (use its own key, e.g. hostname, \
                 vendor_class or user_class)"
            ));
        }
        let data = v.octets(code)?;
        if data.len() > max_len {
            return Err(format!("option {code}: at most {max_len} octets"));
        }
        out.push((code, data));
    }
    // The keys are strings: "1234" sorts before "17". Send in code order.
    out.sort_by_key(|(c, _)| *c);
    Ok(out)
}

impl Config {
    /// `[dhcp4] send` as (code, octets). Codes the client sends itself are refused:
    /// they would contradict it.
    pub fn dhcp4_send(&self) -> Result<Vec<(u8, Vec<u8>)>, String> {
        let v = parse_send(&self.dhcp4.send, 254, &OWN4, 255)?;
        Ok(v.into_iter().map(|(c, d)| (c as u8, d)).collect())
    }

    /// `[dhcp6] send` as (code, octets), checked as [`Config::dhcp4_send`].
    pub fn dhcp6_send(&self) -> Result<Vec<(u16, Vec<u8>)>, String> {
        let v = parse_send(&self.dhcp6.send, 65535, &OWN6, MAX_LEN6)?;
        Ok(v.into_iter().map(|(c, d)| (c as u16, d)).collect())
    }

    /// `[dhcp6] vendor_class` with its `vendor_enterprise` (RFC 8415 21.16).
    pub fn dhcp6_vendor_class(&self) -> Option<(u32, Vec<u8>)> {
        let d = &self.dhcp6;
        Some((
            d.vendor_enterprise?,
            d.vendor_class.as_ref()?.as_bytes().to_vec(),
        ))
    }

    /// The checks of the keys above, for [`Config::validate`].
    pub(super) fn validate_options(&self) -> Result<(), (&'static str, &'static str, String)> {
        self.dhcp4_send().map_err(|m| ("dhcp4", "send", m))?;
        self.dhcp6_send().map_err(|m| ("dhcp6", "send", m))?;
        if self.dhcp4.request.iter().any(|&c| c == 0 || c == 255) {
            return Err(("dhcp4", "request", "option codes are 1 to 254".into()));
        }
        if self.dhcp6.request.contains(&0) {
            return Err(("dhcp6", "request", "option codes are 1 to 65535".into()));
        }
        let bytes_1_255 =
            |v: &Option<String>| v.as_ref().is_some_and(|u| u.is_empty() || u.len() > 255);
        for (sec, key, v) in [
            ("dhcp4", "user_class", &self.dhcp4.user_class),
            ("dhcp6", "user_class", &self.dhcp6.user_class),
            ("dhcp4", "vendor_class", &self.dhcp4.vendor_class),
            ("dhcp6", "vendor_class", &self.dhcp6.vendor_class),
        ] {
            if bytes_1_255(v) {
                return Err((sec, key, "must be 1 to 255 bytes".into()));
            }
        }
        match (&self.dhcp6.vendor_class, self.dhcp6.vendor_enterprise) {
            (Some(_), None) => Err((
                "dhcp6",
                "vendor_class",
                "needs vendor_enterprise: the IANA private enterprise number the class \
                 belongs to (RFC 8415 option 16 carries both)"
                    .into(),
            )),
            (None, Some(_)) => Err((
                "dhcp6",
                "vendor_enterprise",
                "is only used with vendor_class; set both or neither".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn err(text: &str) -> String {
        Config::parse(text, None).unwrap_err().message
    }

    #[test]
    fn dhcp6_send_and_vendor_class_are_checked_at_load() {
        let c = Config::parse(
            "[dhcp6]\nsend = { 17 = \"00:00:7e:9a\", 1234 = { text = \"hi\" } }\n\
             vendor_class = \"netbond\"\nvendor_enterprise = 32473\n",
            None,
        )
        .unwrap();
        assert_eq!(
            c.dhcp6_send(),
            Ok(vec![(17, vec![0, 0, 0x7e, 0x9a]), (1234, b"hi".to_vec())])
        );
        assert_eq!(c.dhcp6_vendor_class(), Some((32473, b"netbond".to_vec())));
        for (text, want) in [
            (
                "[dhcp6]\nsend = { 1 = \"01\" }\n",
                "[dhcp6] send: option 1 is sent by netbond",
            ),
            (
                "[dhcp6]\nsend = { 70000 = \"01\" }\n",
                "[dhcp6] send: \"70000\" is not an option code (1 to 65535)",
            ),
            (
                "[dhcp6]\nsend = { 17 = \"zz\" }\n",
                "[dhcp6] send: option 17: \"zz\" is not colon-separated hex",
            ),
            (
                "[dhcp6]\nvendor_class = \"x\"\n",
                "[dhcp6] vendor_class: needs vendor_enterprise",
            ),
            (
                "[dhcp6]\nvendor_enterprise = 1\n",
                "[dhcp6] vendor_enterprise: is only used",
            ),
            (
                "[dhcp6]\nvendor_class = \"\"\nvendor_enterprise = 1\n",
                "[dhcp6] vendor_class: must be 1 to 255",
            ),
            (
                "[dhcp4]\nsend = { 80 = \"01\" }\n",
                "[dhcp4] send: option 80 is sent by netbond",
            ),
            (
                "[dhcp4]\nsend = { 224 = { text = \"x\", y = 1 } }\n",
                "colon-separated hex octets (\"de:ad:be:ef\") or { text",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
        let c = Config::parse("[dhcp4]\nsend = { 224 = { text = \"kiosk\" } }\n", None).unwrap();
        assert_eq!(c.dhcp4_send(), Ok(vec![(224, b"kiosk".to_vec())]));
    }
}
