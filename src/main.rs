//! netbond: one process for a kernel bond, DHCPv4 and DHCPv6 with a single stable
//! identity, and wpa_supplicant control. See README.md.
//! Everything lives in the library (`lib.rs`); this file only picks the entry point.

fn main() -> std::process::ExitCode {
    one_malloc_arena();
    // Run by a container runtime as a CNI IPAM plugin (/opt/cni/bin/netbond).
    if std::env::var_os("CNI_COMMAND").is_some() {
        return netbond::cni::plugin::main();
    }
    netbond::cli::main()
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core), and
/// each keeps its high-water mark: the writer and blocking-pool threads would each
/// hold memory the event loop's bursts once needed. netbond allocates little and off
/// any hot path, so one arena keeps its memory small and flat. (musl has no arenas.)
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
