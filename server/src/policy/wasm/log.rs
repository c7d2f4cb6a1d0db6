//! The `log` import of interface 1.1: a plugin's lines go to tracing
//! (target `dealflow::policy::plugin`, with the plugin's hash), at most
//! [`LINES_PER_SECOND`] per plugin version; the rest are dropped and
//! counted, and the next line that is written says how many. Writing never
//! fails and never blocks the call for long: a plugin cannot flood the log
//! or slow the server through it.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Most lines one plugin version writes per second.
pub const LINES_PER_SECOND: u32 = 10;

/// Longest line kept, in bytes (the rest is cut).
pub const MAX_LINE_BYTES: usize = 1024;

/// One plugin version's log budget.
pub(crate) struct LogBudget {
    /// How lines name the plugin: the start of its SHA-256.
    plugin: String,
    /// The current one-second window: its start, lines written in it, and
    /// lines dropped since the last one written.
    window: Mutex<(Instant, u32, u64)>,
}

impl LogBudget {
    /// A full budget for the plugin named `plugin`.
    pub(crate) fn new(plugin: String) -> Self {
        Self {
            plugin,
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Whether a line may be written now; if so, how many were dropped
    /// before it.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut w = self.window.lock();
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            w.0 = now;
            w.1 = 0;
        }
        if w.1 >= LINES_PER_SECOND {
            w.2 += 1;
            return None;
        }
        w.1 += 1;
        Some(std::mem::take(&mut w.2))
    }

    /// Writes `message` at `level`, unless the budget is spent.
    pub(crate) fn write(&self, level: tracing::Level, mut message: String) {
        let Some(dropped) = self.admit(Instant::now()) else {
            return;
        };
        if message.len() > MAX_LINE_BYTES {
            let mut end = MAX_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(target: "dealflow::policy::plugin", $level, plugin, dropped, "{message}")
            };
        }
        match level {
            tracing::Level::ERROR => line!(tracing::Level::ERROR),
            tracing::Level::WARN => line!(tracing::Level::WARN),
            tracing::Level::INFO => line!(tracing::Level::INFO),
            tracing::Level::DEBUG => line!(tracing::Level::DEBUG),
            _ => line!(tracing::Level::TRACE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_writes_at_most_its_budget_per_second_and_hears_what_it_dropped() {
        let budget = LogBudget::new("p".into());
        let start = Instant::now();
        let admitted = (0..25).filter(|_| budget.admit(start).is_some()).count();
        assert_eq!(admitted, LINES_PER_SECOND as usize);
        let next = start + Duration::from_secs(1);
        assert_eq!(budget.admit(next), Some(15));
        assert_eq!(budget.admit(next), Some(0));
    }
}
