//! The daemon's lease store (`src/state/store.rs`) on an arbitrary lease
//! file, then the DHCPv4 engine started from whatever lease it accepted, as the daemon
//! does after a restart.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbond_fuzz::store::Store;
use netbond_proto::dhcp4;
use netbond_proto::{Engine, Instant};
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("netbond-fuzz-lease-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let store = Store::open(dir()).expect("open the store directory");
    std::fs::write(dir().join("lease4-c0.json"), data).unwrap();
    std::fs::write(dir().join("lease6-c0.json"), data).unwrap();
    let _ = store.load_lease6("c0");
    let Some(saved) = store.load_lease4("c0") else {
        return;
    };
    // The daemon rebases `acquired` from acquired_unix onto its clock; any value works.
    let mut lease = saved.lease;
    lease.acquired = Instant::from_secs(saved.acquired_unix % (1 << 40));
    let _ = (
        lease.broadcast(),
        lease.renew_at(),
        lease.rebind_at(),
        lease.expires_at(),
    );
    let now = Instant::from_secs(1 << 39);
    let _ = lease.remaining_secs(now);
    let mut c = dhcp4::Client::from_saved(netbond_fuzz::v4_config(), lease, now);
    let mut now = now;
    c.hw_address_changed(now, netbond_fuzz::MAC);
    for _ in 0..4 {
        let mut n = 0;
        while c.poll_transmit(now).is_some() {
            n += 1;
            assert!(n < 16, "poll_transmit keeps returning packets");
        }
        while c.poll_event().is_some() {}
        match c.poll_timeout() {
            Some(t) if t > now => now = t,
            _ => break,
        }
    }
});
