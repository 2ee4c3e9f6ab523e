//! The workspace's root package: cross-crate integration tests live in `tests/`, benches in `benches/`.
//! The README is included here so that its examples are compiled and run as doctests.
#![doc = include_str!("../README.md")]
