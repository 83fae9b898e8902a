//! State shared by the DHCPv4 and DHCPv6 drivers of one interface: where to apply
//! configuration, the lease store, and the merged DNS picture.

use crate::config::Config;
use crate::daemon::clock::Clock;
use crate::net::apply::Applier;
use crate::net::netlink::Handle;
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::{DnsSink, DnsState};
use crate::state::store::Store;
use std::net::{Ipv4Addr, Ipv6Addr};

/// DNS data learned by one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns4 {
    /// Option 6.
    pub servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 119.
    pub search: Vec<String>,
}

/// DNS data learned by DHCPv6.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns6 {
    /// Option 23.
    pub servers: Vec<Ipv6Addr>,
    /// Option 24.
    pub domains: Vec<String>,
}

/// Everything one interface's drivers share.
pub struct Shared {
    /// Interface name.
    pub ifname: String,
    /// Current kernel index, `None` while the interface does not exist.
    pub ifindex: Option<u32>,
    /// Netlink handle for lookups.
    pub handle: Handle,
    /// Applies addresses/routes to the current index.
    pub applier: Option<Applier>,
    /// Lease store (reads at start).
    pub store: Store,
    /// Lease saves and removals, off the event loop.
    pub leases: LeaseWriter,
    /// Engine/wall clock bridge.
    pub clock: Clock,
    /// Effective configuration (shared by every interface; replaced on reload).
    pub cfg: std::sync::Arc<Config>,
    /// The metric of this interface's routes: `[dhcp4] route_metric` plus the
    /// interface's position in the list, so each interface's default route is its own
    /// and the first one listed is preferred.
    pub route_metric: u32,
    /// Every interface's MAC on this host (for the ARP conflict check).
    pub host_macs: std::sync::Arc<crate::net::hwaddr::HostMacs>,
    /// DNS from DHCPv4.
    pub dns4: Dns4,
    /// DNS from DHCPv6.
    pub dns6: Dns6,
    /// Where DNS goes, unless it is left alone.
    pub resolv: Option<DnsSink>,
    /// The start window shared by every interface (multi-interface mode only).
    pub pacer: Option<std::sync::Arc<crate::dhcp::pace::Pacer>>,
}

impl Shared {
    /// Write resolv.conf from both families (skipped when unchanged or disabled).
    pub fn update_dns(&mut self) {
        let Some(resolv) = self.resolv.as_mut() else {
            return;
        };
        // Each family's use_dns filters here, not where the data is stored: a reload
        // that turns one back on can then write what the last lease said at once.
        let (none4, none6) = (Dns4::default(), Dns6::default());
        let d4 = if self.cfg.dhcp4.use_dns {
            &self.dns4
        } else {
            &none4
        };
        let d6 = if self.cfg.dhcp6.use_dns {
            &self.dns6
        } else {
            &none6
        };
        let state = DnsState::merge(
            &d4.servers,
            d4.domain.as_deref(),
            &d4.search,
            &d6.servers,
            &d6.domains,
            &self.ifname,
        );
        let empty =
            state.v4_servers.is_empty() && state.v6_servers.is_empty() && state.domains.is_empty();
        // Queued to the DNS writer thread, which logs what fails.
        if empty {
            resolv.restore();
        } else {
            resolv.update(&state);
        }
    }
}
