//! DHCPv6 client engine (RFC 8415), sans-IO.
//!
//! The [`Client`] is driven by the caller exactly like the DHCPv4 engine:
//!
//! - feed datagrams received on UDP port 546 to [`Client::handle_packet`];
//! - call [`Client::poll_transmit`] (which also runs due timers) until it returns `None`
//!   and send each [`Transmit6`] to UDP port 547 of [`Transmit6::dst`];
//! - drain [`Client::poll_event`];
//! - sleep until [`Client::poll_timeout`] (or the next packet) and repeat.
//!
//! Exchanges implemented: Solicit/Advertise/Request/Reply (with server selection by
//! preference and optional Rapid Commit), Renew at T1, Rebind at T2, expiry, Confirm
//! after a restart or a link flap, Decline, Release and Information-request with the
//! Information Refresh Time. Retransmission follows RFC 8415 section 15.
//!
//! Every message the engine refuses produces [`Event6::Dropped`] with a static reason,
//! which the daemon logs at debug level; [`Client::last_drop`] offers the same reason
//! for the latest packet, mirroring the DHCPv4 engine. Reconfigure is always refused because the
//! engine does not implement the authentication RFC 8415 requires for it.
//!
//! Messages always go to the All_DHCP_Relay_Agents_and_Servers multicast address
//! (`ff02::1:2`); the Server Unicast option is not used, so `UseMulticast` only triggers
//! a retransmission.

mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::duid::{Duid, Iaid};
use crate::time::{Instant, Rng};

use wire::{code, Message, WireAddr, WirePrefix};
pub use wire::{MessageType, StatusCode};

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 section 7.1).
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The UDP port clients listen on.
pub const CLIENT_PORT: u16 = 546;
/// The UDP port servers and relays listen on.
pub const SERVER_PORT: u16 = 547;
/// The lifetime value meaning "infinite".
pub const INFINITY: u32 = u32::MAX;
use crate::backoff::Failures;
pub use crate::backoff::{failure_backoff, FAILURE_RESET_AFTER, MAX_FAILURE_BACKOFF};

/// Transmission parameters of RFC 8415 section 7.6, in milliseconds (counts for `_RC`).
pub mod params {
    /// Max delay of first Solicit.
    pub const SOL_MAX_DELAY: u64 = 1_000;
    /// Initial Solicit timeout.
    pub const SOL_TIMEOUT: u64 = 1_000;
    /// Default max Solicit timeout.
    pub const SOL_MAX_RT: u64 = 3_600_000;
    /// Initial Request timeout.
    pub const REQ_TIMEOUT: u64 = 1_000;
    /// Max Request timeout.
    pub const REQ_MAX_RT: u64 = 30_000;
    /// Max Request retry attempts.
    pub const REQ_MAX_RC: u32 = 10;
    /// Max delay of first Confirm.
    pub const CNF_MAX_DELAY: u64 = 1_000;
    /// Initial Confirm timeout.
    pub const CNF_TIMEOUT: u64 = 1_000;
    /// Max Confirm timeout.
    pub const CNF_MAX_RT: u64 = 4_000;
    /// Max Confirm duration.
    pub const CNF_MAX_RD: u64 = 10_000;
    /// Initial Renew timeout.
    pub const REN_TIMEOUT: u64 = 10_000;
    /// Max Renew timeout.
    pub const REN_MAX_RT: u64 = 600_000;
    /// Initial Rebind timeout.
    pub const REB_TIMEOUT: u64 = 10_000;
    /// Max Rebind timeout.
    pub const REB_MAX_RT: u64 = 600_000;
    /// Max delay of first Information-request.
    pub const INF_MAX_DELAY: u64 = 1_000;
    /// Initial Information-request timeout.
    pub const INF_TIMEOUT: u64 = 1_000;
    /// Default max Information-request timeout.
    pub const INF_MAX_RT: u64 = 3_600_000;
    /// Initial Release timeout.
    pub const REL_TIMEOUT: u64 = 1_000;
    /// Max Release retry attempts.
    pub const REL_MAX_RC: u32 = 4;
    /// Initial Decline timeout.
    pub const DEC_TIMEOUT: u64 = 1_000;
    /// Max Decline retry attempts.
    pub const DEC_MAX_RC: u32 = 4;
    /// Default Information Refresh Time, seconds.
    pub const IRT_DEFAULT: u32 = 86_400;
    /// Minimum Information Refresh Time, seconds.
    pub const IRT_MINIMUM: u32 = 600;
    /// Accepted range of the SOL_MAX_RT / INF_MAX_RT options, seconds.
    pub const MAX_RT_OPTION_RANGE: core::ops::RangeInclusive<u32> = 60..=86_400;
}

/// Which kind of DHCPv6 the client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ModeSetting {
    /// Follow the Router Advertisement flags given to [`Client::ra_flags`]: M = stateful,
    /// O alone = stateless, neither (or no RA yet) = idle.
    #[default]
    Auto,
    /// Always acquire addresses and/or prefixes (Solicit at start).
    Stateful,
    /// Only ask for configuration (Information-request at start).
    Stateless,
    /// Never send anything.
    Off,
}

/// Client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    /// IAID of the IA_NA to request; `None` = no addresses.
    pub iaid_na: Option<Iaid>,
    /// IAID of an IA_PD to request; `None` = no prefix delegation.
    pub iaid_pd: Option<Iaid>,
    /// Include Rapid Commit in Solicit (two-message exchange if the server agrees).
    pub rapid_commit: bool,
    /// Stateful, stateless, RA-driven or off.
    pub mode: ModeSetting,
    /// Wait a random 0..SOL_MAX_DELAY before the first Solicit.
    pub solicit_delay: bool,
    /// Ask for NTP servers (option 56).
    pub request_ntp: bool,
    /// Option 39 (RFC 4704) in Solicit, Request, Renew and Rebind, when set: flag S
    /// (the server updates the AAAA record); a name with a dot is sent fully
    /// qualified, one without as a partial name for the server to complete.
    pub fqdn: Option<String>,
    /// Option 15 (one user class) in every message but Release and Decline, when set.
    pub user_class: Option<Vec<u8>>,
    /// More option codes for the Option Request Option.
    pub extra_request: Vec<u16>,
    /// Seed of the engine's random source (transaction ids and jitter).
    pub seed: u64,
}

impl Default for Config {
    /// IA_NA with IAID 0 (callers should use [`Iaid::from_name`]), no IA_PD, Auto mode.
    fn default() -> Self {
        Config {
            iaid_na: Some(Iaid(0)),
            iaid_pd: None,
            rapid_commit: false,
            mode: ModeSetting::Auto,
            solicit_delay: false,
            request_ntp: false,
            fqdn: None,
            user_class: None,
            extra_request: Vec::new(),
            seed: 0,
        }
    }
}

/// A leased address. Lifetimes are seconds from [`Lease6::acquired`]; `u32::MAX` = infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Addr6 {
    /// The address (a /128; the on-link prefix comes from RAs).
    pub addr: Ipv6Addr,
    /// Preferred lifetime, seconds.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "preferred_secs", alias = "preferred")
    )]
    pub preferred: u32,
    /// Valid lifetime, seconds.
    #[cfg_attr(feature = "serde", serde(rename = "valid_secs", alias = "valid"))]
    pub valid: u32,
}

/// A delegated prefix. Lifetimes are seconds from [`Lease6::acquired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Prefix6 {
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Prefix length.
    pub len: u8,
    /// Preferred lifetime, seconds.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "preferred_secs", alias = "preferred")
    )]
    pub preferred: u32,
    /// Valid lifetime, seconds.
    #[cfg_attr(feature = "serde", serde(rename = "valid_secs", alias = "valid"))]
    pub valid: u32,
}

/// Everything bound by a stateful exchange.
///
/// With the `serde` feature this is the daemon's lease file shape (lifetimes as
/// `preferred_secs`/`valid_secs`, the server DUID as colon-separated hex); the older
/// names and the list-of-numbers DUID are still read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease6 {
    /// DUID of the server that granted (or last extended) the lease.
    #[cfg_attr(feature = "serde", serde(with = "crate::duid::hex_serde"))]
    pub server_id: Vec<u8>,
    /// Addresses from the IA_NA.
    pub addresses: Vec<Addr6>,
    /// Prefixes from the IA_PD.
    pub prefixes: Vec<Prefix6>,
    /// Effective T1, seconds after `acquired` (`u32::MAX` = never renew).
    pub t1: u32,
    /// Effective T2, seconds after `acquired` (`u32::MAX` = never rebind).
    pub t2: u32,
    /// Recursive DNS servers.
    pub dns: Vec<Ipv6Addr>,
    /// Search domains.
    pub domains: Vec<String>,
    /// NTP (and SNTP) servers.
    pub ntp: Vec<Ipv6Addr>,
    /// When the Reply that set these lifetimes arrived, on the engine timeline. A caller
    /// persisting the lease across restarts must rebase it onto the new timeline (lease
    /// files without it read as the origin).
    #[cfg_attr(feature = "serde", serde(default))]
    pub acquired: Instant,
}

impl Lease6 {
    fn secs_since(&self, now: Instant) -> u64 {
        (now - self.acquired).as_secs()
    }

    fn at(&self, secs: u32) -> Option<Instant> {
        (secs != INFINITY).then(|| self.acquired + Duration::from_secs(u64::from(secs)))
    }

    /// When the last valid lifetime ends (`None` = never, or nothing leased).
    pub fn expires_at(&self) -> Option<Instant> {
        let valids = self
            .addresses
            .iter()
            .map(|a| a.valid)
            .chain(self.prefixes.iter().map(|p| p.valid));
        let max = valids.max()?;
        self.at(max)
    }

    /// When the client will send Renew (`None` = never).
    pub fn renew_at(&self) -> Option<Instant> {
        self.at(self.t1)
    }

    /// When the client will send Rebind (`None` = never).
    pub fn rebind_at(&self) -> Option<Instant> {
        self.at(self.t2)
    }

    fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.prefixes.is_empty()
    }
}

/// Configuration from a stateless (Information-request) exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InfoData {
    /// Recursive DNS servers.
    pub dns: Vec<Ipv6Addr>,
    /// Search domains.
    pub domains: Vec<String>,
    /// NTP (and SNTP) servers.
    pub ntp: Vec<Ipv6Addr>,
    /// Seconds until the client asks again (`u32::MAX` = never); at least 600.
    pub refresh: u32,
    /// When the Reply arrived.
    pub received: Instant,
}

/// Why a lease (or part of one) is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LostReason {
    /// All valid lifetimes ran out without a successful Renew or Rebind.
    Expired,
    /// A server said the addresses are not on this link (Confirm, Renew or Rebind).
    NotOnLink,
    /// The server extended nothing (all lifetimes zero or every IA refused).
    Refused,
    /// The caller reported a duplicate address; it was declined.
    Declined,
    /// The caller released the lease.
    Released,
}

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event6 {
    /// A new lease: install its addresses and prefixes.
    Bound(Lease6),
    /// The lease was extended or confirmed: replace the installed lease in place.
    Renewed(Lease6),
    /// Remove these addresses/prefixes.
    Lost {
        /// What to remove.
        lease: Lease6,
        /// Why.
        reason: LostReason,
    },
    /// Stateless configuration (DNS, domains, NTP, refresh time).
    Info(InfoData),
    /// A received message was ignored, or a caller request could not be honoured; log it.
    Dropped(&'static str),
    /// A stateful exchange ended without a lease; the next Solicit goes out after
    /// `wait`. One event per failure, never per packet. Informational.
    Backoff {
        /// Consecutive failures so far, this one included.
        failures: u32,
        /// How long until the next Solicit (0 after the first failure).
        wait: Duration,
        /// What ended the exchange.
        reason: &'static str,
    },
}

/// A message to send from port 546 to `dst` port 547.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit6 {
    /// The DHCPv6 message.
    pub payload: Vec<u8>,
    /// Destination: always [`ALL_DHCP_SERVERS`].
    pub dst: Ipv6Addr,
    /// The message type, for logging.
    pub msg_type: MessageType,
}

/// The Client Identifier option (code 1) this engine sends for `duid`, header included.
///
/// Its data is exactly `duid.as_bytes()`, the same octets the DHCPv4 engine puts after
/// `0xff` and the IAID in its RFC 4361 client identifier.
pub fn client_id_option(duid: &Duid) -> Vec<u8> {
    wire::tlv(code::CLIENTID, duid.as_bytes())
}

/// A server's offer, from an Advertise (or the current lease, to re-Request).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    server_id: Vec<u8>,
    preference: u8,
    addrs: Vec<WireAddr>,
    prefixes: Vec<WirePrefix>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    LinkDown,
    Soliciting { best: Option<Offer> },
    Requesting { offer: Offer },
    Bound,
    Renewing,
    Rebinding,
    Confirming { restart: bool },
    Declining { server_id: Vec<u8>, addr: Ipv6Addr },
    Releasing { lease: Lease6 },
    Informing,
    InfoBound { refresh_at: Option<Instant> },
}

/// One exchange with its retransmission state (RFC 8415 section 15).
#[derive(Debug, Clone)]
struct Txn {
    kind: MessageType,
    xid: u32,
    /// First transmission (elapsed time counts from here).
    start: Option<Instant>,
    /// Next transmission or timeout.
    next: Instant,
    /// Current RT, ms.
    rt: u64,
    count: u32,
    irt: u64,
    mrt: u64,
    mrc: u32,
    /// MRD relative to the first transmission.
    mrd_rel: Option<u64>,
    /// Absolute end of the exchange.
    deadline: Option<Instant>,
}

/// The DHCPv6 client state machine.
#[derive(Debug)]
pub struct Client {
    config: Config,
    duid: Duid,
    rng: Rng,
    state: State,
    txn: Option<Txn>,
    lease: Option<Lease6>,
    info: Option<InfoData>,
    events: VecDeque<Event6>,
    ra: Option<(bool, bool)>,
    sol_max_rt: u64,
    inf_max_rt: u64,
    first_info_sent: bool,
    last_drop: Option<&'static str>,
    /// Consecutive stateful exchanges that ended without a lease, and the DUIDs of the
    /// servers involved: their Advertises lose to any other server's during the
    /// collection of the first Solicit RT.
    failures: Failures<Vec<u8>>,
}

/// The effective operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effective {
    Stateful,
    Stateless,
    Idle,
}

/// What a Reply says about the client's IAs.
struct ReplyData {
    top: StatusCode,
    na: Option<StatusCode>,
    pd: Option<StatusCode>,
    server_t1: u32,
    server_t2: u32,
    /// Addresses the server listed with a zero valid lifetime.
    withdrawn: Vec<Ipv6Addr>,
    /// Prefixes the server listed with a zero valid lifetime.
    withdrawn_prefixes: Vec<(Ipv6Addr, u8)>,
    lease: Lease6,
}

impl Client {
    /// A client that starts according to `config.mode` (Stateful: Solicit, Stateless:
    /// Information-request, Auto: wait for [`Client::ra_flags`], Off: nothing).
    pub fn new(config: Config, duid: Duid, now: Instant) -> Self {
        let mut c = Self::bare(config, duid);
        c.start(now, true);
        c
    }

    /// A client resuming a persisted lease (a restart, or a reboot). RFC 8415 18.2.12:
    /// with delegated prefixes left, the whole lease is refreshed with Rebind (a
    /// Confirm cannot vouch for prefixes); with only IA_NA addresses left, they are
    /// confirmed (18.2.3) and then used as bound. With nothing valid left, the client
    /// starts like [`Client::new`].
    ///
    /// `saved.acquired` must be on the current timeline (the caller rebases it from
    /// wall-clock time); an `acquired` later than `now` is clamped to `now`.
    pub fn from_saved(config: Config, duid: Duid, saved: Lease6, now: Instant) -> Self {
        let mut c = Self::bare(config, duid);
        let mut lease = saved;
        if lease.acquired > now {
            lease.acquired = now;
        }
        let age = lease.secs_since(now);
        lease
            .addresses
            .retain(|a| a.valid == INFINITY || u64::from(a.valid) > age);
        lease
            .prefixes
            .retain(|p| p.valid == INFINITY || u64::from(p.valid) > age);
        let stateful = matches!(c.config.mode, ModeSetting::Auto | ModeSetting::Stateful);
        let na = !lease.addresses.is_empty() && c.config.iaid_na.is_some();
        let pd = !lease.prefixes.is_empty() && c.config.iaid_pd.is_some();
        if stateful && pd {
            c.lease = Some(lease);
            c.start_rebind(now);
        } else if stateful && na {
            c.lease = Some(lease);
            c.start_confirm(now, true);
        } else {
            c.start(now, true);
        }
        c
    }

    fn bare(config: Config, duid: Duid) -> Self {
        let rng = Rng::new(config.seed);
        Client {
            config,
            duid,
            rng,
            state: State::Idle,
            txn: None,
            lease: None,
            info: None,
            events: VecDeque::new(),
            ra: None,
            sol_max_rt: params::SOL_MAX_RT,
            inf_max_rt: params::INF_MAX_RT,
            first_info_sent: false,
            last_drop: None,
            failures: Failures::default(),
        }
    }

    /// Router Advertisement flags seen on the link (Auto mode only). M starts stateful
    /// DHCPv6 unless it is already running; O alone starts an Information-request if the
    /// client is idle. Clearing the flags does not tear down a running lease.
    pub fn ra_flags(&mut self, now: Instant, managed: bool, other: bool) {
        self.ra = Some((managed, other));
        if self.config.mode != ModeSetting::Auto || self.state == State::LinkDown {
            return;
        }
        match self.effective() {
            Effective::Stateful if !self.stateful_active() => {
                self.start_solicit(now, true);
            }
            Effective::Stateless if self.state == State::Idle => self.start_info(now),
            _ => {}
        }
    }

    /// The current lease, for persistence and status.
    pub fn lease(&self) -> Option<&Lease6> {
        self.lease.as_ref()
    }

    /// The last stateless configuration received.
    pub fn info(&self) -> Option<&InfoData> {
        self.info.as_ref()
    }

    /// The DUID this client identifies with.
    pub fn duid(&self) -> &Duid {
        &self.duid
    }

    /// A short name of the current state, for status output.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Idle => "idle",
            State::LinkDown => "link-down",
            State::Soliciting { .. } => "soliciting",
            State::Requesting { .. } => "requesting",
            State::Bound => "bound",
            State::Renewing => "renewing",
            State::Rebinding => "rebinding",
            State::Confirming { .. } => "confirming",
            State::Declining { .. } => "declining",
            State::Releasing { .. } => "releasing",
            State::Informing => "informing",
            State::InfoBound { .. } => "info-bound",
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event6> {
        self.events.pop_front()
    }

    /// When [`Client::poll_transmit`] must next be called; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(t) = &self.txn {
            return Some(t.next);
        }
        match &self.state {
            State::Bound => {
                let l = self.lease.as_ref()?;
                [l.renew_at(), l.rebind_at(), l.expires_at()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            State::LinkDown => self.lease.as_ref().and_then(Lease6::expires_at),
            State::InfoBound { refresh_at } => *refresh_at,
            _ => None,
        }
    }

    /// The link went down (`up == false`: exchanges stop, the lease is kept until it
    /// expires) or came back (`up == true` after a down: Confirm if addresses are
    /// leased, otherwise start afresh; a prefix-only lease is then reported `Lost` with
    /// [`LostReason::NotOnLink`] and solicited again). An `up` without a preceding
    /// `down` is ignored.
    pub fn link_changed(&mut self, now: Instant, up: bool) {
        if !up {
            if !matches!(self.state, State::LinkDown) {
                self.txn = None;
                self.state = State::LinkDown;
            }
            return;
        }
        if self.state != State::LinkDown {
            return;
        }
        self.state = State::Idle;
        let has_addrs = self.lease.as_ref().is_some_and(|l| !l.addresses.is_empty());
        if has_addrs && self.effective() != Effective::Stateless {
            self.start_confirm(now, false);
        } else {
            self.lose(LostReason::NotOnLink);
            self.start(now, false);
        }
    }

    /// Duplicate address detection failed for `addr`: emit [`Event6::Lost`] for it, send
    /// Decline, then continue with the rest of the lease or Solicit again if none is left.
    pub fn decline(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(lease) = self.lease.as_mut() else {
            self.events
                .push_back(Event6::Dropped("decline: no lease is held"));
            return;
        };
        let Some(pos) = lease.addresses.iter().position(|a| a.addr == addr) else {
            self.events
                .push_back(Event6::Dropped("decline: the address is not leased"));
            return;
        };
        let gone = lease.addresses.remove(pos);
        let mut lost = lease.clone();
        lost.addresses = vec![gone];
        lost.prefixes.clear();
        let server_id = lease.server_id.clone();
        if lease.is_empty() {
            self.lease = None;
        }
        self.events.push_back(Event6::Lost {
            lease: lost,
            reason: LostReason::Declined,
        });
        self.state = State::Declining { server_id, addr };
        self.txn = Some(self.new_txn(
            MessageType::Decline,
            params::DEC_TIMEOUT,
            0,
            params::DEC_MAX_RC,
            now,
        ));
    }

    /// Give the lease back: emit [`Event6::Lost`] and send Release (retransmitted up to
    /// REL_MAX_RC times if the caller keeps polling; stopping earlier is allowed). The
    /// client then stays idle until [`Client::ra_flags`] or a link change restarts it.
    pub fn release(&mut self, now: Instant) {
        let Some(lease) = self.lease.take() else {
            self.txn = None;
            self.state = State::Idle;
            return;
        };
        self.events.push_back(Event6::Lost {
            lease: lease.clone(),
            reason: LostReason::Released,
        });
        self.state = State::Releasing { lease };
        self.txn = Some(self.new_txn(
            MessageType::Release,
            params::REL_TIMEOUT,
            0,
            params::REL_MAX_RC,
            now,
        ));
    }

    /// Renew now (the `netbond renew` command): from Bound, send Renew at once; in
    /// stateless mode, send Information-request at once. Otherwise nothing to do.
    pub fn renew(&mut self, now: Instant) {
        match self.state {
            State::Bound => self.start_renew(now),
            State::InfoBound { .. } => self.start_info(now),
            _ => {}
        }
    }

    /// Run due timers and return the next message to send, if one is due now.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit6> {
        // Each pass either returns or changes state; a handful of passes always suffices.
        for _ in 0..8 {
            self.run_timers(now);
            let txn = self.txn.as_ref()?;
            if now < txn.next {
                return None;
            }
            let exhausted = txn.count > 0
                && ((txn.mrc > 0 && txn.count >= txn.mrc)
                    || txn.deadline.is_some_and(|d| now >= d));
            if exhausted {
                self.exhausted(now);
                continue;
            }
            if txn.kind == MessageType::Solicit && txn.count == 1 {
                // End of the first RT: take the best Advertise collected (RFC 8415 18.2.1).
                if let State::Soliciting { best } = &mut self.state {
                    if let Some(offer) = best.take() {
                        self.start_request(now, offer);
                        continue;
                    }
                }
            }
            return self.send(now);
        }
        None
    }

    /// Process a datagram received on port 546.
    ///
    /// A refused message yields [`Event6::Dropped`]; the same reason is also available
    /// from [`Client::last_drop`] until the next call (a driver logs from one of them).
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.last_drop = None;
        if let Err(why) = self.handle_inner(now, bytes) {
            self.last_drop = Some(why);
            self.events.push_back(Event6::Dropped(why));
        }
    }

    /// Why the message given to the latest [`Client::handle_packet`] call was dropped,
    /// `None` if it was accepted (the same interface as the DHCPv4 engine).
    pub fn last_drop(&self) -> Option<&'static str> {
        self.last_drop
    }

    fn handle_inner(&mut self, now: Instant, bytes: &[u8]) -> Result<(), &'static str> {
        let msg = wire::parse(bytes)?;
        match msg.msg_type {
            MessageType::Advertise | MessageType::Reply => {}
            MessageType::Reconfigure => {
                return Err("Reconfigure ignored: authentication is not implemented")
            }
            _ => return Err("not a server-to-client message type"),
        }
        let Some(txn) = &self.txn else {
            return Err("no exchange in progress");
        };
        if txn.count == 0 {
            return Err("no message of the current exchange has been sent yet");
        }
        if msg.xid != txn.xid {
            return Err("transaction id does not match");
        }
        match &msg.client_id {
            None => return Err("missing client identifier"),
            Some(id) if id.as_slice() != self.duid.as_bytes() => {
                return Err("client identifier is not ours")
            }
            _ => {}
        }
        let Some(server_id) = msg.server_id.clone() else {
            return Err("missing server identifier");
        };
        let kind = txn.kind;
        let expected_server: Option<&[u8]> = match &self.state {
            State::Requesting { offer } => Some(&offer.server_id),
            State::Renewing => self.lease.as_ref().map(|l| l.server_id.as_slice()),
            State::Declining { server_id, .. } => Some(server_id),
            State::Releasing { lease } => Some(&lease.server_id),
            _ => None,
        };
        if expected_server.is_some_and(|s| s != server_id.as_slice()) {
            return Err("server identifier is not the selected server's");
        }
        if msg.msg_type == MessageType::Advertise {
            if kind != MessageType::Solicit {
                return Err("Advertise outside of Solicit");
            }
            return self.on_advertise(now, msg, server_id);
        }
        match kind {
            MessageType::Solicit => {
                if !(self.config.rapid_commit && msg.rapid_commit) {
                    return Err("Reply to Solicit without Rapid Commit");
                }
                self.on_request_reply(now, &msg, server_id, true)
            }
            MessageType::Request => self.on_request_reply(now, &msg, server_id, false),
            MessageType::Renew | MessageType::Rebind => self.on_renew_reply(now, &msg, server_id),
            MessageType::Confirm => self.on_confirm_reply(now, &msg),
            MessageType::Decline => {
                self.finish_decline(now);
                Ok(())
            }
            MessageType::Release => {
                self.txn = None;
                self.state = State::Idle;
                Ok(())
            }
            MessageType::InformationRequest => self.on_info_reply(now, &msg),
            _ => Err("Reply for an exchange the client does not run"),
        }
    }

    // ----- exchanges -------------------------------------------------------------------

    fn on_advertise(
        &mut self,
        now: Instant,
        msg: Message,
        server_id: Vec<u8>,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(&msg);
        let (addrs, prefixes) = self.our_ia_contents(&msg);
        if msg.status == Some(StatusCode::NoAddrsAvail) || (addrs.is_empty() && prefixes.is_empty())
        {
            return Err("Advertise offers no addresses or prefixes");
        }
        let offer = Offer {
            server_id,
            preference: msg.preference.unwrap_or(0),
            addrs,
            prefixes,
        };
        let collecting = self.txn.as_ref().is_some_and(|t| t.count == 1);
        let avoided = &self.failures;
        // A server that just failed us ranks below every other, whatever its preference.
        let rank = |o: &Offer| (!avoided.avoids(&o.server_id), o.preference);
        if (offer.preference == 255 && !avoided.avoids(&offer.server_id)) || !collecting {
            self.start_request(now, offer);
            return Ok(());
        }
        let new_rank = rank(&offer);
        let replace = match &self.state {
            State::Soliciting { best } => best.as_ref().is_none_or(|b| new_rank > rank(b)),
            _ => false,
        };
        if let (true, State::Soliciting { best }) = (replace, &mut self.state) {
            *best = Some(offer);
        }
        Ok(())
    }

    fn on_request_reply(
        &mut self,
        now: Instant,
        msg: &Message,
        server_id: Vec<u8>,
        rapid: bool,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(msg);
        let r = self.reply_data(now, msg, server_id);
        match r.top {
            StatusCode::UnspecFail => return Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => return Err("Reply with UseMulticast: retransmitting"),
            _ => {}
        }
        let not_on_link = r.top == StatusCode::NotOnLink || r.na == Some(StatusCode::NotOnLink);
        if not_on_link || r.lease.is_empty() {
            if rapid {
                return Err("Rapid Commit Reply grants nothing: still soliciting");
            }
            // Back to Solicit; a lease held through NoBinding recovery is given up.
            self.lose(if not_on_link {
                LostReason::NotOnLink
            } else {
                LostReason::Refused
            });
            let why = refusal(&r);
            self.fail(now, Some(r.lease.server_id), why);
            return Ok(());
        }
        let lease = finalize(r.lease, r.server_t1, r.server_t2);
        let had = self.lease.is_some();
        self.failures.bound(now, !had);
        self.lease = Some(lease.clone());
        self.txn = None;
        self.state = State::Bound;
        self.events.push_back(if had {
            Event6::Renewed(lease)
        } else {
            Event6::Bound(lease)
        });
        Ok(())
    }

    fn on_renew_reply(
        &mut self,
        now: Instant,
        msg: &Message,
        server_id: Vec<u8>,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(msg);
        let r = self.reply_data(now, msg, server_id.clone());
        match r.top {
            StatusCode::UnspecFail => return Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => return Err("Reply with UseMulticast: retransmitting"),
            _ => {}
        }
        if r.top == StatusCode::NotOnLink || r.na == Some(StatusCode::NotOnLink) {
            self.lose(LostReason::NotOnLink);
            self.fail(now, Some(server_id), "Reply with NotOnLink");
            return Ok(());
        }
        let Some(old) = self.lease.clone() else {
            return Err("Reply to Renew without a lease");
        };
        if r.top == StatusCode::NoBinding
            || r.na == Some(StatusCode::NoBinding)
            || r.pd == Some(StatusCode::NoBinding)
        {
            // RFC 8415 18.2.10.1: Request the IA(s) the server does not know about.
            let offer = Offer {
                server_id,
                preference: 0,
                addrs: old
                    .addresses
                    .iter()
                    .map(|a| WireAddr {
                        addr: a.addr,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect(),
                prefixes: old
                    .prefixes
                    .iter()
                    .map(|p| WirePrefix {
                        prefix: p.prefix,
                        len: p.len,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect(),
            };
            self.start_request(now, offer);
            return Ok(());
        }
        let mut new = r.lease;
        merge_remaining(&mut new, &old, &r.withdrawn, &r.withdrawn_prefixes, now);
        if new.is_empty() {
            self.lose(LostReason::Refused);
            self.fail(now, Some(server_id), "Reply extends no address or prefix");
            return Ok(());
        }
        // The Reply may carry no options at all; keep what we had then.
        if !msg_has_config(msg) {
            new.dns = old.dns;
            new.domains = old.domains;
            new.ntp = old.ntp;
        }
        let lease = finalize(new, r.server_t1, r.server_t2);
        self.lease = Some(lease.clone());
        self.txn = None;
        self.state = State::Bound;
        self.events.push_back(Event6::Renewed(lease));
        Ok(())
    }

    fn on_confirm_reply(&mut self, now: Instant, msg: &Message) -> Result<(), &'static str> {
        match msg.status.unwrap_or(StatusCode::Success) {
            StatusCode::Success => {
                self.finish_confirm(now);
                Ok(())
            }
            StatusCode::NotOnLink => {
                self.lose(LostReason::NotOnLink);
                self.fail(
                    now,
                    msg.server_id.clone(),
                    "Reply to Confirm with NotOnLink",
                );
                Ok(())
            }
            StatusCode::UnspecFail => Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => Err("Reply with UseMulticast: retransmitting"),
            _ => Err("Reply to Confirm with an unexpected status"),
        }
    }

    fn on_info_reply(&mut self, now: Instant, msg: &Message) -> Result<(), &'static str> {
        match msg.status {
            Some(StatusCode::UnspecFail) => return Err("Reply with UnspecFail: retransmitting"),
            Some(StatusCode::UseMulticast) => {
                return Err("Reply with UseMulticast: retransmitting")
            }
            _ => {}
        }
        if let Some(v) = msg.inf_max_rt {
            if params::MAX_RT_OPTION_RANGE.contains(&v) {
                self.inf_max_rt = u64::from(v) * 1000;
            }
        }
        self.apply_sol_max_rt(msg);
        let refresh = match msg.info_refresh.unwrap_or(params::IRT_DEFAULT) {
            INFINITY => INFINITY,
            v => v.max(params::IRT_MINIMUM),
        };
        let info = InfoData {
            dns: msg.dns.clone(),
            domains: msg.domains.clone(),
            ntp: if self.config.request_ntp {
                msg.ntp.clone()
            } else {
                Vec::new()
            },
            refresh,
            received: now,
        };
        let refresh_at =
            (refresh != INFINITY).then(|| now + Duration::from_secs(u64::from(refresh)));
        self.info = Some(info.clone());
        self.txn = None;
        self.state = State::InfoBound { refresh_at };
        self.events.push_back(Event6::Info(info));
        Ok(())
    }

    fn finish_confirm(&mut self, now: Instant) {
        let restart = matches!(self.state, State::Confirming { restart: true });
        self.failures.bound(now, restart);
        self.txn = None;
        self.state = State::Bound;
        if let Some(l) = &self.lease {
            self.events.push_back(if restart {
                Event6::Bound(l.clone())
            } else {
                Event6::Renewed(l.clone())
            });
        }
    }

    fn finish_decline(&mut self, now: Instant) {
        self.txn = None;
        if self.lease.as_ref().is_some_and(|l| !l.is_empty()) {
            self.state = State::Bound;
        } else {
            self.lease = None;
            let server = match &self.state {
                State::Declining { server_id, .. } => Some(server_id.clone()),
                _ => None,
            };
            self.fail(
                now,
                server,
                "the address was declined (duplicate address detection failed)",
            );
        }
    }

    /// A stateful exchange ended without a lease (`reason`, caused by `server`): count
    /// it, remember the server, tell the caller once, and solicit again after the
    /// backoff. Any lease involved was already reported lost.
    fn fail(&mut self, now: Instant, server: Option<Vec<u8>>, reason: &'static str) {
        let (failures, wait) = self.failures.fail(now, server, &mut self.rng);
        self.events.push_back(Event6::Backoff {
            failures,
            wait,
            reason,
        });
        self.start_solicit(now, false);
        if let Some(t) = self.txn.as_mut() {
            t.next = now + wait;
        }
    }

    /// Consecutive stateful exchanges that ended without a lease, for status output.
    pub fn failures(&self) -> u32 {
        self.failures.count()
    }

    /// An exchange ran out of retransmissions or time.
    fn exhausted(&mut self, now: Instant) {
        let Some(kind) = self.txn.as_ref().map(|t| t.kind) else {
            return;
        };
        self.txn = None;
        match kind {
            MessageType::Request => {
                if self.lease.is_some() {
                    // Re-Request after NoBinding failed: the lease timers take over.
                    self.state = State::Bound;
                } else {
                    let server = match &self.state {
                        State::Requesting { offer } => Some(offer.server_id.clone()),
                        _ => None,
                    };
                    self.fail(now, server, "no valid Reply to the Requests");
                }
            }
            MessageType::Renew => self.start_rebind(now),
            MessageType::Rebind => {
                self.lose(LostReason::Expired);
                self.start(now, false);
            }
            MessageType::Confirm => self.finish_confirm(now),
            MessageType::Decline => self.finish_decline(now),
            MessageType::Release => self.state = State::Idle,
            // Solicit and Information-request retransmit forever.
            _ => self.state = State::Idle,
        }
    }

    fn run_timers(&mut self, now: Instant) {
        match &self.state {
            State::Bound => {
                let Some(l) = &self.lease else {
                    self.state = State::Idle;
                    return;
                };
                let (renew, rebind, expire) = (l.renew_at(), l.rebind_at(), l.expires_at());
                if expire.is_some_and(|e| now >= e) {
                    self.lose(LostReason::Expired);
                    self.start(now, false);
                } else if rebind.is_some_and(|t| now >= t) {
                    self.start_rebind(now);
                } else if renew.is_some_and(|t| now >= t) {
                    self.start_renew(now);
                }
            }
            State::LinkDown => {
                let expired = self
                    .lease
                    .as_ref()
                    .and_then(Lease6::expires_at)
                    .is_some_and(|e| now >= e);
                if expired {
                    self.lose(LostReason::Expired);
                }
            }
            State::InfoBound { refresh_at } if refresh_at.is_some_and(|t| now >= t) => {
                self.start_info(now);
            }
            _ => {}
        }
    }

    // ----- starting exchanges ----------------------------------------------------------

    fn effective(&self) -> Effective {
        let wants_ia = self.config.iaid_na.is_some() || self.config.iaid_pd.is_some();
        let stateful = if wants_ia {
            Effective::Stateful
        } else {
            Effective::Stateless
        };
        match self.config.mode {
            ModeSetting::Off => Effective::Idle,
            ModeSetting::Stateful => stateful,
            ModeSetting::Stateless => Effective::Stateless,
            ModeSetting::Auto => match self.ra {
                Some((true, _)) => stateful,
                Some((false, true)) => Effective::Stateless,
                _ => Effective::Idle,
            },
        }
    }

    fn stateful_active(&self) -> bool {
        matches!(
            self.state,
            State::Soliciting { .. }
                | State::Requesting { .. }
                | State::Bound
                | State::Renewing
                | State::Rebinding
                | State::Confirming { .. }
                | State::Declining { .. }
        )
    }

    fn start(&mut self, now: Instant, initial: bool) {
        match self.effective() {
            Effective::Stateful => self.start_solicit(now, initial),
            Effective::Stateless => self.start_info(now),
            Effective::Idle => {
                self.txn = None;
                self.state = State::Idle;
            }
        }
    }

    fn new_txn(&mut self, kind: MessageType, irt: u64, mrt: u64, mrc: u32, at: Instant) -> Txn {
        Txn {
            kind,
            xid: self.rng.next_u32() & 0x00ff_ffff,
            start: None,
            next: at,
            rt: 0,
            count: 0,
            irt,
            mrt,
            mrc,
            mrd_rel: None,
            deadline: None,
        }
    }

    fn random_delay(&mut self, max_ms: u64) -> Duration {
        Duration::from_millis(self.rng.range_i64(0, max_ms as i64).max(0) as u64)
    }

    fn start_solicit(&mut self, now: Instant, initial: bool) {
        let at = if initial && self.config.solicit_delay {
            now + self.random_delay(params::SOL_MAX_DELAY)
        } else {
            now
        };
        self.state = State::Soliciting { best: None };
        let mrt = self.sol_max_rt;
        self.txn = Some(self.new_txn(MessageType::Solicit, params::SOL_TIMEOUT, mrt, 0, at));
    }

    fn start_request(&mut self, now: Instant, offer: Offer) {
        self.state = State::Requesting { offer };
        self.txn = Some(self.new_txn(
            MessageType::Request,
            params::REQ_TIMEOUT,
            params::REQ_MAX_RT,
            params::REQ_MAX_RC,
            now,
        ));
    }

    fn start_renew(&mut self, now: Instant) {
        let deadline = self.lease.as_ref().and_then(Lease6::rebind_at);
        self.state = State::Renewing;
        let mut t = self.new_txn(
            MessageType::Renew,
            params::REN_TIMEOUT,
            params::REN_MAX_RT,
            0,
            now,
        );
        t.deadline = deadline;
        self.txn = Some(t);
    }

    fn start_rebind(&mut self, now: Instant) {
        let deadline = self.lease.as_ref().and_then(Lease6::expires_at);
        self.state = State::Rebinding;
        let mut t = self.new_txn(
            MessageType::Rebind,
            params::REB_TIMEOUT,
            params::REB_MAX_RT,
            0,
            now,
        );
        t.deadline = deadline;
        self.txn = Some(t);
    }

    fn start_confirm(&mut self, now: Instant, restart: bool) {
        let at = now + self.random_delay(params::CNF_MAX_DELAY);
        self.state = State::Confirming { restart };
        let mut t = self.new_txn(
            MessageType::Confirm,
            params::CNF_TIMEOUT,
            params::CNF_MAX_RT,
            0,
            at,
        );
        t.mrd_rel = Some(params::CNF_MAX_RD);
        self.txn = Some(t);
    }

    fn start_info(&mut self, now: Instant) {
        let at = if self.first_info_sent {
            now
        } else {
            now + self.random_delay(params::INF_MAX_DELAY)
        };
        self.first_info_sent = true;
        self.state = State::Informing;
        let mrt = self.inf_max_rt;
        self.txn = Some(self.new_txn(
            MessageType::InformationRequest,
            params::INF_TIMEOUT,
            mrt,
            0,
            at,
        ));
    }

    /// Emit `Lost` for the whole current lease, if any.
    fn lose(&mut self, reason: LostReason) {
        if let Some(lease) = self.lease.take() {
            self.events.push_back(Event6::Lost { lease, reason });
        }
    }

    fn apply_sol_max_rt(&mut self, msg: &Message) {
        if let Some(v) = msg.sol_max_rt {
            if params::MAX_RT_OPTION_RANGE.contains(&v) {
                self.sol_max_rt = u64::from(v) * 1000;
                if let Some(t) = self.txn.as_mut().filter(|t| t.kind == MessageType::Solicit) {
                    t.mrt = self.sol_max_rt;
                }
            }
        }
    }

    /// Addresses and prefixes for our IAIDs in `msg`.
    fn our_ia_contents(&self, msg: &Message) -> (Vec<WireAddr>, Vec<WirePrefix>) {
        let mut addrs = Vec::new();
        let mut prefixes = Vec::new();
        if let Some(iaid) = self.config.iaid_na {
            for ia in msg.ia_na.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    addrs.extend(ia.addrs.iter().filter(|a| a.valid > 0));
                }
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            for ia in msg.ia_pd.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    prefixes.extend(ia.prefixes.iter().filter(|p| p.valid > 0));
                }
            }
        }
        addrs.truncate(wire::MAX_ADDRS_PER_IA);
        prefixes.truncate(wire::MAX_ADDRS_PER_IA);
        (addrs, prefixes)
    }

    fn reply_data(&self, now: Instant, msg: &Message, server_id: Vec<u8>) -> ReplyData {
        let mut t1s = Vec::new();
        let mut t2s = Vec::new();
        let mut na = None;
        let mut pd = None;
        if let Some(iaid) = self.config.iaid_na {
            if let Some(ia) = msg.ia_na.iter().find(|ia| ia.iaid == iaid.0) {
                na = Some(ia.status.unwrap_or(StatusCode::Success));
                t1s.push(ia.t1);
                t2s.push(ia.t2);
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            if let Some(ia) = msg.ia_pd.iter().find(|ia| ia.iaid == iaid.0) {
                pd = Some(ia.status.unwrap_or(StatusCode::Success));
                t1s.push(ia.t1);
                t2s.push(ia.t2);
            }
        }
        // Addresses with zero valid lifetime are kept here so that a Renew reply can
        // withdraw them; `finalize` and `merge_remaining` drop them.
        let mut addresses = Vec::new();
        let mut prefixes = Vec::new();
        if let Some(iaid) = self.config.iaid_na {
            for ia in msg.ia_na.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    addresses.extend(ia.addrs.iter().map(|a| Addr6 {
                        addr: a.addr,
                        preferred: a.preferred,
                        valid: a.valid,
                    }));
                }
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            for ia in msg.ia_pd.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    prefixes.extend(ia.prefixes.iter().map(|p| Prefix6 {
                        prefix: p.prefix,
                        len: p.len,
                        preferred: p.preferred,
                        valid: p.valid,
                    }));
                }
            }
        }
        addresses.truncate(wire::MAX_ADDRS_PER_IA);
        prefixes.truncate(wire::MAX_ADDRS_PER_IA);
        let withdrawn = addresses
            .iter()
            .filter(|a| a.valid == 0)
            .map(|a| a.addr)
            .collect();
        let withdrawn_prefixes = prefixes
            .iter()
            .filter(|p| p.valid == 0)
            .map(|p| (p.prefix, p.len))
            .collect();
        let nonzero_min = |v: &[u32]| v.iter().copied().filter(|&t| t > 0).min().unwrap_or(0);
        ReplyData {
            top: msg.status.unwrap_or(StatusCode::Success),
            na,
            pd,
            server_t1: nonzero_min(&t1s),
            server_t2: nonzero_min(&t2s),
            withdrawn,
            withdrawn_prefixes,
            lease: Lease6 {
                server_id,
                addresses: addresses.into_iter().filter(|a| a.valid > 0).collect(),
                prefixes: prefixes.into_iter().filter(|p| p.valid > 0).collect(),
                t1: 0,
                t2: 0,
                dns: msg.dns.clone(),
                domains: msg.domains.clone(),
                ntp: if self.config.request_ntp {
                    msg.ntp.clone()
                } else {
                    Vec::new()
                },
                acquired: now,
            },
        }
    }

    // ----- building messages -----------------------------------------------------------

    fn send(&mut self, now: Instant) -> Option<Transmit6> {
        let first_solicit = {
            let t = self.txn.as_ref()?;
            t.kind == MessageType::Solicit && t.count == 0
        };
        let (irt, rt_prev, count, mrt) = {
            let t = self.txn.as_ref()?;
            (t.irt, t.rt, t.count, t.mrt)
        };
        let rt = if count == 0 {
            let j = if first_solicit {
                self.rng.range_i64(1, (irt / 10) as i64)
            } else {
                self.jitter(irt)
            };
            add_signed(irt, j)
        } else {
            let j = self.jitter(rt_prev);
            add_signed(rt_prev.saturating_mul(2), j)
        };
        let rt = if mrt > 0 && rt > mrt {
            let j = self.jitter(mrt);
            add_signed(mrt, j)
        } else {
            rt
        }
        .max(1);
        let t = self.txn.as_mut()?;
        let start = *t.start.get_or_insert(now);
        if t.deadline.is_none() {
            if let Some(rel) = t.mrd_rel {
                t.deadline = Some(start + Duration::from_millis(rel));
            }
        }
        t.rt = rt;
        t.count += 1;
        t.next = now + Duration::from_millis(rt);
        if let Some(d) = t.deadline {
            t.next = t.next.min(d);
        }
        let cs = (now - start).as_millis() / 10;
        let elapsed = u16::try_from(cs).unwrap_or(u16::MAX);
        let (kind, xid) = (t.kind, t.xid);
        Some(Transmit6 {
            payload: self.build(kind, xid, elapsed),
            dst: ALL_DHCP_SERVERS,
            msg_type: kind,
        })
    }

    fn jitter(&mut self, base: u64) -> i64 {
        let r = (base / 10) as i64;
        self.rng.range_i64(-r, r)
    }

    fn oro(&self, info: bool) -> Vec<u8> {
        let mut codes = vec![code::DNS_SERVERS, code::DOMAIN_LIST];
        if self.config.request_ntp {
            codes.push(code::NTP_SERVER);
        }
        codes.push(code::SOL_MAX_RT);
        if info {
            codes.push(code::INFO_REFRESH_TIME);
            codes.push(code::INF_MAX_RT);
        }
        for c in &self.config.extra_request {
            if !codes.contains(c) {
                codes.push(*c);
            }
        }
        codes.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    fn build(&self, kind: MessageType, xid: u32, elapsed: u16) -> Vec<u8> {
        let mut b = wire::Builder::new(kind, xid);
        b.opt(code::CLIENTID, self.duid.as_bytes());
        b.opt(code::ELAPSED_TIME, &elapsed.to_be_bytes());
        let zero = |a: &Addr6| WireAddr {
            addr: a.addr,
            preferred: 0,
            valid: 0,
        };
        let zero_p = |p: &Prefix6| WirePrefix {
            prefix: p.prefix,
            len: p.len,
            preferred: 0,
            valid: 0,
        };
        let lease_addrs: Vec<WireAddr> = self
            .lease
            .iter()
            .flat_map(|l| l.addresses.iter().map(zero))
            .collect();
        let lease_prefixes: Vec<WirePrefix> = self
            .lease
            .iter()
            .flat_map(|l| l.prefixes.iter().map(zero_p))
            .collect();
        let na = self.config.iaid_na.map(|i| i.0);
        let pd = self.config.iaid_pd.map(|i| i.0);
        let add_ias = |b: &mut wire::Builder, addrs: &[WireAddr], prefixes: &[WirePrefix]| {
            if let Some(iaid) = na {
                b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, addrs));
            }
            if let Some(iaid) = pd {
                b.opt(code::IA_PD, &wire::ia_pd_body(iaid, 0, 0, prefixes));
            }
        };
        let server = self.lease.as_ref().map(|l| l.server_id.clone());
        if let Some(u) = self.config.user_class.as_ref().filter(|u| !u.is_empty()) {
            if !matches!(kind, MessageType::Release | MessageType::Decline) {
                let n = u.len().min(u16::MAX as usize - 2);
                let mut v = (n as u16).to_be_bytes().to_vec();
                v.extend_from_slice(&u[..n]);
                b.opt(code::USER_CLASS, &v);
            }
        }
        if let Some(f) = &self.config.fqdn {
            if matches!(
                kind,
                MessageType::Solicit
                    | MessageType::Request
                    | MessageType::Renew
                    | MessageType::Rebind
            ) {
                let mut v = vec![0x01];
                v.extend_from_slice(&crate::dhcp4::wire::dns_name_wire(f, f.contains('.')));
                b.opt(code::CLIENT_FQDN, &v);
            }
        }
        match (kind, &self.state) {
            (MessageType::Solicit, _) => {
                b.opt(code::ORO, &self.oro(false));
                if self.config.rapid_commit {
                    b.opt(code::RAPID_COMMIT, &[]);
                }
                add_ias(&mut b, &[], &[]);
            }
            (MessageType::Request, State::Requesting { offer }) => {
                b.opt(code::SERVERID, &offer.server_id);
                b.opt(code::ORO, &self.oro(false));
                let hints: Vec<WireAddr> = offer
                    .addrs
                    .iter()
                    .map(|a| WireAddr {
                        addr: a.addr,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect();
                let phints: Vec<WirePrefix> = offer
                    .prefixes
                    .iter()
                    .map(|p| WirePrefix {
                        prefix: p.prefix,
                        len: p.len,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect();
                add_ias(&mut b, &hints, &phints);
            }
            (MessageType::Renew, _) | (MessageType::Rebind, _) => {
                if kind == MessageType::Renew {
                    if let Some(s) = &server {
                        b.opt(code::SERVERID, s);
                    }
                }
                b.opt(code::ORO, &self.oro(false));
                add_ias(&mut b, &lease_addrs, &lease_prefixes);
            }
            (MessageType::Confirm, _) => {
                if let Some(iaid) = na {
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &lease_addrs));
                }
            }
            (MessageType::Decline, State::Declining { server_id, addr }) => {
                b.opt(code::SERVERID, server_id);
                if let Some(iaid) = na {
                    let a = [WireAddr {
                        addr: *addr,
                        preferred: 0,
                        valid: 0,
                    }];
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &a));
                }
            }
            (MessageType::Release, State::Releasing { lease }) => {
                b.opt(code::SERVERID, &lease.server_id);
                let a: Vec<WireAddr> = lease.addresses.iter().map(zero).collect();
                let p: Vec<WirePrefix> = lease.prefixes.iter().map(zero_p).collect();
                if let Some(iaid) = na.filter(|_| !a.is_empty()) {
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &a));
                }
                if let Some(iaid) = pd.filter(|_| !p.is_empty()) {
                    b.opt(code::IA_PD, &wire::ia_pd_body(iaid, 0, 0, &p));
                }
            }
            (MessageType::InformationRequest, _) => {
                b.opt(code::ORO, &self.oro(true));
            }
            _ => {}
        }
        b.finish()
    }
}

/// Why a Reply to Request granted nothing, for the backoff log line.
fn refusal(r: &ReplyData) -> &'static str {
    let worst = [Some(r.top), r.na, r.pd]
        .into_iter()
        .flatten()
        .find(|s| *s != StatusCode::Success);
    match worst {
        Some(StatusCode::NoAddrsAvail) => "Reply to Request with NoAddrsAvail",
        Some(StatusCode::NotOnLink) => "Reply to Request with NotOnLink",
        Some(StatusCode::NoBinding) => "Reply to Request with NoBinding",
        Some(StatusCode::NoPrefixAvail) => "Reply to Request with NoPrefixAvail",
        Some(StatusCode::UseMulticast) => "Reply to Request with UseMulticast in an IA",
        Some(StatusCode::UnspecFail) => "Reply to Request with UnspecFail in an IA",
        _ => "Reply to Request grants no address or prefix",
    }
}

fn add_signed(base: u64, delta: i64) -> u64 {
    if delta >= 0 {
        base.saturating_add(delta as u64)
    } else {
        base.saturating_sub(delta.unsigned_abs())
    }
}

/// Whether a Reply carries any configuration option (else the old values are kept).
fn msg_has_config(m: &Message) -> bool {
    !(m.dns.is_empty() && m.domains.is_empty() && m.ntp.is_empty())
}

/// Keep addresses/prefixes of `old` that `new` does not mention, with their remaining
/// lifetimes (RFC 8415 18.2.10.1: the client keeps using them until they expire).
/// Entries the server listed with a zero valid lifetime stay removed.
fn merge_remaining(
    new: &mut Lease6,
    old: &Lease6,
    withdrawn: &[Ipv6Addr],
    withdrawn_prefixes: &[(Ipv6Addr, u8)],
    now: Instant,
) {
    let age = u32::try_from(old.secs_since(now)).unwrap_or(u32::MAX);
    let left = |v: u32| {
        if v == INFINITY {
            v
        } else {
            v.saturating_sub(age)
        }
    };
    for a in &old.addresses {
        if new.addresses.iter().any(|n| n.addr == a.addr)
            || withdrawn.contains(&a.addr)
            || new.addresses.len() >= wire::MAX_ADDRS_PER_IA
        {
            continue;
        }
        if left(a.valid) > 0 {
            new.addresses.push(Addr6 {
                addr: a.addr,
                preferred: left(a.preferred),
                valid: left(a.valid),
            });
        }
    }
    for p in &old.prefixes {
        if new
            .prefixes
            .iter()
            .any(|n| n.prefix == p.prefix && n.len == p.len)
            || withdrawn_prefixes.contains(&(p.prefix, p.len))
            || new.prefixes.len() >= wire::MAX_ADDRS_PER_IA
        {
            continue;
        }
        if left(p.valid) > 0 {
            new.prefixes.push(Prefix6 {
                preferred: left(p.preferred),
                valid: left(p.valid),
                ..*p
            });
        }
    }
}

/// Set the effective T1/T2 of a lease (RFC 8415 sections 14.2, 18.2.4, 21.4).
///
/// Server values of zero leave the choice to the client: T1 = 0.5 and T2 = 0.8 times
/// the shortest preferred lifetime. IAs with T1 > T2 (both non-zero) never get here:
/// they are discarded while parsing, as the RFC requires. A remaining T1 > T2 (one
/// given, the other derived) is repaired by lowering T1 to T2.
fn finalize(mut lease: Lease6, t1: u32, t2: u32) -> Lease6 {
    let shortest = lease
        .addresses
        .iter()
        .map(|a| a.preferred)
        .chain(lease.prefixes.iter().map(|p| p.preferred))
        .min()
        .unwrap_or(0);
    let frac = |num: u64, den: u64| {
        if shortest == INFINITY {
            INFINITY
        } else {
            u32::try_from(u64::from(shortest) * num / den).unwrap_or(INFINITY)
        }
    };
    let t1 = if t1 == 0 { frac(1, 2) } else { t1 };
    let t2 = if t2 == 0 { frac(4, 5) } else { t2 };
    lease.t1 = t1.min(t2);
    lease.t2 = t2;
    lease
}
