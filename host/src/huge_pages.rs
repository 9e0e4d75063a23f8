//! Transparent huge pages off for the process (the node, and the bench,
//! which shares the machine with the server it measures).
//!
//! Where the kernel's THP mode is `always` (the default of many
//! distributions), the first touch of any 2 MiB-aligned stretch of the
//! heap makes the kernel zero and map a whole 2 MiB page. mimalloc serves
//! small objects from large reserved arenas, so a few kilobytes touched
//! per connection kept whole huge pages resident, and the first burst of
//! pushes after connections were set up spent a fifth of its CPU zeroing
//! pages. Measured with THP off (docs/BENCHMARKS.md, "Huge pages"): about
//! 32% less resident memory per idle gRPC connection, no slow first push,
//! throughput unchanged. Redis and MongoDB advise THP off for the same
//! reasons.
//!
//! mimalloc's own `MIMALLOC_ALLOW_THP` decides instead when it is set
//! (`1` keeps huge pages): an operator who wants them says so there.

/// The environment variable that, when set, leaves the choice to mimalloc.
pub const MIMALLOC_ALLOW_THP: &str = "MIMALLOC_ALLOW_THP";

/// What [`turn_off`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// The process no longer gets transparent huge pages (Linux
    /// `prctl(PR_SET_THP_DISABLE)`, kept by child processes).
    Off,
    /// `MIMALLOC_ALLOW_THP` is set: mimalloc applied that instead.
    LeftToMimalloc,
    /// The kernel refused (older than Linux 3.15, or a sandbox that denies
    /// `prctl`), or this is not Linux: nothing changed.
    Unchanged,
}

/// Turns transparent huge pages off for this process unless
/// `MIMALLOC_ALLOW_THP` is set. Call it at the start of `main`, before the
/// program's work: memory already touched keeps its pages, what is touched
/// later gets small ones.
pub fn turn_off() -> HugePages {
    if std::env::var_os(MIMALLOC_ALLOW_THP).is_some() {
        return HugePages::LeftToMimalloc;
    }
    turn_off_for_process()
}

#[cfg(target_os = "linux")]
fn turn_off_for_process() -> HugePages {
    match rustix::thread::disable_transparent_huge_pages(true) {
        Ok(()) => HugePages::Off,
        Err(_) => HugePages::Unchanged,
    }
}

#[cfg(not(target_os = "linux"))]
fn turn_off_for_process() -> HugePages {
    HugePages::Unchanged
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_process_flag_is_set_unless_mimalloc_decides() -> rustix::io::Result<()> {
        let outcome = turn_off();
        if std::env::var_os(MIMALLOC_ALLOW_THP).is_some() {
            assert_eq!(outcome, HugePages::LeftToMimalloc);
            return Ok(());
        }
        // A sandbox may deny prctl: then nothing may have changed either.
        assert_ne!(outcome, HugePages::LeftToMimalloc);
        let disabled = rustix::thread::transparent_huge_pages_are_disabled()?;
        assert_eq!(disabled, outcome == HugePages::Off);
        Ok(())
    }
}
