//! Compile-time behavior of `network!`: every diagnostic (`tests/ui/fail`, each with the exact
//! compiler output in its `.stderr`) and definitions that must compile and run (`tests/ui/pass`).
//!
//! After a deliberate change to a message, regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` and review `git diff tests/ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
