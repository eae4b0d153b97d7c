//! Durations as Redis commands and courier's scripts take them.
//!
//! A leaf module: it imports nothing of its own crate, so every module may
//! use it without an import circle.

use std::time::Duration;

/// A duration in whole milliseconds, as scripts take it (at least 1: a
/// zero TTL would delete a key the moment it is written).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_is_never_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
