//! wpa_supplicant control: an async client for its UNIX datagram control socket
//! (`ctrl`), pure parsers for its events and replies (`parse`), and a supervisor that
//! runs or follows one interface's supplicant (`supervisor`).
//!
//! The classic setup this replaces ran, per interface,
//! `wpa_supplicant -c/etc/wpa_supplicant/wpa_supplicant.conf -Dnl80211,wext,wired -i IF`,
//! reloaded with `wpa_cli reconfigure` + `wpa_cli reassociate` and stopped with
//! `wpa_cli terminate`. `WpaSupervisor` does the same (`WpaHandle::reload`, `stop`),
//! restarts a crashed supplicant with backoff, and keeps an ATTACHed control connection
//! for events; wpa_cli and wpa_gui keep working beside it.

mod ctrl;
pub mod parse;
mod supervisor;

pub use supervisor::{
    SuperviseConfig, SupplicantState, WpaConfig, WpaHandle, WpaMode, WpaState, WpaSupervisor,
    DEFAULT_CTRL_DIR,
};
