//! The suite's only source of randomness: SplitMix64, seeded from the run's
//! seed. Written out here (not `rand`) so that a seed means the same schedule
//! on every build: `rand`'s generators may change their output between
//! versions, which would silently break `NACRE_FAULT_SEED` replays.

/// A small deterministic generator (Steele, Lea and Flood's SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent generator for one part of the run (a client, the
    /// nemesis), so that what one part draws never shifts another's choices.
    pub fn fork(&self, salt: u64) -> Rng {
        let mut mixer = Rng(self.0 ^ salt.wrapping_mul(0xa076_1d64_78bd_642f));
        Rng(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An index into a slice of `len` elements (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// The elements of `items` in a random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[test]
fn a_seed_always_gives_the_same_numbers() {
    // Pinned values: a change here breaks every recorded replay.
    let mut rng = Rng::new(1);
    assert_eq!(rng.next_u64(), 0x910a_2dec_8902_5cc1);
    let a: Vec<u64> = (0..5).map(|_| Rng::new(7).fork(3).next_u64()).collect();
    assert!(a.windows(2).all(|w| w[0] == w[1]));
    assert_ne!(
        Rng::new(7).fork(3).next_u64(),
        Rng::new(7).fork(4).next_u64()
    );
}
