//! What the caller tells the DHCPv4 engine besides packets and time: the hardware
//! address, the carrier, and the commands (start, stop, renew, release, decline,
//! resend).

use super::{Client, Event4, LostReason, OneShot, Phase, ReconfirmCause, DECLINE_BACKOFF};
use crate::time::Instant;
use std::net::Ipv4Addr;

impl Client {
    /// The interface's MAC (see [`crate::Engine::hw_address_changed`]). The first one
    /// is only recorded. A change while a lease is configured keeps the lease, enters
    /// RECONFIRMING (a broadcast REQUEST for the same address from the new chaddr) and
    /// says so with [`Event4::Reconfirming`]; a change during an acquisition restarts
    /// its transmissions at once, under a fresh xid from the next packet on.
    pub(super) fn set_mac(&mut self, now: Instant, mac: [u8; 6]) {
        let old = self.mac.replace(mac);
        let Some(old) = old.filter(|m| *m != mac) else {
            return;
        };
        match &mut self.phase {
            Phase::Bound | Phase::Renewing(_) | Phase::Rebinding(_) | Phase::Reconfirming(_)
                if self.lease.is_some() =>
            {
                let ex = self.new_exchange(now);
                self.phase = Phase::Reconfirming(ex);
                self.events
                    .push_back(Event4::Reconfirming(ReconfirmCause::MacChanged {
                        old,
                        new: mac,
                    }));
            }
            // The server must see the new chaddr at once. The xid changes when the
            // packet is built (`transmit.rs`), and only if the chaddr really differs from
            // the one last sent: a MAC that flips back before the next send (a netlink
            // event that was queued behind the change) costs no transaction.
            Phase::Selecting(ex) | Phase::Requesting(ex, _) | Phase::Rebooting(ex)
                if ex.chaddr.is_some_and(|c| c != mac) =>
            {
                ex.next_tx = now;
            }
            _ => {}
        }
    }

    /// The link went down or came back. Down: stop transmitting (the lease is kept until
    /// it expires). Up: re-confirm a configured lease at once (RFC 2131 3.2: the client
    /// may have moved), or start a fresh DISCOVER without waiting out the backoff.
    pub(super) fn on_link(&mut self, now: Instant, up: bool) {
        let was = self.link_up;
        self.link_up = up;
        if !up || was {
            return;
        }
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        if self.lease.is_some() {
            let ex = self.new_exchange(now);
            self.phase = Phase::Reconfirming(ex);
            self.events
                .push_back(Event4::Reconfirming(ReconfirmCause::LinkUp));
            return;
        }
        self.acquiring_since = None;
        match &mut self.phase {
            // Mid-exchange: send again now with a fresh backoff but the same xid, so a
            // reply to what was already sent still counts (a short carrier blip, or a
            // stale "down" event, must not cost a whole exchange).
            Phase::Selecting(ex) | Phase::Requesting(ex, _) => {
                ex.next_tx = now;
                ex.attempts = 0;
            }
            _ => self.start_discover(now),
        }
    }

    /// Send the pending message of the current exchange now, with the same xid and a
    /// fresh backoff: for when the caller knows the previous transmission could not have
    /// reached anyone (a Wi-Fi port that had carrier but was not yet authorised).
    /// Nothing happens outside an exchange (BOUND, INIT, STOPPED).
    pub(super) fn resend(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Selecting(ex)
            | Phase::Requesting(ex, _)
            | Phase::Rebooting(ex)
            | Phase::Reconfirming(ex)
                if ex.last_tx.is_some() =>
            {
                ex.next_tx = now;
                ex.attempts = 0;
            }
            _ => {}
        }
    }

    /// The caller found `address` in use by another host (ARP probe or DAD): send a
    /// DECLINE, drop the lease, and start over after [`DECLINE_BACKOFF`].
    pub(super) fn decline_addr(&mut self, now: Instant, address: Ipv4Addr) {
        let Some(lease) = self.lease.as_ref() else {
            return;
        };
        if lease.address != address {
            return;
        }
        let server = lease.server;
        self.oneshot.push_back(OneShot::Decline { address, server });
        self.lose(LostReason::Declined);
        self.fail(
            now,
            Some(server),
            "the address was declined (in use by another host)",
            DECLINE_BACKOFF,
        );
    }

    /// Give the lease back (a unicast RELEASE) and stop.
    pub(super) fn release_lease(&mut self) {
        if let Some(lease) = self.lease.as_ref() {
            self.oneshot.push_back(OneShot::Release {
                address: lease.address,
                server: lease.server,
            });
        }
        self.lose(LostReason::Released);
        self.phase = Phase::Stopped;
    }

    /// Stop without telling the server; the lease is reported lost so the caller can
    /// remove the address.
    pub(super) fn halt(&mut self) {
        self.lose(LostReason::Stopped);
        self.phase = Phase::Stopped;
    }

    /// Start again after `stop`/`release`, or restart a stalled acquisition now.
    pub(super) fn begin(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Stopped | Phase::Init(_)) {
            self.acquiring_since = None;
            self.start_discover(now);
        }
    }

    /// Renew now (the `netbond renew` command): from BOUND, go to RENEWING at once.
    pub(super) fn renew_now(&mut self, now: Instant) {
        match self.phase {
            Phase::Bound => {
                let ex = self.new_exchange(now);
                self.phase = Phase::Renewing(ex);
            }
            Phase::Stopped | Phase::Init(_) => self.begin(now),
            // An explicit renewal ends an RFC 8925 pause early.
            Phase::Ipv6Only(_) => {
                self.acquiring_since = None;
                self.start_discover(now);
            }
            _ => {}
        }
    }
}
