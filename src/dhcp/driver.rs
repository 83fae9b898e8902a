//! The one DHCP driver, generic over the address family.
//!
//! A [`Driver`] owns a sans-IO engine (anything implementing
//! [`netbond_proto::Engine`]) and runs it the same way for both families: inputs (a
//! datagram, the carrier, the interface's MAC from netlink, a command) go to the engine
//! with the time; its transmits are sent, then its events applied; the task sleeps until
//! the engine's next deadline. What really differs between DHCPv4 and DHCPv6 is behind
//! [`Family`]: the sockets (a packet socket and ARP for v4; UDP 546 and the router
//! advertisement watcher for v6) and how a lease reaches the kernel (`v4.rs`, `v6.rs`).

use crate::dhcp::shared::Shared;
use crate::logging::debug;
use netbond_proto::{Engine, Instant};
use std::future::Future;

/// Await `f` if there is one, otherwise never complete (a socket that is not open).
pub async fn maybe<F: Future>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The engine's state name type, for a family.
pub type StateOf<F> = <<F as Family>::Engine as Engine>::State;
/// The engine's event type, for a family.
pub type EventOf<F> = <<F as Family>::Engine as Engine>::Event;

/// What one address family does differently: its sockets and how its leases are
/// applied. Everything else is [`Driver`]'s.
#[allow(async_fn_in_trait)] // only used with concrete families, whose futures are Send
pub trait Family: Sized {
    /// The log and event prefix: `dhcp4` or `dhcp6`.
    const NAME: &'static str;
    /// The engine this family drives.
    type Engine: Engine;
    /// What the family's sockets deliver.
    type Input;
    /// A lease as the engine hands it over.
    type Lease: Clone;
    /// The family's object in `netbond status --json`.
    type Status;
    /// The engine's STOPPED state.
    const STOPPED: StateOf<Self>;

    /// Open the sockets on a (new) interface index.
    fn open(&mut self, ifindex: u32, ifname: &str, now: Instant);
    /// Whether a socket is missing (it failed, or never opened) and should be opened
    /// again when the carrier comes back.
    fn needs_open(&self) -> bool;
    /// The interface vanished: its sockets and addresses are gone with it.
    fn interface_gone(&mut self, engine: &Self::Engine);
    /// The interface's MAC, as the engine was just told (see
    /// [`Driver::hw_address_changed`]).
    fn hw_address(&mut self, _mac: [u8; 6]) {}
    /// The carrier came back (the engine has been told).
    fn link_up(&mut self, _now: Instant) {}
    /// The next input from the family's sockets; never completes without sockets.
    async fn input(&self) -> Self::Input;
    /// Hand an input to the engine (or to the family's own side work).
    fn on_input(
        &mut self,
        engine: &mut Self::Engine,
        now: Instant,
        sh: &Shared,
        input: Self::Input,
    );
    /// Deadlines of the family's own (a conflict probe, a router solicitation, a
    /// transmit held back), besides the engine's.
    fn deadline(&self, engine: &Self::Engine) -> Option<Instant>;
    /// Before the engine is polled: put a saved lease back on the interface, run the
    /// family's side timers.
    async fn prepare(&mut self, engine: &mut Self::Engine, sh: &mut Shared);
    /// Send what the engine has due now.
    async fn transmit(&mut self, engine: &mut Self::Engine, sh: &mut Shared, now: Instant);
    /// Act on one engine event. `prev` is the state at the end of the previous pump.
    async fn on_event(
        &mut self,
        engine: &Self::Engine,
        sh: &mut Shared,
        ev: EventOf<Self>,
        prev: Option<StateOf<Self>>,
    );
    /// The lease an event gives up, if it is a loss.
    fn lost(ev: EventOf<Self>) -> Option<Self::Lease>;
    /// The client was stopped (released first when `release`), and `lost` is the lease
    /// it held: deconfigure (when `deconfigure`), tell monitors and hooks, forget the
    /// lease file (when released).
    async fn stopped(
        &mut self,
        sh: &mut Shared,
        lost: Option<Self::Lease>,
        release: bool,
        deconfigure: bool,
    );
    /// Started again after a stop (the engine has been told).
    fn restarted(&mut self, _now: Instant) {}
    /// Online (see `online.rs`).
    fn online(&self, engine: &Self::Engine) -> bool;
    /// Whether the engine holds a lease with an address.
    fn has_lease(engine: &Self::Engine) -> bool;
    /// The family's part of the one-line status (`v4 10.0.0.5/24`, `v6 SOLICITING`).
    fn short_status(engine: &Self::Engine) -> String;
    /// The family's object in `netbond status --json`.
    fn status_json(&self, engine: &Self::Engine, now: Instant) -> Self::Status;
    /// After the transmits, before the engine's events are applied (v4: the
    /// link-local and static fallbacks).
    async fn before_events(&mut self, _engine: &Self::Engine, _sh: &mut Shared) {}
    /// After the engine's events are applied (v6: the delegated prefix downstream).
    async fn after_events(&mut self, _engine: &Self::Engine, _sh: &mut Shared) {}
    /// The SIGUSR1 log line.
    fn log_status(engine: &Self::Engine, ifname: &str, now: Instant);
}

/// One family's DHCP client on one interface: its engine and its sockets.
pub struct Driver<F: Family> {
    pub(crate) engine: F::Engine,
    pub(crate) fam: F,
    last_state: Option<StateOf<F>>,
}

impl<F: Family> Driver<F> {
    /// A driver for `engine` with the family's side `fam`.
    pub fn with(engine: F::Engine, fam: F) -> Self {
        Driver {
            engine,
            fam,
            last_state: None,
        }
    }

    /// The interface exists (at start or after re-creation): open the sockets and tell
    /// the engine the carrier and the MAC netlink reported.
    pub fn attach(&mut self, now: Instant, info: &crate::net::link::LinkInfo) {
        if let Some(mac) = info.mac {
            self.hw_address_changed(now, mac);
        }
        self.fam.open(info.index, &info.name, now);
        self.link_changed(now, info.carrier, info.index, &info.name);
    }

    /// The interface's MAC as netlink reported it (RTM_NEWLINK): the engine's one MAC
    /// source. A DHCPv4 engine holding a lease re-confirms it from the new MAC at once.
    pub fn hw_address_changed(&mut self, now: Instant, mac: [u8; 6]) {
        self.engine.hw_address_changed(now, mac);
        self.fam.hw_address(mac);
    }

    /// Carrier change; a socket that failed is reopened when the link comes up.
    pub fn link_changed(&mut self, now: Instant, up: bool, ifindex: u32, ifname: &str) {
        if up && self.fam.needs_open() {
            self.fam.open(ifindex, ifname, now);
        }
        self.engine.link_changed(now, up);
        if up {
            self.fam.link_up(now);
        }
    }

    /// The interface vanished.
    pub fn interface_gone(&mut self, now: Instant) {
        self.fam.interface_gone(&self.engine);
        self.engine.link_changed(now, false);
    }

    /// The next input from this family's sockets.
    pub async fn input(&self) -> F::Input {
        self.fam.input().await
    }

    /// An input from this family's sockets.
    pub fn on_input(&mut self, now: Instant, sh: &Shared, input: F::Input) {
        self.fam.on_input(&mut self.engine, now, sh, input);
    }

    /// The next deadline: the engine's or the family's own.
    pub fn deadline(&self) -> Option<Instant> {
        [self.engine.poll_timeout(), self.fam.deadline(&self.engine)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Send what is due, then apply what changed: transmits first, so that a RELEASE
    /// leaves while the address it releases is still configured.
    pub async fn pump(&mut self, sh: &mut Shared) {
        self.fam.prepare(&mut self.engine, sh).await;
        let now = sh.clock.now();
        self.fam.transmit(&mut self.engine, sh, now).await;
        let prev = self.last_state;
        let state = self.engine.state();
        if prev != Some(state) {
            let was = prev.map(|s| s.to_string()).unwrap_or_default();
            debug!("{}: {}: state {was} -> {state}", F::NAME, sh.ifname);
            self.last_state = Some(state);
        }
        self.fam.before_events(&self.engine, sh).await;
        while let Some(ev) = self.engine.poll_event() {
            self.fam.on_event(&self.engine, sh, ev, prev).await;
        }
        self.fam.after_events(&self.engine, sh).await;
    }

    /// Ask for a renewal now.
    pub fn renew(&mut self, now: Instant) {
        self.engine.renew(now);
    }

    /// Send the message of the exchange in flight again now, same transaction.
    pub fn resend_now(&mut self, now: Instant) {
        self.engine.resend_now(now);
    }

    /// Stop: release first when `release` (sent while the address is still there),
    /// then remove what was configured when `deconfigure`.
    pub async fn shutdown(&mut self, sh: &mut Shared, release: bool, deconfigure: bool) {
        let now = sh.clock.now();
        if release {
            self.engine.release(now);
            // What is due now: the one RELEASE (DHCPv6 may retransmit its Release, but
            // RFC 8415 18.2.7 lets a client that is going away skip that).
            self.fam.transmit(&mut self.engine, sh, now).await;
        }
        self.engine.stop(now);
        let mut lost = None;
        while let Some(ev) = self.engine.poll_event() {
            if let Some(l) = F::lost(ev) {
                lost = Some(l);
            }
        }
        self.fam.stopped(sh, lost, release, deconfigure).await;
    }

    /// Start again after [`Driver::shutdown`] (the `dhcp4 start` / `dhcp6 start`
    /// commands), or restart a stalled acquisition now.
    pub fn start(&mut self, now: Instant) {
        let was_stopped = self.is_stopped();
        self.engine.start(now);
        if was_stopped {
            self.fam.restarted(now);
        }
    }

    /// `dhcp4` or `dhcp6`.
    pub fn name(&self) -> &'static str {
        F::NAME
    }

    /// The engine's state.
    pub fn state(&self) -> StateOf<F> {
        self.engine.state()
    }

    /// True after a stop, until `start`.
    pub fn is_stopped(&self) -> bool {
        self.engine.state() == F::STOPPED
    }

    /// Online (see `online.rs`).
    pub fn online(&self) -> bool {
        self.fam.online(&self.engine)
    }

    /// Whether a lease with an address is held.
    pub fn has_lease(&self) -> bool {
        F::has_lease(&self.engine)
    }

    /// The family's part of the one-line status.
    pub fn short_status(&self) -> String {
        F::short_status(&self.engine)
    }

    /// The family's object in `netbond status --json`.
    pub fn status_json(&self, now: Instant) -> F::Status {
        self.fam.status_json(&self.engine, now)
    }

    /// The SIGUSR1 log line.
    pub fn log_status(&self, ifname: &str, now: Instant) {
        F::log_status(&self.engine, ifname, now);
    }
}
