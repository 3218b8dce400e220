//! A byte counter that many relay tasks add to at once without sharing a cache line:
//! one padded atomic per shard, a thread always adding to the same shard. Reading sums
//! the shards; a reset swaps each to zero, so no byte added meanwhile is lost.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One shard, alone on its cache line.
#[repr(align(64))]
#[derive(Default)]
struct Shard(AtomicU64);

/// How many shards a counter has: one per core, at most 8 (a counter then costs at
/// most 512 bytes, which bounds the memory of thousands of users' counters).
fn shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
    })
}

/// This thread's shard index (threads are numbered as they first count).
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

pub struct Counter {
    shards: Box<[Shard]>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            shards: (0..shards()).map(|_| Shard::default()).collect(),
        }
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counter({})", self.value())
    }
}

impl Counter {
    pub fn add(&self, n: u64) {
        let len = self.shards.len().max(1);
        if let Some(shard) = self.shards.get(shard_index() % len) {
            shard.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn value(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }

    /// The value, leaving zero behind.
    pub fn take(&self) -> u64 {
        self.shards.iter().fold(0u64, |sum, s| {
            sum.wrapping_add(s.0.swap(0, Ordering::Relaxed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn adds_from_many_threads_sum_and_a_take_loses_nothing() {
        let c = Arc::new(Counter::default());
        let taken = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || (0..10_000).for_each(|_| c.add(3)))
            })
            .collect();
        let reader = {
            let (c, taken) = (Arc::clone(&c), Arc::clone(&taken));
            std::thread::spawn(move || {
                for _ in 0..100 {
                    taken.fetch_add(c.take(), Ordering::Relaxed);
                }
            })
        };
        workers.into_iter().for_each(|w| w.join().unwrap());
        reader.join().unwrap();
        assert_eq!(taken.load(Ordering::Relaxed) + c.value(), 4 * 10_000 * 3);
    }
}
