//! DHCPv6 client engine (RFC 8415). Being written.
