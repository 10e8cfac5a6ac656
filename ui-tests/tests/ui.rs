//! Compile-pass and compile-fail cases of `#[capture]` and `#[sensitive_variables]`.
//! Regenerate the `.stderr` snapshots with `TRYBUILD=overwrite` and review them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
