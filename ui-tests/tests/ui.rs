//! Compile-pass and compile-fail cases of `#[capture]`, `#[sensitive_variables]` and the
//! `install!` forms.
//! Regenerate the `.stderr` snapshots with `TRYBUILD=overwrite` and review them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
