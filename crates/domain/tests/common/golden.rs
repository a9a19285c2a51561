//! Golden files: the bytes of the wire format, pinned. Shared by the test
//! binaries of every entity type.
//!
//! After a deliberate format change, run with `BLESS=1` to rewrite them, and
//! add an upcaster for the old version.

use std::path::PathBuf;

/// Where golden file `name` lives (under `tests/golden`).
pub fn golden_path(name: &str) -> PathBuf {
    // Cargo sets the variable when it runs the test, too; that value follows
    // the checkout even when the binary was built in another one.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/golden")
        .join(name)
}

/// Compares bytes with a golden file, or writes it under `BLESS=1`.
pub fn assert_golden(name: &str, bytes: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, [bytes, b"\n"].concat()).expect("write golden file");
        return;
    }
    let golden = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", path.display()));
    assert_eq!(
        String::from_utf8_lossy(bytes),
        String::from_utf8_lossy(golden.strip_suffix(b"\n").unwrap_or(&golden)),
        "{name} changed: an accidental wire format change breaks every consumer"
    );
}

/// Every event type of `schemas` has exactly one sample (and so a golden file).
pub fn assert_every_type_sampled(sampled: &[&str], schemas: &[(&str, u32)]) {
    let mut sampled = sampled.to_vec();
    let mut known: Vec<&str> = schemas.iter().map(|(name, _)| *name).collect();
    sampled.sort();
    known.sort();
    assert_eq!(sampled, known);
}
