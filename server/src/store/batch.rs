//! An atomic, conditional write: expectations to check, then puts and
//! deletes, and the events that describe the change.

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

    /// The keys the batch writes or deletes, in order.
    pub fn written_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.writes.iter().map(|(k, _)| k.as_slice())
    }

    /// True when the batch writes nothing and appends no event.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }
}
