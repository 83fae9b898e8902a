//! netbond's own route-netlink layer: just the messages and attributes netbond sends
//! and reads (links, addresses, routes, the bond), nothing else.
//!
//! It replaced the rtnetlink crate stack, whose generic parsers of every message kind
//! (traffic control, every link type) were the biggest single share of the static
//! binary. Layout:
//!
//! - [`attr`]: the wire constants (from the kernel's uapi headers `linux/netlink.h`,
//!   `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`), attribute building
//!   with 4-byte alignment, and bounds-checked parsing;
//! - [`socket`]: the asynchronous `NETLINK_ROUTE` socket: requests with sequence
//!   numbers and ACKs, dumps until `NLMSG_DONE`, multicast event streams;
//! - [`msg`]: builders and parsers of link, address and route messages.
//!
//! Every parser is bounds-checked: a truncated or malformed message is skipped or
//! reported as an error, never a panic.

pub mod attr;
pub mod msg;
pub mod socket;

pub use socket::{Fail, Handle};
