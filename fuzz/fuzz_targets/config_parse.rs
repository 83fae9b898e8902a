//! The daemon's configuration parser (`src/config.rs`, included by path) on arbitrary
//! text, plus every accessor the daemon calls on a configuration that parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netbond_fuzz::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, None) {
        Ok(cfg) => {
            let _ = cfg.dhcp4_client_id();
            let _ = cfg.dhcp4_timing();
            if let Some(b) = &cfg.bond {
                let _ = (b.fail_over_mac_value(), b.primary_reselect_value());
            }
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
