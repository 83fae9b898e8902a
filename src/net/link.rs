//! The netlink view of network interfaces: lookups, link events, bringing a link up.
//!
//! The daemon keeps the current MAC of its interface (a bond changes it when the active
//! port changes) and must notice the interface vanishing and reappearing. Both come
//! from here: a one-shot lookup at start, then [`link_events`] for the changes.
//!
//! Errors are [`NlError`]s: they name the operation and the interface, and carry the
//! kernel's extended-ack message when it gave one. The kernel only sends that text on
//! sockets with `NETLINK_EXT_ACK` set, so build request connections with [`connect`].

use std::fmt;
use std::io;

use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::proto::Connection;
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, LinkUnspec, MulticastGroup};

/// What netbond needs to know about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Kernel interface index; stable while the interface exists, new if it is recreated.
    pub index: u32,
    /// Interface name (`IFLA_IFNAME`).
    pub name: String,
    /// Current hardware address, if it is a 6-octet (Ethernet-like) one. The DHCP
    /// engines' one MAC source: the daemon routes it to the interface's task, which
    /// hands a change to each engine's `hw_address_changed` (see `daemon/iface.rs`).
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Lower layer up: `IFF_LOWER_UP`, or an operational state of `UP`. Interfaces
    /// without carrier reporting (dummy, some virtual links) report oper state
    /// `UNKNOWN` but do set `IFF_LOWER_UP`, which is why the flag is checked first.
    pub carrier: bool,
    /// Current MTU.
    pub mtu: u32,
    /// Index of the controller (bond/bridge master) this interface is enslaved to.
    pub controller: Option<u32>,
    /// IFF_SLAVE: the interface is a port of some controller (set before
    /// `controller` is reported during enslavement).
    pub is_port: bool,
    /// The link kind (`IFLA_INFO_KIND`: "bond", "veth", ...), when the kernel says.
    pub kind: Option<String>,
    /// Bond settings and state, when this interface is a bond.
    pub bond: Option<BondInfo>,
    /// Port state, when this interface is a bond port.
    pub bond_port: Option<BondPortInfo>,
}

/// What the kernel reports about a bond (the `/proc/net/bonding` header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BondInfo {
    /// Bonding mode number (1 = active-backup).
    pub mode: Option<u8>,
    /// `fail_over_mac`: 0 none, 1 active, 2 follow.
    pub fail_over_mac: Option<u8>,
    /// MII monitoring interval in ms.
    pub miimon: Option<u32>,
    /// Index of the active port.
    pub active_port: Option<u32>,
    /// Index of the configured primary.
    pub primary: Option<u32>,
    /// `primary_reselect`: 0 always, 1 better, 2 failure.
    pub primary_reselect: Option<u8>,
}

/// What the kernel reports about one bond port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BondPortInfo {
    /// True when this port is the active one.
    pub active: bool,
    /// MII status is up.
    pub mii_up: bool,
    /// Link failures counted by the bond.
    pub link_failures: u32,
    /// The port's permanent hardware address.
    pub perm_mac: Option<[u8; 6]>,
}

fn parse_link_info(infos: &[rtnetlink::packet_route::link::LinkInfo], out: &mut LinkInfo) {
    use rtnetlink::packet_route::link::{
        BondPortState, InfoBond, InfoBondPort, InfoData, InfoKind, InfoPortData, LinkInfo as Nl,
        MiiStatus,
    };
    for i in infos {
        match i {
            Nl::Kind(k) => {
                out.kind = Some(match k {
                    InfoKind::Bond => "bond".to_string(),
                    InfoKind::Veth => "veth".to_string(),
                    InfoKind::Bridge => "bridge".to_string(),
                    other => format!("{other:?}").to_lowercase(),
                })
            }
            Nl::Data(InfoData::Bond(items)) => {
                let mut b = BondInfo::default();
                for it in items {
                    match it {
                        InfoBond::Mode(m) => b.mode = Some(u8::from(*m)),
                        InfoBond::FailOverMac(f) => b.fail_over_mac = Some(u8::from(*f)),
                        InfoBond::MiiMon(m) => b.miimon = Some(*m),
                        InfoBond::ActivePort(p) if *p != 0 => b.active_port = Some(*p),
                        InfoBond::Primary(p) if *p != 0 => b.primary = Some(*p),
                        InfoBond::PrimaryReselect(r) => b.primary_reselect = Some(u8::from(*r)),
                        _ => {}
                    }
                }
                out.bond = Some(b);
            }
            Nl::PortData(InfoPortData::BondPort(items)) => {
                let mut p = BondPortInfo::default();
                for it in items {
                    match it {
                        InfoBondPort::BondPortState(BondPortState::Active) => p.active = true,
                        InfoBondPort::MiiStatus(MiiStatus::Up) => p.mii_up = true,
                        InfoBondPort::LinkFailureCount(n) => p.link_failures = *n,
                        InfoBondPort::PermHwaddr(a) => {
                            p.perm_mac = <[u8; 6]>::try_from(a.as_slice()).ok()
                        }
                        _ => {}
                    }
                }
                out.bond_port = Some(p);
            }
            _ => {}
        }
    }
}

/// A change on the link multicast group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// `RTM_NEWLINK`: an interface appeared or changed (flags, MAC, MTU, ...). The
    /// kernel sends the full current state, so the value replaces what was known.
    New(LinkInfo),
    /// `RTM_DELLINK`: the interface is gone. If it comes back it gets a new index.
    Deleted {
        /// Index the interface had.
        index: u32,
        /// Name the interface had.
        name: String,
    },
    /// The socket's receive buffer overflowed (`ENOBUFS`): some events were lost.
    /// Re-read the interface with [`get_link_by_name`].
    Overrun,
}

/// A failed netlink operation, with enough context to act on from a log line alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// What was attempted, e.g. `"add address 192.0.2.10/24"`.
    pub op: String,
    /// The interface concerned (name, or `#index` when the name is not known).
    pub iface: String,
    /// The positive errno the kernel returned, when the failure is a kernel NACK.
    pub errno: Option<i32>,
    /// The kernel's extended-ack text (`NLMSGERR_ATTR_MSG`), when it sent one.
    pub ext_ack: Option<String>,
    /// Other detail (a non-kernel failure: closed connection, unexpected reply).
    pub detail: Option<String>,
}

impl NlError {
    /// Wrap an rtnetlink error with the operation and interface it concerns.
    pub fn from_rtnl(op: impl Into<String>, iface: impl Into<String>, e: rtnetlink::Error) -> Self {
        let mut err = NlError {
            op: op.into(),
            iface: iface.into(),
            errno: None,
            ext_ack: None,
            detail: None,
        };
        match e {
            rtnetlink::Error::NetlinkError(msg) => {
                err.errno = Some(msg.raw_code().abs());
                err.ext_ack = ext_ack_message(&msg.header);
            }
            other => err.detail = Some(other.to_string()),
        }
        err
    }

    /// True when the kernel answered with this errno (e.g. `libc::ENODEV`).
    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} failed", self.op, self.iface)?;
        if let Some(e) = self.errno {
            write!(f, ": {}", io::Error::from_raw_os_error(e))?;
        }
        if let Some(m) = &self.ext_ack {
            write!(f, " (kernel: {m})")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NlError {}

impl From<NlError> for io::Error {
    fn from(e: NlError) -> io::Error {
        match e.errno {
            Some(n) => io::Error::new(io::Error::from_raw_os_error(n).kind(), e),
            None => io::Error::other(e),
        }
    }
}

/// Extract `NLMSGERR_ATTR_MSG` from the payload of an `NLMSG_ERROR` that follows the
/// error code: the original request header, the original request body unless the
/// kernel capped it (`NETLINK_CAP_ACK`), then the ack TLVs.
///
/// netlink-packet-core does not expose the outer header's `NLM_F_CAPPED` flag, so the
/// body is skipped using the echoed request length when it fits, and treated as capped
/// otherwise. [`connect`] never sets `NETLINK_CAP_ACK`, so the first case is the norm.
pub fn ext_ack_message(payload: &[u8]) -> Option<String> {
    const NLMSG_HDRLEN: usize = 16;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    if payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let orig_len = u32::from_ne_bytes(payload[0..4].try_into().ok()?) as usize;
    let uncapped = align4(orig_len.max(NLMSG_HDRLEN));
    let start = if uncapped <= payload.len() {
        uncapped
    } else {
        NLMSG_HDRLEN
    };
    let mut tlvs = &payload[start..];
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let raw = &tlvs[4..len];
            let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
            let s = String::from_utf8_lossy(raw).trim().to_string();
            return (!s.is_empty()).then_some(s);
        }
        tlvs = &tlvs[align4(len).min(tlvs.len())..];
    }
    None
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A request connection with extended ack turned on, so that [`NlError`]s carry the
/// kernel's explanation. Spawn the connection future (`tokio::spawn(conn)`) and keep
/// the handle; unsolicited messages are not wanted on this socket and are dropped.
pub fn connect() -> io::Result<(Connection<RouteNetlinkMessage>, Handle)> {
    let (mut conn, handle, _unsolicited) = rtnetlink::new_connection()?;
    // Best effort: kernels before 4.12 lack NETLINK_EXT_ACK; errors then just have
    // no kernel text.
    let _ = conn.socket_mut().socket_mut().set_ext_ack(true);
    Ok((conn, handle))
}

/// Parse a link message into a [`LinkInfo`].
///
/// Returns `None` for messages that do not describe an interface as a whole:
/// `AF_BRIDGE` notifications (a port joining or leaving a bridge sends an `AF_BRIDGE`
/// `RTM_DELLINK` while the interface itself stays) and messages without a name.
pub fn parse_link(msg: &LinkMessage) -> Option<LinkInfo> {
    if !matches!(msg.header.interface_family, AddressFamily::Unspec) {
        return None;
    }
    let flags = msg.header.flags;
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: flags.contains(LinkFlags::Up),
        carrier: flags.contains(LinkFlags::LowerUp),
        mtu: 0,
        controller: None,
        is_port: flags.contains(LinkFlags::Port),
        kind: None,
        bond: None,
        bond_port: None,
    };
    let mut oper_up = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name = n.clone(),
            LinkAttribute::Address(a) => info.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => info.mtu = *m,
            LinkAttribute::Controller(c) if *c != 0 => info.controller = Some(*c),
            LinkAttribute::OperState(State::Up) => oper_up = true,
            LinkAttribute::LinkInfo(infos) => parse_link_info(infos, &mut info),
            _ => {}
        }
    }
    info.carrier |= oper_up;
    if info.name.is_empty() {
        return None;
    }
    Some(info)
}

async fn get_one(
    req: rtnetlink::LinkGetRequest,
    iface: String,
) -> Result<Option<LinkInfo>, NlError> {
    let mut stream = req.execute();
    match stream.try_next().await {
        Ok(Some(msg)) => Ok(parse_link(&msg)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ENODEV => Ok(None),
        Err(e) => Err(NlError::from_rtnl("get link", iface, e)),
    }
}

/// Look an interface up by index. `Ok(None)` when no such interface exists.
pub async fn get_link_by_index(handle: &Handle, index: u32) -> Result<Option<LinkInfo>, NlError> {
    let req = handle.link().get().match_index(index);
    get_one(req, format!("#{index}")).await
}

/// Look an interface up by name. `Ok(None)` when no such interface exists.
pub async fn get_link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkInfo>, NlError> {
    let req = handle.link().get().match_name(name);
    get_one(req, name.to_string()).await
}

/// Every interface in this namespace.
pub async fn list_links(handle: &Handle) -> Result<Vec<LinkInfo>, NlError> {
    let mut stream = handle.link().get().execute();
    let mut out = Vec::new();
    loop {
        match stream.try_next().await {
            Ok(Some(msg)) => out.extend(parse_link(&msg)),
            Ok(None) => return Ok(out),
            Err(e) => return Err(NlError::from_rtnl("list links", "all", e)),
        }
    }
}

/// Set `IFF_UP` on an interface (like `ip link set dev X up`).
pub async fn set_link_up(handle: &Handle, index: u32) -> Result<(), NlError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NlError::from_rtnl("set link up", format!("#{index}"), e))
}

fn to_event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
            parse_link(&m).map(LinkEvent::New)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
            parse_link(&m).map(|i| LinkEvent::Deleted {
                index: i.index,
                name: i.name,
            })
        }
        NetlinkPayload::Overrun(_) => Some(LinkEvent::Overrun),
        _ => None,
    }
}

/// Subscribe to `RTNLGRP_LINK`.
///
/// Returns the connection future, which must be spawned (or polled) for events to
/// flow, and the event stream. The stream ends only if the socket fails; treat that
/// like [`LinkEvent::Overrun`] and resubscribe. Subscribe *before* the initial
/// lookup so that no change between the two is missed.
pub fn link_events() -> io::Result<(
    Connection<RouteNetlinkMessage>,
    impl Stream<Item = LinkEvent> + Unpin + Send,
)> {
    let (mut conn, _handle, messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
    // A bond flapping ports can emit bursts; a bigger buffer makes overruns rarer.
    let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(1 << 20);
    let stream = messages.filter_map(|(msg, _addr)| futures::future::ready(to_event(msg)));
    Ok((conn, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, data: &[u8]) -> Vec<u8> {
        let len = 4 + data.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn hdr(len: u32) -> Vec<u8> {
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&[0u8; 12]);
        v
    }

    #[test]
    fn ext_ack_uncapped_skips_request_body() {
        let mut p = hdr(16 + 8);
        p.extend_from_slice(&[0xaa; 8]);
        p.extend_from_slice(&tlv(2, &7u32.to_ne_bytes()));
        p.extend_from_slice(&tlv(1, b"Invalid prefix for given prefix length\0"));
        assert_eq!(
            ext_ack_message(&p).as_deref(),
            Some("Invalid prefix for given prefix length")
        );
    }

    #[test]
    fn ext_ack_capped_and_absent() {
        let mut p = hdr(200);
        p.extend_from_slice(&tlv(1, b"Nexthop device is not up\0"));
        assert_eq!(
            ext_ack_message(&p).as_deref(),
            Some("Nexthop device is not up")
        );
        assert_eq!(ext_ack_message(&hdr(16)), None);
        assert_eq!(ext_ack_message(&[1, 2, 3]), None);
        let mut bad = hdr(16);
        bad.extend_from_slice(&[0xff, 0xff, 1, 0]);
        assert_eq!(ext_ack_message(&bad), None);
    }

    #[test]
    fn display_names_op_iface_and_kernel_text() {
        let e = NlError {
            op: "add address 192.0.2.1/24".into(),
            iface: "eth0".into(),
            errno: Some(libc::EINVAL),
            ext_ack: Some("bad thing".into()),
            detail: None,
        };
        let s = e.to_string();
        assert!(
            s.starts_with("add address 192.0.2.1/24 on eth0 failed: "),
            "{s}"
        );
        assert!(s.ends_with("(kernel: bad thing)"), "{s}");
    }

    #[test]
    fn bridge_family_messages_are_ignored() {
        let mut m = LinkMessage::default();
        m.header.index = 3;
        m.attributes.push(LinkAttribute::IfName("eth0".into()));
        m.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]));
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        let i = parse_link(&m).unwrap();
        assert_eq!(i.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(i.up && i.carrier);
        m.header.interface_family = AddressFamily::Bridge;
        assert_eq!(parse_link(&m), None);
    }
}
