//! When to try again: exponential backoff with full jitter, capped, and the server's
//! `Retry-After` honoured (never retried sooner than the server asked).

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first delay.
    pub base_ms: u64,
    /// No delay exceeds this, except when the server asks for longer.
    pub cap_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: 500,
            cap_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt number `attempt + 1` (attempt counts failures so far, from
    /// 1). `unit_random` is a uniform random number in `[0, 1)` from the host.
    pub fn delay_ms(&self, attempt: u32, retry_after_ms: Option<u64>, unit_random: f64) -> u64 {
        let exp = self
            .base_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.cap_ms);
        let jittered = (exp as f64 * unit_random.clamp(0.0, 1.0)) as u64;
        match retry_after_ms {
            Some(server) => server.max(jittered),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(1, None, 0.999_999), 499);
        assert_eq!(p.delay_ms(2, None, 0.5), 500);
        assert_eq!(p.delay_ms(40, None, 1.0), 60_000);
        assert_eq!(p.delay_ms(1, Some(2000), 0.1), 2000);
        assert_eq!(p.delay_ms(0, None, 0.0), 0);
    }

    proptest! {
        #[test]
        fn bounded(attempt in 0u32..100, r in 0.0f64..1.0, ra in proptest::option::of(0u64..100_000)) {
            let p = RetryPolicy::default();
            let d = p.delay_ms(attempt, ra, r);
            prop_assert!(d <= p.cap_ms.max(ra.unwrap_or(0)));
            if let Some(ra) = ra { prop_assert!(d >= ra); }
        }
    }
}
