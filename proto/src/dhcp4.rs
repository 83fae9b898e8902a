//! DHCPv4 client engine (RFC 2131). Being written.
