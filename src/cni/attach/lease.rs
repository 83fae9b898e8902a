//! What a lease event does to an attachment: keep the lease in its record, or take the
//! link down when it is lost.

use super::Attachment;
use crate::cni::events as cev;
use crate::cni::netns;
use crate::cni::store::SavedLease6;
use crate::daemon::events as ev;
use crate::logging::{debug, info, warn};
use crate::state::store::SavedLease4;
use netbond_proto::dhcp4::{self, Event4, Lease4};
use netbond_proto::dhcp6::{self, Event6, Lease6};
use netbond_proto::Engine;
use serde_json::{json, Value};

impl Attachment {
    /// Queue the record's save (the writer thread logs a failure).
    pub(super) fn save(&mut self) {
        self.saving = Some(self.ctx.writer.save(&self.rec));
    }

    /// An event's data naming this attachment.
    pub(super) fn data(&self, extra: Value) -> Value {
        cev::with_attachment(&self.key, &self.netns, extra)
    }

    /// `dhcp4-released` / `dhcp6-released` for the leases DEL gives back.
    pub(super) fn released_events(&self) {
        let name = &self.key.ifname;
        if let Some(s) = &self.rec.lease4 {
            let e = self.data(json!({"deconfigured": false}));
            ev::v4("dhcp4-released", name, None, Some(&s.lease), e);
        }
        if let Some(s) = &self.rec.lease6 {
            let e = self.data(json!({"deconfigured": false}));
            ev::v6("dhcp6-released", name, None, Some(&s.lease), e);
        }
    }

    pub(super) fn keep4(&mut self, l: &Lease4) {
        self.rec.lease4 = Some(SavedLease4 {
            lease: l.clone(),
            acquired_unix: self.ctx.clock.unix_time(l.acquired),
        });
        self.save();
    }

    pub(super) async fn on_event4(&mut self, ev: Event4) {
        match ev {
            Event4::Bound(l) => {
                info!(
                    "cni: {}: bound {}/{} from {} (lease {:?} s)",
                    self.key, l.address, l.prefix_len, l.server, l.lease_secs
                );
                self.keep4(&l);
                ev::v4(
                    "dhcp4-bound",
                    &self.key.ifname,
                    Some(&l),
                    None,
                    self.data(json!({})),
                );
            }
            Event4::Renewed(l) => {
                info!(
                    "cni: {}: renewed {} (lease {:?} s)",
                    self.key, l.address, l.lease_secs
                );
                self.keep4(&l);
                ev::v4(
                    "dhcp4-renewed",
                    &self.key.ifname,
                    Some(&l),
                    None,
                    self.data(json!({})),
                );
            }
            Event4::Changed { old, new } => {
                // The main plugin configured the old address from our result; nothing
                // here can move the container to the new one.
                warn!(
                    "cni: {}: the server moved the lease from {} to {}; the container keeps {} until it is re-added",
                    self.key, old.address, new.address, old.address
                );
                self.keep4(&new);
                let e = self.data(json!({}));
                ev::v4("dhcp4-changed", &self.key.ifname, Some(&new), Some(&old), e);
            }
            Event4::Lost { lease, reason } => {
                self.rec.lease4 = None;
                self.save();
                let kind = match reason {
                    dhcp4::LostReason::Released => "dhcp4-released",
                    dhcp4::LostReason::Stopped => "dhcp4-stopped",
                    _ => "dhcp4-lost",
                };
                let e = self.data(json!({ "reason": ev::reason(reason) }));
                ev::v4(kind, &self.key.ifname, None, Some(&lease), e);
                if !matches!(
                    reason,
                    dhcp4::LostReason::Released | dhcp4::LostReason::Stopped
                ) {
                    warn!(
                        "cni: {}: lost {} ({reason:?}); taking {} down",
                        self.key, lease.address, self.key.ifname
                    );
                    self.link_down().await;
                }
            }
            // The CNI engines never ask for option 108, so never pause.
            Event4::Timeout | Event4::Reconfirming(_) | Event4::Ipv6OnlyPreferred { .. } => {}
            Event4::Dropped(why) => {
                let from = self.last_src4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                debug!(
                    "cni: {}: dropped a DHCPv4 packet from {from}: {why}",
                    self.key
                );
            }
            Event4::IgnoredOption(why) => {
                let from = self.last_src4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                warn!("cni: {}: ignored an option from {from}: {why}", self.key);
            }
            Event4::Backoff {
                failures,
                wait,
                reason,
                server,
            } => {
                let from = server.map(|s| format!(" from {s}")).unwrap_or_default();
                warn!(
                    "cni: {}: no DHCPv4 lease: {reason}{from} ({failures} failures in a row); next DISCOVER in {:.1} s",
                    self.key,
                    wait.as_secs_f32()
                );
            }
        }
    }

    pub(super) async fn on_event6(&mut self, e6: Event6) {
        let kind = if matches!(e6, Event6::Bound(_)) {
            "dhcp6-bound"
        } else {
            "dhcp6-renewed"
        };
        match e6 {
            Event6::Bound(l) | Event6::Renewed(l) => {
                info!("cni: {}: DHCPv6 {}", self.key, fmt6(&l));
                ev::v6(kind, &self.key.ifname, Some(&l), None, self.data(json!({})));
                self.rec.lease6 = Some(SavedLease6 {
                    acquired_unix: self.ctx.clock.unix_time(l.acquired),
                    lease: l,
                });
                self.save();
            }
            Event6::Lost { lease, reason } => {
                self.rec.lease6 = None;
                self.save();
                let kind = if reason == dhcp6::LostReason::Released {
                    "dhcp6-released"
                } else {
                    "dhcp6-lost"
                };
                let e = self.data(json!({ "reason": ev::reason(reason) }));
                ev::v6(kind, &self.key.ifname, None, Some(&lease), e);
                if reason != dhcp6::LostReason::Released {
                    warn!(
                        "cni: {}: lost DHCPv6 {} ({reason:?}); taking {} down",
                        self.key,
                        fmt6(&lease),
                        self.key.ifname
                    );
                    self.link_down().await;
                }
            }
            Event6::Info(_) => {}
            Event6::Dropped(why) => debug!("cni: {}: DHCPv6: {why}", self.key),
            Event6::Backoff {
                failures,
                wait,
                reason,
            } => warn!(
                "cni: {}: no DHCPv6 lease: {reason} ({failures} failures in a row); next Solicit in {:.1} s",
                self.key,
                wait.as_secs_f32()
            ),
        }
    }

    pub(super) async fn link_down(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        self.rec.down = true;
        self.save();
        // As the stock plugin: the attachment is dead until DEL and ADD. Stop the
        // engines too, or they would retry on a link that cannot carry anything.
        let now = self.ctx.clock.now();
        self.v4.stop(now);
        if let Some(c) = self.v6.as_mut() {
            c.link_changed(now, false);
        }
        let ifname = self.key.ifname.clone();
        if let Err(e) = netns::run_in(&self.netns, move || netns::set_up(&ifname, false)).await {
            warn!("cni: {}: could not take the link down: {e}", self.key);
        }
    }
}
fn fmt6(l: &Lease6) -> String {
    l.addresses
        .iter()
        .map(|a| a.addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
