//! DHCPv6 client engine (RFC 8415), sans-IO, driven through [`crate::Engine`] exactly
//! like the DHCPv4 engine: datagrams received on UDP port 546 go to `handle_packet`,
//! each [`Transmit6`] from `poll_transmit` goes to UDP port 547 of [`Transmit6::dst`],
//! events come from `poll_event`, and `poll_timeout` says when to call again. The
//! hardware address is not used (the DUID is the identity), so `hw_address_changed`
//! does nothing.
//!
//! Exchanges implemented: Solicit/Advertise/Request/Reply (with server selection by
//! preference and optional Rapid Commit), Renew at T1, Rebind at T2, expiry, Confirm
//! after a restart or a link flap, Decline, Release and Information-request with the
//! Information Refresh Time. Retransmission follows RFC 8415 section 15. Each exchange
//! lives in its state (`Phase`), with its retransmission counters: there is no
//! transaction beside the state.
//!
//! Every message the engine refuses produces [`Event6::Dropped`] with a static reason,
//! which the daemon logs at debug level. Reconfigure is always refused because the
//! engine does not implement the authentication RFC 8415 requires for it.
//!
//! Messages always go to the All_DHCP_Relay_Agents_and_Servers multicast address
//! (`ff02::1:2`); the Server Unicast option is not used, so `UseMulticast` only triggers
//! a retransmission.
//!
//! Files: `exchanges.rs` (starting, timing and ending exchanges; the commands),
//! `receive.rs` (taking replies), `transmit.rs` (building messages), `lease.rs` (what
//! comes out), `wire.rs` (the codec).

mod exchanges;
mod lease;
mod receive;
mod transmit;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::Ipv6Addr;

use crate::duid::{Duid, Iaid};
use crate::engine::Engine;
use crate::time::{Instant, Rng};
use core::fmt;

pub use lease::{Addr6, Event6, InfoData, Lease6, LostReason, Prefix6, Transmit6};
use wire::{code, WireAddr, WirePrefix};
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
    /// Option 16 (RFC 8415 21.16), when set: the enterprise number and one
    /// vendor-class-data item, in every message but Release and Decline.
    pub vendor_class: Option<(u32, Vec<u8>)>,
    /// More options to send, as they are, in every message but Release and Decline
    /// (the caller checks the codes: none the engine sends itself).
    pub extra_options: Vec<(u16, Vec<u8>)>,
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
            vendor_class: None,
            extra_options: Vec::new(),
            seed: 0,
        }
    }
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

/// The state the client is in, for status output and logs. Its display (and serde)
/// name is upper case like the DHCPv4 engine's: `BOUND`, `INFO-BOUND`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "SCREAMING-KEBAB-CASE")
)]
pub enum State {
    /// Nothing to do (mode off, or Auto with no RA asking for DHCPv6 yet).
    Idle,
    /// The link is down; a lease is kept until it expires.
    LinkDown,
    /// After `stop`, until `start`.
    Stopped,
    /// Solicit sent, collecting Advertises.
    Soliciting,
    /// Request for an Advertise sent.
    Requesting,
    /// A lease is configured; nothing to send until T1.
    Bound,
    /// Renew to the server after T1.
    Renewing,
    /// Rebind to any server after T2.
    Rebinding,
    /// Confirm that the leased addresses are still on-link.
    Confirming,
    /// Decline of an address that failed duplicate address detection.
    Declining,
    /// Release of the lease.
    Releasing,
    /// Information-request (stateless) sent.
    Informing,
    /// Stateless configuration received; nothing to send until its refresh time.
    InfoBound,
}

impl State {
    /// The name `Display` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::LinkDown => "LINK-DOWN",
            State::Stopped => "STOPPED",
            State::Soliciting => "SOLICITING",
            State::Requesting => "REQUESTING",
            State::Bound => "BOUND",
            State::Renewing => "RENEWING",
            State::Rebinding => "REBINDING",
            State::Confirming => "CONFIRMING",
            State::Declining => "DECLINING",
            State::Releasing => "RELEASING",
            State::Informing => "INFORMING",
            State::InfoBound => "INFO-BOUND",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state with its data (states as data): each exchange carries its transaction,
/// and the message type it sends follows from the state ([`Phase::kind`]).
#[derive(Debug, Clone)]
enum Phase {
    Idle,
    LinkDown,
    Stopped,
    Soliciting {
        txn: Txn,
        best: Option<Offer>,
    },
    Requesting {
        txn: Txn,
        offer: Offer,
    },
    Bound,
    Renewing(Txn),
    Rebinding(Txn),
    Confirming {
        txn: Txn,
        restart: bool,
    },
    Declining {
        txn: Txn,
        server_id: Vec<u8>,
        addr: Ipv6Addr,
    },
    Releasing {
        txn: Txn,
        lease: Lease6,
    },
    Informing(Txn),
    InfoBound {
        refresh_at: Option<Instant>,
    },
}

/// `Some($e)` with `$t` bound to the transaction of an exchange state, else `None`
/// (one list of the states that carry one, for `txn` and `txn_mut`).
macro_rules! with_txn {
    ($phase:expr, $t:ident => $e:expr) => {
        match $phase {
            Phase::Soliciting { txn: $t, .. }
            | Phase::Requesting { txn: $t, .. }
            | Phase::Renewing($t)
            | Phase::Rebinding($t)
            | Phase::Confirming { txn: $t, .. }
            | Phase::Declining { txn: $t, .. }
            | Phase::Releasing { txn: $t, .. }
            | Phase::Informing($t) => Some($e),
            _ => None,
        }
    };
}

impl Phase {
    /// The exchange in progress, if any.
    fn txn(&self) -> Option<&Txn> {
        with_txn!(self, t => t)
    }

    fn txn_mut(&mut self) -> Option<&mut Txn> {
        with_txn!(self, t => t)
    }

    /// The message type of the exchange in progress, if any.
    fn kind(&self) -> Option<MessageType> {
        Some(match self {
            Phase::Soliciting { .. } => MessageType::Solicit,
            Phase::Requesting { .. } => MessageType::Request,
            Phase::Renewing(_) => MessageType::Renew,
            Phase::Rebinding(_) => MessageType::Rebind,
            Phase::Confirming { .. } => MessageType::Confirm,
            Phase::Declining { .. } => MessageType::Decline,
            Phase::Releasing { .. } => MessageType::Release,
            Phase::Informing(_) => MessageType::InformationRequest,
            _ => return None,
        })
    }

    fn name(&self) -> State {
        match self {
            Phase::Idle => State::Idle,
            Phase::LinkDown => State::LinkDown,
            Phase::Stopped => State::Stopped,
            Phase::Soliciting { .. } => State::Soliciting,
            Phase::Requesting { .. } => State::Requesting,
            Phase::Bound => State::Bound,
            Phase::Renewing(_) => State::Renewing,
            Phase::Rebinding(_) => State::Rebinding,
            Phase::Confirming { .. } => State::Confirming,
            Phase::Declining { .. } => State::Declining,
            Phase::Releasing { .. } => State::Releasing,
            Phase::Informing(_) => State::Informing,
            Phase::InfoBound { .. } => State::InfoBound,
        }
    }
}

/// One exchange's retransmission state (RFC 8415 section 15).
#[derive(Debug, Clone)]
struct Txn {
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
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
    duid: Duid,
    rng: Rng,
    phase: Phase,
    lease: Option<Lease6>,
    info: Option<InfoData>,
    events: VecDeque<Event6>,
    ra: Option<(bool, bool)>,
    sol_max_rt: u64,
    inf_max_rt: u64,
    first_info_sent: bool,
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

impl Client {
    /// A client that starts according to `config.mode` (Stateful: Solicit, Stateless:
    /// Information-request, Auto: wait for [`Client::ra_flags`], Off: nothing).
    pub fn new(config: Config, duid: Duid, now: Instant) -> Self {
        let mut c = Self::bare(config, duid);
        c.begin(now, true);
        c
    }
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
            c.begin(now, true);
        }
        c
    }

    fn bare(config: Config, duid: Duid) -> Self {
        let rng = Rng::new(config.seed);
        Client {
            config,
            duid,
            rng,
            phase: Phase::Idle,
            lease: None,
            info: None,
            events: VecDeque::new(),
            ra: None,
            sol_max_rt: params::SOL_MAX_RT,
            inf_max_rt: params::INF_MAX_RT,
            first_info_sent: false,
            failures: Failures::default(),
        }
    }

    /// Router Advertisement flags seen on the link (Auto mode only). M starts stateful
    /// DHCPv6 unless it is already running; O alone starts an Information-request if the
    /// client is idle. Clearing the flags does not tear down a running lease, and a
    /// stopped client stays stopped.
    pub fn ra_flags(&mut self, now: Instant, managed: bool, other: bool) {
        self.ra = Some((managed, other));
        if self.config.mode != ModeSetting::Auto
            || matches!(self.phase, Phase::LinkDown | Phase::Stopped)
        {
            return;
        }
        match self.effective() {
            Effective::Stateful if !self.stateful_active() => {
                self.start_solicit(now, true);
            }
            Effective::Stateless if matches!(self.phase, Phase::Idle) => self.start_info(now),
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
}

/// The DHCPv6 client's side of the shared surface; the work is in `exchanges.rs`,
/// `receive.rs` and `transmit.rs`.
impl Engine for Client {
    type Transmit = Transmit6;
    type Event = Event6;
    type Addr = Ipv6Addr;
    type State = State;

    fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.receive(now, bytes);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit6> {
        self.transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout()
    }

    fn poll_event(&mut self) -> Option<Event6> {
        self.events.pop_front()
    }

    fn link_changed(&mut self, now: Instant, up: bool) {
        self.on_link(now, up);
    }

    /// DHCPv6 identifies the client by its DUID, not by the MAC: nothing to do.
    fn hw_address_changed(&mut self, _now: Instant, _mac: [u8; 6]) {}

    fn start(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Stopped | Phase::Idle) {
            self.begin(now, true);
        }
    }

    fn stop(&mut self, _now: Instant) {
        self.lose(LostReason::Stopped);
        self.phase = Phase::Stopped;
    }

    fn renew(&mut self, now: Instant) {
        self.renew_now(now);
    }

    fn release(&mut self, now: Instant) {
        self.release_lease(now);
    }

    fn decline(&mut self, now: Instant, addr: Ipv6Addr) {
        self.decline_addr(now, addr);
    }

    /// The message of the exchange in flight goes out again now, same transaction; its
    /// retransmission timer goes on from there.
    fn resend_now(&mut self, now: Instant) {
        if let Some(t) = self.phase.txn_mut().filter(|t| t.count > 0) {
            t.next = now;
        }
    }

    fn state(&self) -> State {
        self.phase.name()
    }

    fn failures(&self) -> u32 {
        self.failures.count()
    }
}
