//! No library: this package only holds rwsplit's heavy examples, benchmarks and the tests that
//! need their dependencies (see `tools/Cargo.toml`).
