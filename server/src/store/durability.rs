//! When a commit counts as done: group commit by one writer thread (the
//! default, see `group_writer`), a flush per write (for contrast in
//! benchmarks), or none.

/// The durability mode of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// One writer thread applies the batches queued meanwhile together and
    /// flushes once for all of them (default).
    Group,
    /// Each write waits for its own blocking flush (no grouping; slow).
    PerWrite,
    /// No flush before acknowledging. Not durable: for throwaway benchmarks only.
    None,
}
