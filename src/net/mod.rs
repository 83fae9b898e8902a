//! The kernel side: packet and UDP sockets, router advertisements, ARP probes, netlink
//! (links, addresses, routes) and the bond. Drivers only: what to send and when is decided
//! by the engines in `netbond-proto` and by `dhcp/`.

pub mod apply;
pub mod arp;
#[cfg(feature = "bond")]
pub mod bond;
#[cfg(not(feature = "bond"))]
pub use crate::features::bond;
pub mod hwaddr;
pub mod ifname;
pub mod link;
pub mod netlink;
pub mod packet;
pub mod ra;
pub mod sock;
pub mod udp4;
pub mod udp6;
