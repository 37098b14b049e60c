//! Crash points: places where a test can make the process die at once, as `kill -9` would, to
//! prove that a crash at that line leaves nothing behind (see `tests/e2e/crash.rs`).
//!
//! Built only with the `failpoints` feature (the test command turns every feature on; release
//! builds never do). A test arms a point by starting the process with `FAILPOINTS=<name>=return`
//! (the [`fail`] crate's syntax); [`arm`] reads it once at start.

/// Reads `FAILPOINTS`; call once at process start.
pub fn arm() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}

/// Aborts the process here if the point `name` is armed; does nothing otherwise.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("crash point {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
