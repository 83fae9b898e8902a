//! The one sans-IO surface both DHCP engines offer, so that a driver is written once.
//!
//! An engine is a state machine and nothing else: the caller feeds it what happened
//! (a datagram, a timer, the link, the hardware address, a command) with the time it
//! happened, and drains what the engine wants done: packets to send
//! ([`Engine::poll_transmit`]), changes to apply ([`Engine::poll_event`]) and the next
//! instant it needs to be woken at ([`Engine::poll_timeout`]). Everything worth a log
//! line, a dropped packet included, comes out as an event; there is no second way to
//! ask for it.
//!
//! ```text
//! loop {
//!     engine.handle_timeout(now)                    // or let poll_transmit run timers
//!     while let Some(tx) = engine.poll_transmit(now) { send(tx) }
//!     while let Some(ev) = engine.poll_event() { apply(ev) }
//!     sleep until engine.poll_timeout(), a packet, a link or hardware-address change
//!     feed: handle_packet / link_changed / hw_address_changed / renew / release / ...
//! }
//! ```
//! Transmits are drained before events so that a RELEASE leaves while the address it
//! releases is still configured.

use crate::time::Instant;
use core::fmt;

/// A DHCP client engine (the DHCPv4 [`crate::dhcp4::Client`] and the DHCPv6
/// [`crate::dhcp6::Client`]).
pub trait Engine {
    /// A message to put on the wire.
    type Transmit;
    /// A change the caller must act on (or log).
    type Event;
    /// An address the caller may find in use by another host.
    type Addr: Copy + fmt::Display;
    /// The engine's state, as a name without data. Its `Display` (and serde) form is
    /// upper case with dashes (`BOUND`, `INIT-REBOOT`, `INFO-BOUND`), the form
    /// `netbond status` shows.
    type State: Copy + Eq + fmt::Debug + fmt::Display;

    /// A datagram arrived from a server. Anything that is not a valid reply to the
    /// exchange in progress is dropped and reported as an event with the reason.
    fn handle_packet(&mut self, now: Instant, bytes: &[u8]);
    /// Run the timers due at `now` (retransmission limits, T1, T2, expiry) without
    /// building a packet. [`Engine::poll_transmit`] does this itself.
    fn handle_timeout(&mut self, now: Instant);
    /// The next message to send now, if one is due.
    fn poll_transmit(&mut self, now: Instant) -> Option<Self::Transmit>;
    /// When the engine next needs `poll_transmit` or `handle_timeout`; `None` when
    /// nothing is pending (an idle engine costs no wakeups).
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event for the caller.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// The link lost or regained its carrier.
    fn link_changed(&mut self, now: Instant, up: bool);
    /// The interface's hardware address, at start and after every change (a bond
    /// failover with `fail_over_mac=active`). An engine that does not put it on the
    /// wire ignores it.
    fn hw_address_changed(&mut self, now: Instant, mac: [u8; 6]);
    /// Start again after [`Engine::stop`] or [`Engine::release`].
    fn start(&mut self, now: Instant);
    /// Stop without telling the server: the lease is reported lost (the caller decides
    /// whether to remove it) and nothing is sent until [`Engine::start`].
    fn stop(&mut self, now: Instant);
    /// Renew (or refresh) now rather than at T1.
    fn renew(&mut self, now: Instant);
    /// Give the lease back to its server and report it lost.
    fn release(&mut self, now: Instant);
    /// The caller found `addr` in use by another host: decline it.
    fn decline(&mut self, now: Instant, addr: Self::Addr);
    /// Send the message of the exchange in flight again now (same transaction), for when
    /// the caller knows the last one could not have reached anyone.
    fn resend_now(&mut self, now: Instant);
    /// The current state.
    fn state(&self) -> Self::State;
    /// Consecutive exchanges that ended without a lease, for status output.
    fn failures(&self) -> u32;
}
