//! A sans-IO DHCPv4 client (RFC 2131) that keeps one identity while the hardware address
//! under it changes.
//!
//! The engine never caches the MAC for building packets: the caller passes the
//! interface's current MAC to [`Client::poll_transmit`], and the packet is built right
//! then with that `chaddr`. If the MAC differs from the one the configured lease was
//! acknowledged with (a bond failover with `fail_over_mac=active`), the engine at once
//! broadcasts an INIT-REBOOT-style REQUEST for the same address from the new MAC, while
//! the caller keeps the address configured. The client identifier is RFC 4361 (IAID +
//! DUID), so the server sees the same client whatever the MAC.
//!
//! # Driving it
//! ```text
//! loop {
//!     while let Some(tx) = client.poll_transmit(now, current_mac) { send(tx) }
//!     while let Some(ev) = client.poll_event() { apply(ev) }
//!     sleep until client.poll_timeout() or a packet/link event arrives
//!     feed: client.handle_packet(now, bytes) / client.link_changed(now, up)
//! }
//! ```
//! Transmits are drained before events so that a RELEASE leaves while the address it
//! releases is still configured.

mod lease;
pub mod reply;
pub mod wire;

pub use lease::{prefix_to_mask, Event4, Lease4, LostReason, MessageType, Route4, Transmit4};

use crate::duid::{rfc4361_client_id, Duid, Iaid};
use crate::time::{Instant, Rng};
use core::time::Duration;
use reply::{effective_prefix, Reply};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use wire::{opt, Builder, Message};

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
            seed: 1,
        }
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

#[derive(Debug, Clone)]
enum State {
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
    state: State,
    /// The lease the caller has configured on the interface (what events told it).
    lease: Option<Lease4>,
    /// The last MAC the caller gave us; a difference is a MAC change.
    mac: Option<[u8; 6]>,
    link_up: bool,
    /// When the current attempt to get a lease (DISCOVER side) began, for `timeout`.
    acquiring_since: Option<Instant>,
    oneshot: VecDeque<OneShot>,
    events: VecDeque<Event4>,
    rng: Rng,
    last_drop: Option<&'static str>,
    /// Option values the last accepted OFFER/ACK carried but that were unusable.
    ignored: Vec<&'static str>,
    /// Consecutive exchanges that ended without a lease (NAK, DECLINE, REQUESTING given
    /// up), and the servers involved (NAKed us, whose address we declined or that never
    /// ACKed): their OFFERs are only taken when no other server's OFFER arrives before
    /// the DISCOVER would be retransmitted.
    failures: Failures<Ipv4Addr>,
    /// An OFFER from an avoided server, kept for the SELECTING exchange with this xid.
    fallback: Option<(u32, Offer)>,
}

impl Client {
    /// A client in INIT that sends its first DISCOVER at the first `poll_transmit`.
    pub fn new(config: Config, now: Instant) -> Self {
        let client_id = config.client_id.bytes();
        let rng = Rng::new(config.seed);
        Client {
            config,
            client_id,
            state: State::Init(now),
            lease: None,
            mac: None,
            link_up: true,
            acquiring_since: None,
            oneshot: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            last_drop: None,
            ignored: Vec::new(),
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
            c.state = State::Rebooting(ex);
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

    /// The RFC 2131 name of the current state, for status output and logs.
    pub fn state_name(&self) -> &'static str {
        match &self.state {
            State::Init(_) => "INIT",
            State::Selecting(_) => "SELECTING",
            State::Requesting(..) => "REQUESTING",
            State::Bound => "BOUND",
            State::Renewing(_) => "RENEWING",
            State::Rebinding(_) => "REBINDING",
            State::Rebooting(ex) if ex.last_tx.is_none() => "INIT-REBOOT",
            State::Rebooting(_) => "REBOOTING",
            State::Reconfirming(_) => "RECONFIRMING",
            State::Stopped => "STOPPED",
        }
    }

    /// The lease the caller should have configured now, if any.
    pub fn lease(&self) -> Option<&Lease4> {
        self.lease.as_ref()
    }

    /// The option 61 octets this client sends.
    pub fn client_id(&self) -> &[u8] {
        &self.client_id
    }

    /// Why the last packet handed to [`Client::handle_packet`] was dropped, if it was.
    pub fn last_drop(&self) -> Option<&'static str> {
        self.last_drop
    }

    /// Option values of the last accepted OFFER or ACK that were dropped as unusable
    /// (a host name with shell metacharacters, an MTU below 68, a malformed option 121),
    /// each with the reason, for the caller's log. Cleared by every accepted reply.
    pub fn ignored_options(&self) -> &[&'static str] {
        &self.ignored
    }

    /// Consecutive exchanges that ended without a lease, for status output.
    pub fn failures(&self) -> u32 {
        self.failures.count()
    }

    /// The next configuration change for the caller.
    pub fn poll_event(&mut self) -> Option<Event4> {
        self.events.pop_front()
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
        self.state = State::Selecting(ex);
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
            self.state = State::Init(now + wait);
        }
    }

    fn lose(&mut self, reason: LostReason) {
        if let Some(lease) = self.lease.take() {
            self.events.push_back(Event4::Lost { lease, reason });
        }
    }

    /// The next instant at which the engine needs `poll_transmit` (or
    /// [`Client::handle_timeout`]) to be called. `None` means nothing is pending: an idle
    /// bound client with an infinite lease has no timer at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.oneshot.is_empty() {
            return Some(Instant::ZERO);
        }
        let expiry = self.lease.as_ref().and_then(Lease4::expires_at);
        let ex_tx = |ex: &Exchange| if self.link_up { Some(ex.next_tx) } else { None };
        let state_t = match &self.state {
            State::Init(at) => self.link_up.then_some(*at),
            State::Selecting(ex) | State::Requesting(ex, _) => {
                let give_up = match (self.config.timeout, self.acquiring_since) {
                    (Some(t), Some(s)) => Some(s + t),
                    _ => None,
                };
                min_opt(ex_tx(ex), give_up)
            }
            State::Bound => self.lease.as_ref().and_then(Lease4::renew_at),
            State::Renewing(ex) => {
                min_opt(ex_tx(ex), self.lease.as_ref().and_then(Lease4::rebind_at))
            }
            State::Rebinding(ex) => ex_tx(ex),
            State::Rebooting(ex) => min_opt(ex_tx(ex), Some(ex.started + self.config.reboot)),
            State::Reconfirming(ex) => {
                min_opt(ex_tx(ex), self.lease.as_ref().and_then(Lease4::rebind_at))
            }
            State::Stopped => None,
        };
        min_opt(state_t, expiry)
    }

    /// Run the timers that are due at `now` (expiry, T1, T2, give-up times) without
    /// sending. `poll_transmit` does this itself.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(exp) = self.lease.as_ref().and_then(Lease4::expires_at) {
            if now >= exp {
                self.lose(LostReason::Expired);
                if !matches!(
                    self.state,
                    State::Stopped | State::Selecting(_) | State::Requesting(..)
                ) {
                    self.start_discover(now);
                }
            }
        }
        let renew_at = self.lease.as_ref().and_then(Lease4::renew_at);
        let rebind_at = self.lease.as_ref().and_then(Lease4::rebind_at);
        match &mut self.state {
            State::Init(at) if now >= *at && self.link_up => self.start_discover(now),
            State::Bound if renew_at.is_some_and(|t| now >= t) => {
                let ex = self.new_exchange(now);
                self.state = State::Renewing(ex);
                self.handle_timeout(now);
            }
            State::Renewing(_) if rebind_at.is_some_and(|t| now >= t) => {
                let ex = self.new_exchange(now);
                self.state = State::Rebinding(ex);
            }
            // A re-confirmation begun before T2 hands over to REBINDING at T2; one begun
            // after T2 keeps asking for the address INIT-REBOOT style until expiry.
            State::Reconfirming(ex) if rebind_at.is_some_and(|t| now >= t && ex.started < t) => {
                let ex = self.new_exchange(now);
                self.state = State::Rebinding(ex);
            }
            State::Rebooting(ex) if now >= ex.started + self.config.reboot => {
                // No answer to INIT-REBOOT: look for any server. The saved lease stays
                // configured until it expires (RFC 2131 3.2 allows using it meanwhile).
                self.start_discover(now);
            }
            State::Selecting(_) | State::Requesting(..) => {
                if let (Some(t), Some(since)) = (self.config.timeout, self.acquiring_since) {
                    if now >= since + t {
                        self.events.push_back(Event4::Timeout);
                        self.acquiring_since = None;
                        self.state = State::Init(now + self.config.retry);
                    }
                }
            }
            _ => {}
        }
    }

    /// Tell the engine the interface's current MAC. A change while a lease is
    /// configured starts the re-confirmation at once; `poll_transmit` notices changes
    /// by itself too, so calling this is optional.
    pub fn set_mac(&mut self, now: Instant, mac: [u8; 6]) {
        let changed = self.mac.is_some_and(|m| m != mac);
        self.mac = Some(mac);
        if !changed {
            return;
        }
        match &self.state {
            State::Bound | State::Renewing(_) | State::Rebinding(_) | State::Reconfirming(_)
                if self.lease.is_some() =>
            {
                let ex = self.new_exchange(now);
                self.state = State::Reconfirming(ex);
            }
            State::Selecting(_) | State::Requesting(..) | State::Rebooting(_) => {
                // The server must see the new chaddr at once; a fresh xid keeps replies
                // to the old chaddr from matching.
                let xid = self.rng.next_u32();
                if let State::Selecting(ex) | State::Requesting(ex, _) | State::Rebooting(ex) =
                    &mut self.state
                {
                    ex.xid = xid;
                    ex.chaddr = None;
                    ex.next_tx = now;
                }
            }
            _ => {}
        }
    }

    /// The link went down or came back. Down: stop transmitting (the lease is kept until
    /// it expires). Up: re-confirm a configured lease at once (RFC 2131 3.2: the client
    /// may have moved), or start a fresh DISCOVER without waiting out the backoff.
    pub fn link_changed(&mut self, now: Instant, up: bool) {
        let was = self.link_up;
        self.link_up = up;
        if !up || was {
            return;
        }
        if matches!(self.state, State::Stopped) {
            return;
        }
        if self.lease.is_some() {
            let ex = self.new_exchange(now);
            self.state = State::Reconfirming(ex);
            return;
        }
        self.acquiring_since = None;
        match &mut self.state {
            // Mid-exchange: send again now with a fresh backoff but the same xid, so a
            // reply to what was already sent still counts (a short carrier blip, or a
            // stale "down" event, must not cost a whole exchange).
            State::Selecting(ex) | State::Requesting(ex, _) => {
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
    pub fn resend_now(&mut self, now: Instant) {
        match &mut self.state {
            State::Selecting(ex)
            | State::Requesting(ex, _)
            | State::Rebooting(ex)
            | State::Reconfirming(ex)
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
    pub fn decline(&mut self, now: Instant, address: Ipv4Addr) {
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
    pub fn release(&mut self, _now: Instant) {
        if let Some(lease) = self.lease.as_ref() {
            self.oneshot.push_back(OneShot::Release {
                address: lease.address,
                server: lease.server,
            });
        }
        self.lose(LostReason::Released);
        self.state = State::Stopped;
    }

    /// Stop without telling the server; the lease is reported lost so the caller removes
    /// the address.
    pub fn stop(&mut self) {
        self.lose(LostReason::Stopped);
        self.state = State::Stopped;
    }

    /// Start again after `stop`/`release`, or restart a stalled acquisition now.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.state, State::Stopped | State::Init(_)) {
            self.acquiring_since = None;
            self.start_discover(now);
        }
    }

    /// Renew now (the `netbond renew` command): from BOUND, go to RENEWING at once.
    pub fn renew(&mut self, now: Instant) {
        match self.state {
            State::Bound => {
                let ex = self.new_exchange(now);
                self.state = State::Renewing(ex);
            }
            State::Stopped | State::Init(_) => self.start(now),
            _ => {}
        }
    }

    /// The next packet to send, built now with `mac` as chaddr, or `None`.
    pub fn poll_transmit(&mut self, now: Instant, mac: [u8; 6]) -> Option<Transmit4> {
        self.set_mac(now, mac);
        if let Some(shot) = self.oneshot.pop_front() {
            return Some(self.build_oneshot(now, shot, mac));
        }
        self.handle_timeout(now);
        if !self.link_up {
            return None;
        }
        self.take_fallback(now);
        let lease_addr = self.lease.as_ref().map(|l| l.address);
        let lease_server = self.lease.as_ref().map(|l| l.server);
        let rebind_at = self.lease.as_ref().and_then(Lease4::rebind_at);
        let expires_at = self.lease.as_ref().and_then(Lease4::expires_at);
        let (initial, max) = (self.config.initial_interval, self.config.max_interval);
        let jitter = self.rng.range_i64(-1000, 1000);
        let (kind, ex, src, dst, ciaddr, requested, server_id) = match &mut self.state {
            State::Selecting(ex) if now >= ex.next_tx => {
                schedule_backoff(ex, now, initial, max, jitter);
                let req = lease_addr;
                (
                    MessageType::Discover,
                    ex,
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::BROADCAST,
                    Ipv4Addr::UNSPECIFIED,
                    req,
                    None,
                )
            }
            State::Requesting(ex, offer) if now >= ex.next_tx => {
                if ex.attempts >= MAX_REQUEST_ATTEMPTS {
                    let server = offer.server;
                    self.fail(
                        now,
                        Some(server),
                        "no valid ACK to the REQUESTs",
                        Duration::ZERO,
                    );
                    return self.poll_transmit(now, mac);
                }
                let o = *offer;
                schedule_backoff(ex, now, initial, max, jitter);
                (
                    MessageType::Request,
                    ex,
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::BROADCAST,
                    Ipv4Addr::UNSPECIFIED,
                    Some(o.address),
                    Some(o.server),
                )
            }
            State::Rebooting(ex) | State::Reconfirming(ex) if now >= ex.next_tx => {
                schedule_backoff(ex, now, initial, max, jitter);
                (
                    MessageType::Request,
                    ex,
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::BROADCAST,
                    Ipv4Addr::UNSPECIFIED,
                    lease_addr,
                    None,
                )
            }
            State::Renewing(ex) if now >= ex.next_tx => {
                let addr = lease_addr?;
                schedule_half_remaining(ex, now, rebind_at);
                (
                    MessageType::Request,
                    ex,
                    addr,
                    lease_server?,
                    addr,
                    None,
                    None,
                )
            }
            State::Rebinding(ex) if now >= ex.next_tx => {
                let addr = lease_addr?;
                schedule_half_remaining(ex, now, expires_at);
                (
                    MessageType::Request,
                    ex,
                    addr,
                    Ipv4Addr::BROADCAST,
                    addr,
                    None,
                    None,
                )
            }
            _ => return None,
        };
        ex.chaddr = Some(mac);
        ex.last_tx = Some(now);
        ex.attempts += 1;
        let secs = u16::try_from((now - ex.started).as_secs()).unwrap_or(u16::MAX);
        let xid = ex.xid;
        let mut b = Builder::request(xid, secs, ciaddr, mac);
        if self.config.broadcast_flag && ciaddr.is_unspecified() {
            b.broadcast_flag();
        }
        b.option(opt::MESSAGE_TYPE, &[kind.code()]);
        b.option(opt::CLIENT_ID, &self.client_id);
        if let Some(ip) = requested {
            b.option_ip(opt::REQUESTED_IP, ip);
        }
        if let Some(ip) = server_id {
            b.option_ip(opt::SERVER_ID, ip);
        }
        b.option(opt::MAX_MESSAGE_SIZE, &1500u16.to_be_bytes());
        let mut prl = vec![
            opt::SUBNET_MASK,
            opt::ROUTER,
            opt::DNS,
            opt::HOSTNAME,
            opt::DOMAIN,
            opt::MTU,
            opt::BROADCAST,
            opt::NTP,
            opt::LEASE_TIME,
            opt::SERVER_ID,
            opt::RENEWAL_TIME,
            opt::REBINDING_TIME,
            opt::DOMAIN_SEARCH,
            opt::CLASSLESS_ROUTES,
            opt::STATIC_ROUTES,
        ];
        for c in &self.config.extra_request {
            if !prl.contains(c) {
                prl.push(*c);
            }
        }
        b.option(opt::PARAM_REQUEST, &prl);
        if let Some(f) = &self.config.fqdn {
            // Flags S (0x01) and E (0x04); RCODE1/RCODE2 0 (deprecated, RFC 4702 2.2).
            let mut v = vec![0x05, 0, 0];
            v.extend_from_slice(&wire::dns_name_wire(f, true));
            b.option(opt::CLIENT_FQDN, &v);
        } else if let Some(h) = &self.config.hostname {
            b.option(opt::HOSTNAME, h.as_bytes());
        }
        if let Some(v) = &self.config.vendor_class {
            b.option(opt::VENDOR_CLASS, v);
        }
        if let Some(u) = self.config.user_class.as_ref().filter(|u| !u.is_empty()) {
            let n = u.len().min(255);
            let mut v = vec![n as u8];
            v.extend_from_slice(&u[..n]);
            b.option(opt::USER_CLASS, &v);
        }
        for (code, data) in &self.config.extra_options {
            b.option(*code, data);
        }
        if self.config.rapid_commit && kind == MessageType::Discover {
            b.option(opt::RAPID_COMMIT, &[]);
        }
        Some(Transmit4 {
            payload: b.finish(),
            src,
            dst,
            chaddr: mac,
            kind,
        })
    }

    /// SELECTING is about to retransmit the DISCOVER and only an avoided server
    /// answered: request its offer after all (it may be the only server there is).
    fn take_fallback(&mut self, now: Instant) {
        let State::Selecting(ex) = &self.state else {
            return;
        };
        if now < ex.next_tx || ex.last_tx.is_none() {
            return;
        }
        let (xid, started) = (ex.xid, ex.started);
        match self.fallback.take() {
            Some((x, offer)) if x == xid => {
                let mut ex = self.new_exchange(now);
                ex.xid = xid;
                ex.started = started;
                self.state = State::Requesting(ex, offer);
            }
            _ => {}
        }
    }

    fn build_oneshot(&mut self, _now: Instant, shot: OneShot, mac: [u8; 6]) -> Transmit4 {
        let xid = self.rng.next_u32();
        let (kind, ciaddr, src, dst, address, server) = match shot {
            OneShot::Decline { address, server } => (
                MessageType::Decline,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                address,
                server,
            ),
            OneShot::Release { address, server } => (
                MessageType::Release,
                address,
                address,
                server,
                address,
                server,
            ),
        };
        let mut b = Builder::request(xid, 0, ciaddr, mac);
        b.option(opt::MESSAGE_TYPE, &[kind.code()]);
        b.option(opt::CLIENT_ID, &self.client_id);
        if kind == MessageType::Decline {
            b.option_ip(opt::REQUESTED_IP, address);
        }
        b.option_ip(opt::SERVER_ID, server);
        Transmit4 {
            payload: b.finish(),
            src,
            dst,
            chaddr: mac,
            kind,
        }
    }

    /// Feed a received DHCP payload (UDP data from port 67). Anything that is not a
    /// valid reply to our current exchange is dropped; [`Client::last_drop`] says why.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.last_drop = None;
        if let Err(why) = self.process(now, bytes) {
            self.last_drop = Some(why);
        }
    }

    fn process(&mut self, now: Instant, bytes: &[u8]) -> Result<(), &'static str> {
        let msg = Message::parse(bytes)?;
        if msg.op == 2 && msg.option(opt::MESSAGE_TYPE) == Some(&[9]) {
            return Err("FORCERENEW ignored: it is only honoured with authentication (RFC 6704), which is not configured");
        }
        let reply = Reply::from_message(&msg, &self.client_id)?;
        let ignored = reply.ignored.clone();
        let ex = match &self.state {
            State::Selecting(ex)
            | State::Requesting(ex, _)
            | State::Renewing(ex)
            | State::Rebinding(ex)
            | State::Rebooting(ex)
            | State::Reconfirming(ex) => ex,
            _ => return Err("no exchange in progress"),
        };
        if reply.xid != ex.xid {
            return Err("transaction id is not ours");
        }
        if ex.chaddr != Some(reply.chaddr) {
            return Err("chaddr is not the one our request carried");
        }
        let sent_at = ex.last_tx.unwrap_or(now);
        let ex_chaddr = reply.chaddr;
        match (&self.state, reply.kind) {
            (State::Selecting(ex), MessageType::Offer) => {
                let offer = Offer {
                    server: reply.server,
                    address: reply.yiaddr,
                };
                if self.failures.avoids(&offer.server) {
                    // Wait for other servers until the DISCOVER is due again.
                    let xid = ex.xid;
                    if self.fallback.as_ref().is_none_or(|(x, _)| *x != xid) {
                        self.fallback = Some((xid, offer));
                    }
                    return Ok(());
                }
                let mut ex = self.new_exchange(now);
                // REQUEST keeps the DISCOVER's xid and secs base (RFC 2131 4.4.1).
                if let State::Selecting(old) = &self.state {
                    ex.xid = old.xid;
                    ex.started = old.started;
                }
                self.state = State::Requesting(ex, offer);
                // Reported once, from the ACK that actually configures the values.
                self.ignored.clear();
                Ok(())
            }
            // RFC 4039: the server committed the address at once; only when we asked and
            // it says so (option 80), else an ACK here answers someone else's REQUEST.
            (State::Selecting(_), MessageType::Ack)
                if self.config.rapid_commit && msg.option(opt::RAPID_COMMIT).is_some() =>
            {
                self.accept_ack(now, reply, sent_at, ex_chaddr);
                self.ignored = ignored;
                Ok(())
            }
            (State::Selecting(_), _) => Err("not an OFFER while selecting"),
            (_, MessageType::Offer) => Err("OFFER when not selecting"),
            (State::Requesting(_, offer), kind) if reply.server != offer.server => {
                let _ = kind;
                Err("reply from a server other than the one selected")
            }
            (State::Requesting(_, offer), MessageType::Ack) if reply.yiaddr != offer.address => {
                Err("ACK for an address other than the one requested")
            }
            (_, MessageType::Nak) => {
                self.lose(LostReason::Nak);
                self.fail(now, Some(reply.server), "DHCPNAK", Duration::ZERO);
                Ok(())
            }
            (_, MessageType::Ack) => {
                self.accept_ack(now, reply, sent_at, ex_chaddr);
                self.ignored = ignored;
                Ok(())
            }
            _ => Err("unexpected message type"),
        }
    }

    fn accept_ack(&mut self, now: Instant, r: Reply, sent_at: Instant, chaddr: [u8; 6]) {
        let p = &r.params;
        let lease_secs = p.lease_secs.map(|l| l.max(MIN_LEASE_SECS));
        let (t1, t2) = match lease_secs {
            None => (u32::MAX, u32::MAX),
            Some(l) => repair_timers(l, p.t1, p.t2),
        };
        let new = Lease4 {
            address: r.yiaddr,
            prefix_len: effective_prefix(p, r.yiaddr),
            server: r.server,
            routers: p.routers.clone(),
            dns: p.dns.clone(),
            domain: p.domain.clone(),
            search: p.search.clone(),
            hostname: p.hostname.clone(),
            mtu: p.mtu,
            ntp: p.ntp.clone(),
            routes: p.routes.clone(),
            static_routes: p.static_routes.clone(),
            lease_secs,
            t1_secs: t1,
            t2_secs: t2,
            acquired: sent_at,
            chaddr,
        };
        let ev = match self.lease.take() {
            None => Event4::Bound(new.clone()),
            Some(old) if old.address == new.address => Event4::Renewed(new.clone()),
            Some(old) => Event4::Changed {
                old: Box::new(old),
                new: new.clone(),
            },
        };
        self.failures.bound(now, !matches!(ev, Event4::Renewed(_)));
        self.events.push_back(ev);
        self.lease = Some(new);
        self.acquiring_since = None;
        self.state = State::Bound;
    }
}

/// RFC 2131 4.1: 4, 8, 16, 32, 64 s, each randomised by -1..+1 s.
fn schedule_backoff(
    ex: &mut Exchange,
    now: Instant,
    initial: Duration,
    max: Duration,
    jitter_ms: i64,
) {
    let base = if ex.attempts == 0 {
        initial
    } else {
        (ex.interval * 2).min(max)
    };
    ex.interval = base;
    let ms = i64::try_from(base.as_millis()).unwrap_or(i64::MAX);
    let wait = (ms + jitter_ms).max(500) as u64;
    ex.next_tx = now + Duration::from_millis(wait);
}

/// RFC 2131 4.4.5: wait half the time left until `until`, but at least 60 s.
fn schedule_half_remaining(ex: &mut Exchange, now: Instant, until: Option<Instant>) {
    let half = until.map(|u| (u - now) / 2).unwrap_or(MIN_RENEW_RETRY);
    ex.next_tx = now + half.max(MIN_RENEW_RETRY);
}

/// T1 and T2 from options 58/59, defaulting to 0.5 and 0.875 of the lease and repaired
/// so that 0 < T1 < T2 < lease. T1 is also kept at or above [`MIN_T1_SECS`] (or half
/// the lease when that is shorter), so a server cannot make the client renew every
/// second.
pub fn repair_timers(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    let def_t1 = lease / 2;
    let def_t2 = (u64::from(lease) * 7 / 8) as u32;
    let floor = MIN_T1_SECS.min(def_t1).max(1);
    let t2 = match t2 {
        Some(t) if t > floor && t < lease => t,
        _ => def_t2,
    };
    let t1 = match t1 {
        Some(t) if t >= floor && t < t2 => t,
        Some(t) if t > 0 && t < floor && floor < t2 => floor,
        _ if def_t1 < t2 => def_t1,
        _ => ((u64::from(t2) * 4 / 7) as u32).max(1),
    };
    (t1, t2)
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests;
