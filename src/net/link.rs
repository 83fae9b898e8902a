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

use futures::stream::BoxStream;

use crate::net::netlink::attr::*;
pub use crate::net::netlink::Handle;
use crate::net::netlink::{msg, socket, Fail};

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

/// Read `IFLA_LINKINFO`: the kind, and the bond's or bond port's data.
fn parse_link_info(nest: &[u8], out: &mut LinkInfo) {
    let (mut data, mut port_kind, mut port_data) = (None, None, None);
    for (kind, d) in attrs(nest) {
        match kind {
            IFLA_INFO_KIND => out.kind = Some(get_str(d)),
            IFLA_INFO_DATA => data = Some(d),
            IFLA_INFO_SLAVE_KIND => port_kind = Some(get_str(d)),
            IFLA_INFO_SLAVE_DATA => port_data = Some(d),
            _ => {}
        }
    }
    if let (Some("bond"), Some(d)) = (out.kind.as_deref(), data) {
        out.bond = Some(parse_bond(d));
    }
    if let (Some("bond"), Some(d)) = (port_kind.as_deref(), port_data) {
        out.bond_port = Some(parse_bond_port(d));
    }
}

fn parse_bond(d: &[u8]) -> BondInfo {
    let mut b = BondInfo::default();
    for (kind, v) in attrs(d) {
        match kind {
            IFLA_BOND_MODE => b.mode = get_u8(v),
            IFLA_BOND_FAIL_OVER_MAC => b.fail_over_mac = get_u8(v),
            IFLA_BOND_MIIMON => b.miimon = get_u32(v),
            IFLA_BOND_ACTIVE_SLAVE => b.active_port = get_u32(v).filter(|&p| p != 0),
            IFLA_BOND_PRIMARY => b.primary = get_u32(v).filter(|&p| p != 0),
            IFLA_BOND_PRIMARY_RESELECT => b.primary_reselect = get_u8(v),
            _ => {}
        }
    }
    b
}

fn parse_bond_port(d: &[u8]) -> BondPortInfo {
    // BOND_STATE_ACTIVE and BOND_LINK_UP are both 0.
    let mut p = BondPortInfo::default();
    for (kind, v) in attrs(d) {
        match kind {
            IFLA_BOND_SLAVE_STATE => p.active = get_u8(v) == Some(0),
            IFLA_BOND_SLAVE_MII_STATUS => p.mii_up = get_u8(v) == Some(0),
            IFLA_BOND_SLAVE_LINK_FAILURE_COUNT => p.link_failures = get_u32(v).unwrap_or(0),
            IFLA_BOND_SLAVE_PERM_HWADDR => p.perm_mac = get_mac(v),
            _ => {}
        }
    }
    p
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
    /// A failed request, with the operation and interface it concerns.
    pub fn new(op: impl Into<String>, iface: impl Into<String>, fail: Fail) -> Self {
        let (errno, ext_ack, detail) = match fail {
            Fail::Kernel { errno, ext_ack } => (Some(errno), ext_ack, None),
            Fail::Other(d) => (None, None, Some(d)),
        };
        NlError {
            op: op.into(),
            iface: iface.into(),
            errno,
            ext_ack,
            detail,
        }
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

/// The request socket (extended ack on, so that [`NlError`]s carry the kernel's
/// explanation). Clone it freely: clones share the socket.
pub fn connect() -> io::Result<Handle> {
    Handle::connect()
}

/// Parse a link message body into a [`LinkInfo`].
///
/// Returns `None` for messages that do not describe an interface as a whole:
/// `AF_BRIDGE` notifications (a port joining or leaving a bridge sends an `AF_BRIDGE`
/// `RTM_DELLINK` while the interface itself stays), messages without a name, and
/// messages too short for their header.
pub fn parse_link(body: &[u8]) -> Option<LinkInfo> {
    let h = msg::link_header(body)?;
    if h.family != AF_UNSPEC {
        return None;
    }
    let mut info = LinkInfo {
        index: h.index,
        name: String::new(),
        mac: None,
        up: h.flags & IFF_UP != 0,
        carrier: h.flags & IFF_LOWER_UP != 0,
        mtu: 0,
        controller: None,
        is_port: h.flags & IFF_SLAVE != 0,
        kind: None,
        bond: None,
        bond_port: None,
    };
    let mut oper_up = false;
    for (kind, d) in attrs(h.attrs) {
        match kind {
            IFLA_IFNAME => info.name = get_str(d),
            IFLA_ADDRESS => info.mac = get_mac(d),
            IFLA_MTU => info.mtu = get_u32(d).unwrap_or(0),
            IFLA_MASTER => info.controller = get_u32(d).filter(|&c| c != 0),
            IFLA_OPERSTATE => oper_up = get_u8(d) == Some(IF_OPER_UP),
            IFLA_LINKINFO => parse_link_info(d, &mut info),
            _ => {}
        }
    }
    info.carrier |= oper_up;
    if info.name.is_empty() {
        return None;
    }
    Some(info)
}

async fn get_one(handle: &Handle, req: &[u8], iface: String) -> Result<Option<LinkInfo>, NlError> {
    match handle.get(RTM_GETLINK, req).await {
        Ok(reply) => Ok(reply.and_then(|b| parse_link(&b))),
        Err(f) if f.errno() == Some(libc::ENODEV) => Ok(None),
        Err(f) => Err(NlError::new("get link", iface, f)),
    }
}

/// Look an interface up by index. `Ok(None)` when no such interface exists.
pub async fn get_link_by_index(handle: &Handle, index: u32) -> Result<Option<LinkInfo>, NlError> {
    get_one(handle, &msg::ifinfo(index, 0, 0), format!("#{index}")).await
}

/// Look an interface up by name. `Ok(None)` when no such interface exists.
pub async fn get_link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkInfo>, NlError> {
    let mut req = msg::ifinfo(0, 0, 0);
    put_str(&mut req, IFLA_IFNAME, name);
    get_one(handle, &req, name.to_string()).await
}

/// Every interface in this namespace.
pub async fn list_links(handle: &Handle) -> Result<Vec<LinkInfo>, NlError> {
    let msgs = handle
        .dump(RTM_GETLINK, &msg::ifinfo(0, 0, 0))
        .await
        .map_err(|f| NlError::new("list links", "all", f))?;
    Ok(msgs.iter().filter_map(|b| parse_link(b)).collect())
}

/// Change a link with `RTM_NEWLINK` (`body` from [`msg::ifinfo`] plus attributes).
pub async fn change_link(
    handle: &Handle,
    body: &[u8],
    op: &str,
    iface: impl Into<String>,
) -> Result<(), NlError> {
    handle
        .ack(RTM_NEWLINK, 0, body)
        .await
        .map_err(|f| NlError::new(op, iface, f))
}

/// Set `IFF_UP` on an interface (like `ip link set dev X up`).
pub async fn set_link_up(handle: &Handle, index: u32) -> Result<(), NlError> {
    handle
        .ack(RTM_SETLINK, 0, &msg::ifinfo(index, IFF_UP, IFF_UP))
        .await
        .map_err(|f| NlError::new("set link up", format!("#{index}"), f))
}

fn to_event(m: &Message<'_>) -> Option<LinkEvent> {
    match m.kind {
        RTM_NEWLINK => parse_link(m.body).map(LinkEvent::New),
        RTM_DELLINK => parse_link(m.body).map(|i| LinkEvent::Deleted {
            index: i.index,
            name: i.name,
        }),
        _ => None,
    }
}

/// Subscribe to `RTNLGRP_LINK`.
///
/// The stream ends only if the socket fails; lost events come out as
/// [`LinkEvent::Overrun`]. Subscribe *before* the initial lookup so that no change
/// between the two is missed.
pub fn link_events() -> io::Result<BoxStream<'static, LinkEvent>> {
    socket::events(RTMGRP_LINK, to_event, || LinkEvent::Overrun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_iface_and_kernel_text() {
        let e = NlError::new(
            "add address 192.0.2.1/24",
            "eth0",
            Fail::Kernel {
                errno: libc::EINVAL,
                ext_ack: Some("bad thing".into()),
            },
        );
        let s = e.to_string();
        assert!(
            s.starts_with("add address 192.0.2.1/24 on eth0 failed: "),
            "{s}"
        );
        assert!(s.ends_with("(kernel: bad thing)"), "{s}");
        let e = NlError::new(
            "set mtu 1400",
            "eth0",
            Fail::Kernel {
                errno: 1,
                ext_ack: None,
            },
        );
        assert_eq!(
            e.to_string(),
            "set mtu 1400 on eth0 failed: Operation not permitted (os error 1)"
        );
    }

    /// An `RTM_NEWLINK` body as the kernel sends it: ifinfomsg, then attributes.
    fn link_body(family: u8, index: u32, flags: u32, attrs: &[u8]) -> Vec<u8> {
        let mut b = vec![family, 0, 1, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(attrs);
        b
    }

    #[test]
    fn bridge_family_messages_are_ignored() {
        let mut a = Vec::new();
        put_str(&mut a, IFLA_IFNAME, "eth0");
        put(&mut a, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        let i = parse_link(&link_body(0, 3, IFF_UP | IFF_LOWER_UP, &a)).unwrap();
        assert_eq!(i.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(i.up && i.carrier);
        // AF_BRIDGE (7).
        assert_eq!(parse_link(&link_body(7, 3, IFF_UP, &a)), None);
    }

    #[test]
    fn oper_state_up_counts_as_carrier_and_names_are_required() {
        let mut a = Vec::new();
        put_str(&mut a, IFLA_IFNAME, "dummy0");
        put_u32(&mut a, IFLA_MTU, 9000);
        put_u32(&mut a, IFLA_MASTER, 0);
        put_u8(&mut a, IFLA_OPERSTATE, IF_OPER_UP);
        let i = parse_link(&link_body(0, 4, IFF_UP, &a)).unwrap();
        assert!(i.carrier);
        assert_eq!((i.mtu, i.controller, i.mac), (9000, None, None));
        let mut nameless = Vec::new();
        put_u32(&mut nameless, IFLA_MTU, 1500);
        assert_eq!(parse_link(&link_body(0, 4, 0, &nameless)), None);
        // Truncated: the header alone is cut, or an attribute runs past the end.
        assert_eq!(parse_link(&link_body(0, 4, 0, &a)[..12]), None);
        let full = link_body(0, 4, 0, &a);
        let cut = parse_link(&full[..full.len() - 4]).unwrap();
        assert_eq!(cut.name, "dummy0");
        assert!(!cut.carrier);
    }

    #[test]
    fn bond_and_bond_port_data_are_read() {
        let mut bond = Vec::new();
        put_str(&mut bond, IFLA_IFNAME, "bond0");
        nest(&mut bond, IFLA_LINKINFO, |b| {
            put_str(b, IFLA_INFO_KIND, "bond");
            nest(b, IFLA_INFO_DATA, |b| {
                put_u8(b, IFLA_BOND_MODE, 1);
                put_u32(b, IFLA_BOND_ACTIVE_SLAVE, 7);
                put_u32(b, IFLA_BOND_MIIMON, 100);
                put_u32(b, IFLA_BOND_PRIMARY, 0);
                put_u8(b, IFLA_BOND_PRIMARY_RESELECT, 2);
                put_u8(b, IFLA_BOND_FAIL_OVER_MAC, 1);
            });
        });
        let i = parse_link(&link_body(0, 5, IFF_UP, &bond)).unwrap();
        assert_eq!(i.kind.as_deref(), Some("bond"));
        assert_eq!(
            i.bond,
            Some(BondInfo {
                mode: Some(1),
                fail_over_mac: Some(1),
                miimon: Some(100),
                active_port: Some(7),
                primary: None,
                primary_reselect: Some(2),
            })
        );
        let mut port = Vec::new();
        put_str(&mut port, IFLA_IFNAME, "veth1");
        put_u32(&mut port, IFLA_MASTER, 5);
        nest(&mut port, IFLA_LINKINFO, |b| {
            put_str(b, IFLA_INFO_KIND, "veth");
            put_str(b, IFLA_INFO_SLAVE_KIND, "bond");
            nest(b, IFLA_INFO_SLAVE_DATA, |b| {
                put_u8(b, IFLA_BOND_SLAVE_STATE, 1);
                put_u8(b, IFLA_BOND_SLAVE_MII_STATUS, 0);
                put_u32(b, IFLA_BOND_SLAVE_LINK_FAILURE_COUNT, 3);
                put(b, IFLA_BOND_SLAVE_PERM_HWADDR, &[2, 0, 0, 0, 0, 9]);
            });
        });
        let i = parse_link(&link_body(0, 7, IFF_UP | IFF_SLAVE, &port)).unwrap();
        assert_eq!(
            (i.kind.as_deref(), i.controller, i.is_port),
            (Some("veth"), Some(5), true)
        );
        assert_eq!(i.bond, None);
        assert_eq!(
            i.bond_port,
            Some(BondPortInfo {
                active: false,
                mii_up: true,
                link_failures: 3,
                perm_mac: Some([2, 0, 0, 0, 0, 9]),
            })
        );
    }

    #[test]
    fn link_events_map_new_and_deleted_and_skip_others() {
        let mut a = Vec::new();
        put_str(&mut a, IFLA_IFNAME, "eth1");
        let body = link_body(0, 9, 0, &a);
        let ev = |kind| {
            let d = request(kind, 0, 0, &body);
            let m = messages(&d).next().unwrap().unwrap();
            to_event(&m)
        };
        assert!(matches!(ev(RTM_NEWLINK), Some(LinkEvent::New(i)) if i.index == 9));
        assert_eq!(
            ev(RTM_DELLINK),
            Some(LinkEvent::Deleted {
                index: 9,
                name: "eth1".into()
            })
        );
        assert_eq!(ev(RTM_NEWADDR), None);
    }
}
