//! The DHCPv4 engine against arbitrary server packets, in every client state.
//!
//! Input: `[selector, packet...]`. Selector bits 0-2 pick the state (INIT, SELECTING,
//! REQUESTING, BOUND, RENEWING, REBINDING, REBOOTING, RECONFIRMING) reached through a
//! scripted valid exchange; bit 3 patches the packet's header (op, htype, xid, chaddr,
//! cookie) to match the exchange in progress so the fuzzer reaches option handling;
//! bits 4-6 run the engine's timers that many steps afterwards. The whole input is
//! also fed as-is to a fresh client in INIT and in SELECTING.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbond_fuzz::V4Setup;
use netbond_proto::dhcp4::{reply, wire::Message};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let mut s = V4Setup::new(sel);
    let mut pkt = pkt.to_vec();
    if sel & 8 != 0 {
        s.patch(&mut pkt);
    }
    s.feed(&pkt);
    s.run((sel >> 4) & 7);

    // As-is, to fresh clients.
    for fresh in [0, 1] {
        let mut f = V4Setup::new(fresh);
        f.feed(data);
    }

    // The option decoders on their own; whatever the decoder accepts is well framed.
    for p in [&pkt[..], data] {
        if Message::parse(p).is_ok() {
            assert!(
                netbond_fuzz::v4_well_framed(p),
                "parse accepted bad framing"
            );
        }
    }
    if let Ok(m) = Message::parse(&pkt) {
        for (code, v) in &m.options {
            let _ = (m.option_ip(*code), m.option_u32(*code), m.option_u16(*code));
            let _ = netbond_proto::name::host_name(v);
        }
    }
    let _ = reply::classless_routes(&pkt);
    let _ = reply::search_list(&pkt);
});
