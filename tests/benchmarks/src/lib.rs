//! What several benchmarks share.

pub mod seed;
