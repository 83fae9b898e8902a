//! Netlink events to the interfaces they concern: link events (coalesced in bursts,
//! seen by the bond and the supplicants first) by name and index, address events for
//! DAD failures and the SLAAC addresses that count as online.

use super::Daemon;
use crate::daemon::iface::{IfaceHandle, Mail};
use crate::logging::{debug, error, warn};
use crate::net::apply::AddrEvent;
use crate::net::link::{self, LinkEvent};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::net::IpAddr;

impl Daemon {
    /// A link event, with every one already queued behind it.
    pub(super) async fn on_links(
        &mut self,
        first: LinkEvent,
        stream: &mut BoxStream<'static, LinkEvent>,
    ) {
        // Take every event already queued and coalesce: a burst (a flapping
        // cable, a bond enslaving ports) costs one pass, and the backlog (and
        // the memory it holds) cannot build up behind slow per-event work.
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match stream.next().now_or_never() {
                Some(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        for ev in coalesce(batch) {
            if let Some(b) = self.bond.as_mut() {
                if b.on_link(&ev).await {
                    // Deleted from outside: build it again, as a restart would.
                    if let Err(e) = b.recreate().await {
                        error!("{e}");
                    }
                }
            }
            self.wifi.on_link(&ev);
            route_link(&self.handle, &mut self.ifaces, &self.host_macs, ev).await;
        }
    }

    /// An address event: a DAD failure goes to its interface; the rest keep the SLAAC
    /// addresses (and so the online board) current.
    pub(super) async fn on_addr(&mut self, ev: AddrEvent) {
        match ev {
            AddrEvent::Deleted {
                ifindex,
                addr: IpAddr::V6(a),
                dad_failed: true,
                ..
            } => {
                for h in self.ifaces.iter().filter(|h| h.index == Some(ifindex)) {
                    h.send(Mail::DadFailed(a));
                }
            }
            AddrEvent::Overrun => {
                self.slaac
                    .reread(&self.handle, &self.ifaces, &self.online)
                    .await
            }
            ev => self.slaac.on_event(&ev, &self.ifaces, &self.online),
        }
    }
}

/// Hand a link event to the interfaces it concerns: by name (the interface, whatever
/// its index now) and by index (a rename away from a managed name). Keeps `host_macs`
/// current on the way.
async fn route_link(
    handle: &crate::net::netlink::Handle,
    ifaces: &mut [IfaceHandle],
    host_macs: &crate::net::hwaddr::HostMacs,
    ev: LinkEvent,
) {
    match ev {
        LinkEvent::New(info) => {
            host_macs.set(info.index, info.mac);
            for h in ifaces.iter_mut() {
                if h.name == info.name {
                    h.index = Some(info.index);
                    // Carrier and MAC: the task passes a new MAC to the engines'
                    // hw_address_changed (a bond failover re-confirms at once).
                    h.send(Mail::Link(Box::new(info.clone())));
                } else if h.index == Some(info.index) {
                    h.index = None;
                    h.send(Mail::RenamedAway(info.name.clone()));
                }
            }
        }
        LinkEvent::Deleted { index, .. } => {
            host_macs.remove(index);
            for h in ifaces.iter_mut().filter(|h| h.index == Some(index)) {
                h.index = None;
                h.send(Mail::Deleted);
            }
        }
        LinkEvent::Overrun => {
            warn!("netlink link events were lost; re-reading the interfaces");
            match link::list_links(handle).await {
                Ok(links) => {
                    for l in &links {
                        host_macs.set(l.index, l.mac);
                    }
                    for h in ifaces.iter_mut() {
                        match links.iter().find(|l| l.name == h.name) {
                            Some(info) => {
                                h.index = Some(info.index);
                                h.send(Mail::Link(Box::new(info.clone())));
                            }
                            None if h.index.is_some() => {
                                h.index = None;
                                h.send(Mail::Deleted);
                            }
                            None => {}
                        }
                    }
                }
                Err(e) => error!("cannot list network interfaces after lost events: {e}"),
            }
        }
    }
}

/// Coalesce a burst of link events. The kernel sends an interface's full state each
/// time, so a run of `New` events for the same interface collapses to its last one,
/// except that a carrier change inside the run is kept as one down/up (or up/down)
/// pair: the engines must still see that the link flapped. Deletions and events of
/// other interfaces keep their order.
fn coalesce(batch: Vec<LinkEvent>) -> Vec<LinkEvent> {
    let mut out: Vec<LinkEvent> = Vec::with_capacity(batch.len().min(64));
    for ev in batch {
        if let LinkEvent::New(info) = &ev {
            let same = |e: &LinkEvent| matches!(e, LinkEvent::New(p) if p.index == info.index);
            let carrier = |e: &LinkEvent| matches!(e, LinkEvent::New(p) if p.carrier);
            if let Some(prev) = out.last() {
                if same(prev) && carrier(prev) == info.carrier {
                    out.pop();
                } else if same(prev) && out.len() >= 2 && same(&out[out.len() - 2]) {
                    // [x, prev, ev] with x.carrier == ev.carrier: x is superseded.
                    let n = out.len();
                    if carrier(&out[n - 2]) == info.carrier {
                        out.remove(n - 2);
                    }
                }
            }
        }
        out.push(ev);
    }
    out
}

/// The SLAAC addresses of the managed interfaces (online counts them as IPv6; netbond
/// does not make them, the kernel does from router advertisements).
#[derive(Default)]
pub(super) struct Slaac {
    by_index: std::collections::HashMap<u32, std::collections::HashSet<std::net::Ipv6Addr>>,
}

impl Slaac {
    /// Read them all again (at start, and when address events were lost).
    pub(super) async fn reread(
        &mut self,
        handle: &crate::net::netlink::Handle,
        ifaces: &[IfaceHandle],
        online: &crate::daemon::online::Board,
    ) {
        self.by_index.clear();
        for (slot, h) in ifaces.iter().enumerate() {
            let Some(index) = h.index else { continue };
            match crate::net::apply::list_ra_addrs6(handle, index).await {
                Ok(v) => {
                    online.set_ra6(slot, !v.is_empty());
                    self.by_index.insert(index, v.into_iter().collect());
                }
                Err(e) => debug!("{}: cannot list IPv6 addresses: {e}", h.name),
            }
        }
    }

    /// An address event: keep the sets, tell the board when a set (un)empties.
    fn on_event(
        &mut self,
        ev: &AddrEvent,
        ifaces: &[IfaceHandle],
        online: &crate::daemon::online::Board,
    ) {
        let (ifindex, addr, usable) = match ev {
            AddrEvent::New {
                ifindex,
                addr: IpAddr::V6(a),
                tentative,
                from_ra,
                ..
            } => (*ifindex, *a, *from_ra && !*tentative),
            AddrEvent::Deleted {
                ifindex,
                addr: IpAddr::V6(a),
                ..
            } => (*ifindex, *a, false),
            _ => return,
        };
        let Some(slot) = ifaces.iter().position(|h| h.index == Some(ifindex)) else {
            return;
        };
        let set = self.by_index.entry(ifindex).or_default();
        if usable {
            set.insert(addr);
        } else {
            set.remove(&addr);
        }
        let any = !set.is_empty();
        if !any {
            self.by_index.remove(&ifindex);
        }
        online.set_ra6(slot, any);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::link::LinkInfo;

    fn new(index: u32, carrier: bool) -> LinkEvent {
        LinkEvent::New(LinkInfo {
            index,
            name: format!("if{index}"),
            mac: None,
            up: true,
            carrier,
            mtu: 1500,
            controller: None,
            is_port: false,
            kind: None,
            bond: None,
            bond_port: None,
        })
    }

    fn carriers(v: &[LinkEvent]) -> Vec<(u32, bool)> {
        v.iter()
            .map(|e| match e {
                LinkEvent::New(i) => (i.index, i.carrier),
                LinkEvent::Deleted { index, .. } => (*index, false),
                LinkEvent::Overrun => (0, false),
            })
            .collect()
    }

    #[test]
    fn a_burst_of_flaps_becomes_one_flap() {
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.push(new(2, false));
            burst.push(new(2, true));
        }
        assert_eq!(carriers(&coalesce(burst)), vec![(2, false), (2, true)]);
        // Same state repeated: one event.
        let same = vec![new(2, true), new(2, true), new(2, true)];
        assert_eq!(carriers(&coalesce(same)), vec![(2, true)]);
        // Other interfaces and deletions keep their place.
        let mixed = vec![
            new(2, true),
            new(3, true),
            new(2, false),
            LinkEvent::Deleted {
                index: 3,
                name: "if3".into(),
            },
        ];
        assert_eq!(coalesce(mixed).len(), 4);
    }
}
