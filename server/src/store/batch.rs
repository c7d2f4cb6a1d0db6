//! An atomic, conditional write: expectations to check, then puts and
//! deletes, counters to add to, and the events that describe the change.

use rust_decimal::Decimal;

/// A set of writes applied all together or not at all.
///
/// Expectations make read-modify-write safe without long-held locks: a
/// service reads a record, computes the new state, and commits with an
/// expectation that the record still holds the bytes it read. If another
/// writer got there first the commit fails with `StoreError::Conflict` and
/// nothing is written.
///
/// Events ride in the same batch: the store appends them to its event log
/// in the same atomic write, giving each the next id in commit order (see
/// [`super::Store`]), so an acknowledged change always has its events and an
/// event never describes a change that was refused.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Keys that must hold exactly this value (`None`: must be absent).
    pub(crate) expectations: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Writes in order; `None` deletes the key.
    pub(crate) writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Event payloads to append to the log, in order (opaque to the store).
    pub(crate) events: Vec<Vec<u8>>,
    /// Counters to add to, in order (see [`Batch::add`]); the store turns
    /// them into writes when it applies the batch.
    pub(crate) adds: Vec<(Vec<u8>, Vec<Decimal>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to hold `current` (or be absent when `None`) at commit.
    pub fn expect(&mut self, key: impl Into<Vec<u8>>, current: Option<&[u8]>) -> &mut Self {
        self.expectations
            .push((key.into(), current.map(<[u8]>::to_vec)));
        self
    }

    /// Writes `value` at `key`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push((key.into(), Some(value.into())));
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push((key.into(), None));
        self
    }

    /// Adds `deltas` element by element to the counter at `key` (a list of
    /// decimals, see [`counter`]; absent counts as zeros) when the batch
    /// is applied; a counter that comes to all zeros is removed.
    ///
    /// Why the store does the addition: maintained totals (a rep's tiers,
    /// a month's revenue) are moved by many concurrent writes. As a
    /// read-modify-write each would expect the value it read, and every
    /// pair of writes touching the same total would conflict; the store
    /// applies batches one after another (group commit: on one thread), so
    /// it can add without conflicts, atomically with the rest of the batch.
    pub fn add(&mut self, key: impl Into<Vec<u8>>, deltas: &[Decimal]) -> &mut Self {
        if deltas.iter().any(|d| !d.is_zero()) {
            self.adds.push((key.into(), deltas.to_vec()));
        }
        self
    }

    /// Appends an event to the log when the batch commits; the store gives
    /// it its id.
    pub fn event(&mut self, payload: impl Into<Vec<u8>>) -> &mut Self {
        self.events.push(payload.into());
        self
    }

    /// How many events the batch appends.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The keys the batch writes, deletes or adds to, in order (writes first).
    pub fn written_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.writes
            .iter()
            .map(|(k, _)| k.as_slice())
            .chain(self.adds.iter().map(|(k, _)| k.as_slice()))
    }

    /// True when the batch writes nothing and appends no event.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty() && self.adds.is_empty()
    }

    /// Turns the counters to add to into writes, reading each counter's
    /// current value from the batch's own writes or else with `current`
    /// (which must see every write applied before this batch).
    pub(crate) fn resolve_adds<E>(
        &mut self,
        mut current: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), E> {
        if self.adds.is_empty() {
            return Ok(());
        }
        let adds = std::mem::take(&mut self.adds);
        let mut sums: std::collections::HashMap<Vec<u8>, Vec<Decimal>> =
            std::collections::HashMap::with_capacity(adds.len());
        let mut order = Vec::new();
        for (key, _) in &adds {
            if !sums.contains_key(key) {
                sums.insert(key.clone(), Vec::new());
                order.push(key.clone());
            }
        }
        let mut own: std::collections::HashMap<&[u8], Option<&[u8]>> =
            std::collections::HashMap::new();
        for (k, v) in &self.writes {
            if sums.contains_key(k) {
                own.insert(k, v.as_deref());
            }
        }
        for key in &order {
            let value = match own.get(key.as_slice()) {
                Some(v) => v.map(<[u8]>::to_vec),
                None => current(key)?,
            };
            sums.insert(key.clone(), counter::decode(value.as_deref()));
        }
        for (key, deltas) in adds {
            let sum = sums.get_mut(&key).expect("every added key has a sum");
            if sum.len() < deltas.len() {
                sum.resize(deltas.len(), Decimal::ZERO);
            }
            for (s, d) in sum.iter_mut().zip(&deltas) {
                *s += *d;
            }
        }
        for key in order {
            let sum = sums.remove(&key).expect("every added key has a sum");
            let value = (!sum.iter().all(Decimal::is_zero)).then(|| counter::encode(&sum));
            self.writes.push((key, value));
        }
        Ok(())
    }
}

/// The stored form of a counter: decimals separated by spaces.
pub mod counter {
    use rust_decimal::Decimal;

    /// A counter's values (empty when absent; an unreadable part counts as
    /// zero, so a damaged counter cannot stop the writes that move it).
    pub fn decode(value: Option<&[u8]>) -> Vec<Decimal> {
        let Some(text) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
            return Vec::new();
        };
        text.split(' ')
            .map(|p| p.parse().unwrap_or_default())
            .collect()
    }

    /// The stored form of `values`.
    pub fn encode(values: &[Decimal]) -> Vec<u8> {
        values
            .iter()
            .map(|v| v.normalize().to_string())
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes()
    }

    /// The `i`-th value (zero when absent).
    pub fn at(values: &[Decimal], i: usize) -> Decimal {
        values.get(i).copied().unwrap_or_default()
    }
}
