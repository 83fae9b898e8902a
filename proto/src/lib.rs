//! Sans-IO protocol engines for netbond.
//!
//! Nothing in this crate touches a socket, a clock or the file system. Time and the
//! interface's current hardware address come in as arguments; packets to send,
//! configuration events and the next deadline come out. That makes every RFC rule a
//! deterministic unit test and every engine trivially fuzzable.
//!
//! - [`engine`]: the [`Engine`] trait, the one sans-IO surface both engines offer.
//! - [`duid`]: DHCP Unique Identifiers and IAIDs, shared by the v4 and v6 engines.
//! - [`dhcp4`]: the RFC 2131 client state machine with an RFC 4361 client identifier.
//! - [`dhcp6`]: the RFC 8415 client.
//! - [`name`]: the one DNS-name rule (host names and search domains).
//! - [`ipv4ll`]: RFC 3927 IPv4 link-local addresses (probe, announce, defend).
//! - [`arp`]: the ARP packet both link-local and the conflict check use.
//! - [`time`]: the engine's clock type and the random source.
//! - [`captive`]: RFC 8910 captive portal URIs, checked.
//!
//! # Example: one identity for both families, and a DHCPv4 engine driven by hand
//!
//! ```
//! use netbond_proto::dhcp4::{Client, ClientId, Config, MessageType, State};
//! use netbond_proto::{Duid, Engine, Iaid, Instant};
//!
//! // The DUID the reference setup's dhclient.conf and dhcp6c shared.
//! let duid: Duid = "00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4".parse().unwrap();
//! let iaid = Iaid::from_name("bond0");
//! let mut client = Client::new(Config::new(ClientId::Rfc4361 { iaid, duid: duid.clone() }), Instant::ZERO);
//!
//! // The interface's MAC comes in as an input (netlink tells the daemon), and the first
//! // transmit is a broadcast DISCOVER built with it.
//! let mac = [0x02, 0, 0, 0, 0, 1];
//! client.hw_address_changed(Instant::ZERO, mac);
//! let tx = client.poll_transmit(Instant::ZERO).unwrap();
//! assert_eq!(tx.kind, MessageType::Discover);
//! assert!(tx.is_broadcast());
//! assert_eq!(tx.chaddr, mac);
//! assert_eq!(client.state(), State::Selecting);
//! assert_eq!(client.state().to_string(), "SELECTING");
//! // Its client identifier is 0xff, the IAID, then the very same DUID DHCPv6 sends.
//! assert_eq!(client.client_id()[0], 0xff);
//! assert_eq!(&client.client_id()[5..], duid.as_bytes());
//! // Nothing more until the first retransmission, 4 s (+/- 1 s) later.
//! assert!(client.poll_transmit(Instant::from_millis(2_000)).is_none());
//! assert!(client.poll_timeout().unwrap() >= Instant::from_millis(3_000));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod backoff;
pub mod captive;
pub mod dhcp4;
pub mod dhcp6;
pub mod duid;
pub mod engine;
pub mod ipv4ll;
pub mod name;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;

pub use duid::{Duid, Iaid};
pub use engine::Engine;
pub use time::{Instant, Rng};
