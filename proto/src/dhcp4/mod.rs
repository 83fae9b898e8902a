//! A sans-IO DHCPv4 client (RFC 2131) that keeps one identity while the hardware address
//! under it changes.
//!
//! The caller tells the engine the interface's MAC with
//! [`Engine::hw_address_changed`](crate::Engine::hw_address_changed) (at start and on
//! every change), and every packet is built at [`Engine::poll_transmit`] with the MAC
//! given last as its `chaddr`. A change while a lease is configured (a bond failover with
//! `fail_over_mac=active`) keeps the lease, emits [`Event4::Reconfirming`] and broadcasts
//! an INIT-REBOOT-style REQUEST for the same address from the new MAC at once, while the
//! caller keeps the address configured. The client identifier is RFC 4361 (IAID +
//! DUID), so the server sees the same client whatever the MAC.
//!
//! The engine is driven through [`crate::Engine`]; see there for the loop. Files:
//! `commands.rs` (MAC, carrier, start/stop/renew/release/decline/resend), `timers.rs`,
//! `transmit.rs` (building packets), `receive.rs` (taking replies), `reply.rs` (checking
//! them), `lease.rs` (what comes out), `wire.rs` (the codec).

mod commands;
mod lease;
mod receive;
pub mod reply;
mod timers;
mod transmit;
pub mod wire;

pub use lease::{
    prefix_to_mask, Event4, Lease4, LostReason, MessageType, ReconfirmCause, Route4, Transmit4,
};
pub use timers::repair_timers;

use crate::duid::{rfc4361_client_id, Duid, Iaid};
use crate::engine::Engine;
use crate::time::{Instant, Rng};
use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// RFC 2131 section 3.1.5: wait at least this long after a DECLINE before trying again.
pub const DECLINE_BACKOFF: Duration = Duration::from_secs(10);
/// Shortest lease accepted as given; shorter ones are raised to this (a 0 s lease would
/// make a renewal storm; RFC 2131 4.4.5 uses 60 s as the smallest retransmit interval).
pub const MIN_LEASE_SECS: u32 = 60;
/// RFC 2131 4.4.5: in RENEWING and REBINDING never wait less than this between tries.
pub const MIN_RENEW_RETRY: Duration = Duration::from_secs(60);
/// The shortest renewal time accepted from a server (see [`repair_timers`]).
pub const MIN_T1_SECS: u32 = 30;
/// REQUESTs in REQUESTING before going back to DISCOVER.
pub const MAX_REQUEST_ATTEMPTS: u32 = 4;
/// RFC 8925 MIN_V6ONLY_WAIT: the shortest IPv6-only pause, whatever option 108 says.
pub const MIN_V6ONLY_WAIT: Duration = Duration::from_secs(300);
use crate::backoff::Failures;
pub use crate::backoff::{failure_backoff, FAILURE_RESET_AFTER, MAX_FAILURE_BACKOFF};

/// What the client sends as its identifier (option 61).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    /// RFC 4361: type 255, IAID, DUID. The default.
    Rfc4361 {
        /// The IAID.
        iaid: Iaid,
        /// The DUID shared with DHCPv6.
        duid: Duid,
    },
    /// Exact octets, for a server with fixed addresses keyed on an older identifier
    /// (e.g. the bare DUID the reference dhclient.conf sent).
    Raw(Vec<u8>),
}

impl ClientId {
    /// The option 61 value.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            ClientId::Rfc4361 { iaid, duid } => rfc4361_client_id(*iaid, duid),
            ClientId::Raw(b) => b.clone(),
        }
    }
}

/// Engine settings. [`Config::new`] gives the RFC's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Option 61.
    pub client_id: ClientId,
    /// Option 12, when set (and `fqdn` is not).
    pub hostname: Option<String>,
    /// Option 81 (RFC 4702), when set: this fully qualified name with flags E (wire
    /// encoding) and S (the server updates the A record), and then no option 12 (RFC
    /// 4702 section 3.1).
    pub fqdn: Option<String>,
    /// Option 60, when set.
    pub vendor_class: Option<Vec<u8>>,
    /// Option 77 (RFC 3004), when set: one user class (1 to 255 octets).
    pub user_class: Option<Vec<u8>>,
    /// RFC 4039: ask for the two-message exchange (option 80 in DISCOVER) and accept
    /// an ACK that carries option 80 while selecting.
    pub rapid_commit: bool,
    /// More options to send, as they are (the caller checks the codes: none the engine
    /// sends itself).
    pub extra_options: Vec<(u8, Vec<u8>)>,
    /// Extra option codes for the parameter request list.
    pub extra_request: Vec<u8>,
    /// First retransmission interval (RFC 2131: 4 s; the reference dhclient.conf: 2 s).
    pub initial_interval: Duration,
    /// Longest retransmission interval (RFC 2131: 64 s).
    pub max_interval: Duration,
    /// Give up on getting a lease after this long in DISCOVER/REQUEST (dhclient
    /// `timeout`), emit [`Event4::Timeout`], wait `retry`, start over. `None`: never.
    pub timeout: Option<Duration>,
    /// Pause after a timeout before starting over (dhclient `retry`).
    pub retry: Duration,
    /// How long to try INIT-REBOOT before falling back to DISCOVER (dhclient `reboot`).
    pub reboot: Duration,
    /// Ask servers to broadcast their replies while the client has no address (the
    /// BOOTP broadcast flag, RFC 2131 4.1): for interfaces that cannot receive a
    /// unicast to an unconfigured address, such as ipvlan, whose MAC is shared.
    pub broadcast_flag: bool,
    /// RFC 8925: ask for option 108 (IPv6-only preferred) and, when an OFFER (or the
    /// ACK to INIT-REBOOT) carries it, take no address and pause DHCPv4. Only for a
    /// host that works without IPv4 on this interface.
    pub ipv6_only_preferred: bool,
    /// The shortest such pause: [`MIN_V6ONLY_WAIT`], lowered only by tests.
    pub min_v6only_wait: Duration,
    /// Seed for xids and jitter.
    pub seed: u64,
}

impl Config {
    /// RFC defaults with the given identity.
    pub fn new(client_id: ClientId) -> Self {
        Config {
            client_id,
            hostname: None,
            fqdn: None,
            vendor_class: None,
            user_class: None,
            rapid_commit: false,
            extra_options: Vec::new(),
            extra_request: Vec::new(),
            initial_interval: Duration::from_secs(4),
            max_interval: Duration::from_secs(64),
            timeout: None,
            retry: Duration::from_secs(300),
            reboot: Duration::from_secs(10),
            broadcast_flag: false,
            ipv6_only_preferred: false,
            min_v6only_wait: MIN_V6ONLY_WAIT,
            seed: 1,
        }
    }
}

/// The RFC 2131 state the client is in, for status output and logs. Its display (and
/// serde) name is the RFC's, upper case: `BOUND`, `INIT-REBOOT`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "SCREAMING-KEBAB-CASE")
)]
pub enum State {
    /// Waiting to start a DISCOVER exchange (at start, or after a backoff).
    Init,
    /// DISCOVER sent, collecting OFFERs.
    Selecting,
    /// REQUEST for an OFFER sent.
    Requesting,
    /// A lease is configured; nothing to send until T1.
    Bound,
    /// Unicast REQUESTs to the server after T1.
    Renewing,
    /// Broadcast REQUESTs to any server after T2.
    Rebinding,
    /// A saved lease, before its first REQUEST.
    InitReboot,
    /// A saved lease being confirmed.
    Rebooting,
    /// The MAC changed (or the carrier came back) under a lease: confirming it.
    Reconfirming,
    /// After `stop` or `release`, until `start`.
    Stopped,
    /// RFC 8925: the server prefers IPv6-only; no DHCPv4 until the wait ends.
    Ipv6Only,
}

impl State {
    /// The name `Display` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Selecting => "SELECTING",
            State::Requesting => "REQUESTING",
            State::Bound => "BOUND",
            State::Renewing => "RENEWING",
            State::Rebinding => "REBINDING",
            State::InitReboot => "INIT-REBOOT",
            State::Rebooting => "REBOOTING",
            State::Reconfirming => "RECONFIRMING",
            State::Stopped => "STOPPED",
            State::Ipv6Only => "IPV6-ONLY",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request/retransmit cycle under a single xid.
#[derive(Debug, Clone)]
struct Exchange {
    xid: u32,
    started: Instant,
    next_tx: Instant,
    last_tx: Option<Instant>,
    interval: Duration,
    attempts: u32,
    /// The chaddr every packet of this exchange carried; replies must echo it.
    chaddr: Option<[u8; 6]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server: Ipv4Addr,
    address: Ipv4Addr,
}

/// The state with the data it needs (states as data: one source of truth).
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting until `.0` to start a DISCOVER exchange.
    Init(Instant),
    Selecting(Exchange),
    Requesting(Exchange, Offer),
    Bound,
    Renewing(Exchange),
    Rebinding(Exchange),
    /// INIT-REBOOT (before the first REQUEST) and REBOOTING (after), from a saved lease.
    Rebooting(Exchange),
    /// The MAC changed (or the link came back) while a lease was configured: REQUEST
    /// the same address, INIT-REBOOT style, from the current MAC; keep it meanwhile.
    Reconfirming(Exchange),
    /// After `release` or `stop`: nothing happens until `start`.
    Stopped,
    /// RFC 8925: DHCPv4 pauses until `.0` (or the link comes back).
    Ipv6Only(Instant),
}

#[derive(Debug, Clone)]
enum OneShot {
    Decline { address: Ipv4Addr, server: Ipv4Addr },
    Release { address: Ipv4Addr, server: Ipv4Addr },
}

/// The DHCPv4 client state machine.
#[derive(Debug)]
pub struct Client {
    config: Config,
    client_id: Vec<u8>,
    phase: Phase,
    /// The lease the caller has configured on the interface (what events told it).
    lease: Option<Lease4>,
    /// The last MAC the caller gave ([`Engine::hw_address_changed`]); packets are built
    /// with it, and a different one is a MAC change.
    mac: Option<[u8; 6]>,
    link_up: bool,
    /// When the current attempt to get a lease (DISCOVER side) began, for `timeout`.
    acquiring_since: Option<Instant>,
    oneshot: VecDeque<OneShot>,
    events: VecDeque<Event4>,
    rng: Rng,
    /// Consecutive exchanges that ended without a lease (NAK, DECLINE, REQUESTING given
    /// up), and the servers involved (NAKed us, whose address we declined or that never
    /// ACKed): their OFFERs are only taken when no other server's OFFER arrives before
    /// the DISCOVER would be retransmitted.
    failures: Failures<Ipv4Addr>,
    /// An OFFER from an avoided server, kept for the SELECTING exchange with this xid.
    fallback: Option<(u32, Offer)>,
}

impl Client {
    /// A client in INIT that sends its first DISCOVER at the first `poll_transmit`
    /// after it has been given the interface's MAC.
    pub fn new(config: Config, now: Instant) -> Self {
        let client_id = config.client_id.bytes();
        let rng = Rng::new(config.seed);
        Client {
            config,
            client_id,
            phase: Phase::Init(now),
            lease: None,
            mac: None,
            link_up: true,
            acquiring_since: None,
            oneshot: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            failures: Failures::default(),
            fallback: None,
        }
    }

    /// A client starting from a saved lease (its `acquired` rebased onto this engine's
    /// timeline by the caller). If it is still valid, the caller keeps the address
    /// configured and the engine enters INIT-REBOOT; otherwise this is [`Client::new`].
    pub fn from_saved(config: Config, saved: Lease4, now: Instant) -> Self {
        let mut c = Client::new(config, now);
        if saved.expires_at().is_none_or(|e| e > now) {
            c.lease = Some(saved);
            let ex = c.new_exchange(now);
            c.phase = Phase::Rebooting(ex);
        }
        c
    }

    /// New settings while running (a configuration reload): the options sent and the
    /// timing apply from the next message or timer on. The client identifier and the
    /// random seed stay those the client was created with: the server knows this
    /// client by the identifier, and changing it mid-lease would make it another client.
    pub fn set_config(&mut self, mut config: Config) {
        config.client_id = self.config.client_id.clone();
        config.seed = self.config.seed;
        self.config = config;
    }

    /// The lease the caller should have configured now, if any.
    pub fn lease(&self) -> Option<&Lease4> {
        self.lease.as_ref()
    }

    /// The option 61 octets this client sends.
    pub fn client_id(&self) -> &[u8] {
        &self.client_id
    }

    fn new_exchange(&mut self, now: Instant) -> Exchange {
        Exchange {
            xid: self.rng.next_u32(),
            started: now,
            next_tx: now,
            last_tx: None,
            interval: self.config.initial_interval,
            attempts: 0,
            chaddr: None,
        }
    }

    fn start_discover(&mut self, now: Instant) {
        if self.acquiring_since.is_none() {
            self.acquiring_since = Some(now);
        }
        self.fallback = None;
        let ex = self.new_exchange(now);
        self.phase = Phase::Selecting(ex);
    }

    /// An exchange ended without a lease (`reason`, caused by `server`): count it,
    /// remember the server, tell the caller once, and start over after the backoff (at
    /// least `floor`).
    fn fail(
        &mut self,
        now: Instant,
        server: Option<Ipv4Addr>,
        reason: &'static str,
        floor: Duration,
    ) {
        let (failures, wait) = self.failures.fail(now, server, &mut self.rng);
        let wait = wait.max(floor);
        self.events.push_back(Event4::Backoff {
            failures,
            wait,
            reason,
            server,
        });
        self.acquiring_since = None;
        if wait.is_zero() {
            self.start_discover(now);
        } else {
            self.fallback = None;
            self.phase = Phase::Init(now + wait);
        }
    }

    /// When an RFC 8925 pause ends, while DHCPv4 is paused.
    pub fn ipv6_only_until(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ipv6Only(at) => Some(at),
            _ => None,
        }
    }

    fn lose(&mut self, reason: LostReason) {
        if let Some(lease) = self.lease.take() {
            self.events.push_back(Event4::Lost { lease, reason });
        }
    }
}

/// The DHCPv4 client's side of the shared surface; the work is in `commands.rs`,
/// `timers.rs`, `transmit.rs` and `receive.rs`.
impl Engine for Client {
    type Transmit = Transmit4;
    type Event = Event4;
    type Addr = Ipv4Addr;
    type State = State;

    fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.receive(now, bytes);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit4> {
        self.transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout()
    }

    fn poll_event(&mut self) -> Option<Event4> {
        self.events.pop_front()
    }

    fn link_changed(&mut self, now: Instant, up: bool) {
        self.on_link(now, up);
    }

    fn hw_address_changed(&mut self, now: Instant, mac: [u8; 6]) {
        self.set_mac(now, mac);
    }

    fn start(&mut self, now: Instant) {
        self.begin(now);
    }

    fn stop(&mut self, _now: Instant) {
        self.halt();
    }

    fn renew(&mut self, now: Instant) {
        self.renew_now(now);
    }

    fn release(&mut self, _now: Instant) {
        self.release_lease();
    }

    fn decline(&mut self, now: Instant, addr: Ipv4Addr) {
        self.decline_addr(now, addr);
    }

    fn resend_now(&mut self, now: Instant) {
        self.resend(now);
    }

    fn state(&self) -> State {
        match &self.phase {
            Phase::Init(_) => State::Init,
            Phase::Selecting(_) => State::Selecting,
            Phase::Requesting(..) => State::Requesting,
            Phase::Bound => State::Bound,
            Phase::Renewing(_) => State::Renewing,
            Phase::Rebinding(_) => State::Rebinding,
            Phase::Rebooting(ex) if ex.last_tx.is_none() => State::InitReboot,
            Phase::Rebooting(_) => State::Rebooting,
            Phase::Reconfirming(_) => State::Reconfirming,
            Phase::Stopped => State::Stopped,
            Phase::Ipv6Only(_) => State::Ipv6Only,
        }
    }

    fn failures(&self) -> u32 {
        self.failures.count()
    }
}

#[cfg(test)]
mod tests;
