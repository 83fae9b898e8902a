//! The DHCPv6 engine against arbitrary server messages, in every client state.
//!
//! Input: `[selector, message...]`. Selector `% 12` picks the state (idle, soliciting,
//! requesting, bound, renewing, rebinding, confirming, informing, info-bound,
//! declining, releasing, soliciting with Rapid Commit) reached through a scripted
//! valid exchange; bit 4 patches the message's xid to the exchange in progress (the
//! seeds carry our client identifier); bits 5-7 run the timers that many steps. The
//! whole input is also fed as-is to a fresh idle and a fresh soliciting client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbond_fuzz::V6Setup;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, msg)) = data.split_first() else {
        return;
    };
    let mut s = V6Setup::new(sel & 0x0f);
    let mut msg = msg.to_vec();
    if sel & 0x10 != 0 {
        s.patch(&mut msg);
    }
    s.feed(&msg);
    s.run(sel >> 5);

    for fresh in [0, 1] {
        let mut f = V6Setup::new(fresh);
        f.feed(data);
    }
});
