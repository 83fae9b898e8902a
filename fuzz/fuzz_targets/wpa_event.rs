//! The wpa_supplicant control-interface parsers (`src/wifi/wpa/parse.rs`)
//! on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

use netbond::wifi::wpa::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse::is_event(data);
    let ev = parse::parse_event(data);
    let _ = format!("{ev:?}");
    let _ = parse::sanitize(data, data.len() / 2);
    let _ = ev.summary();
    let text = String::from_utf8_lossy(data);
    let _ = parse::parse_status(&text);
    let _ = parse::parse_scan_results(&text);
    let _ = parse::config_ctrl_dir(&text);
});
