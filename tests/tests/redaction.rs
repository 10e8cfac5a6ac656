//! Secrets in extra data, tags and the environment never reach the database files.

mod support;

use stacktrace::{Store, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::scenario::{db_dir, scenario_command};

#[test]
fn redacted_fields_and_secret_environment_are_absent_from_raw_bytes() {
    let (dir, db) = db_dir();
    let canary = "canary-7f3a9c-field";
    let env_canary = "canary-2b8e1d-env";
    let mut cmd = scenario_command("secrets", &db, canary);
    cmd.env("MY_API_KEY", env_canary)
        .env("PLAIN_SETTING", "visible-env-marker");
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");

    {
        let store = Store::open(&db).unwrap();
        let e = &store.query().run().unwrap().events[0];
        assert_eq!(e.extra["password"], PLACEHOLDER);
        assert_eq!(e.extra["form"]["card"]["Token"], PLACEHOLDER);
        assert_eq!(e.extra["form"]["note"], "visible-marker");
        assert_eq!(e.tags["access_token"], PLACEHOLDER);
        assert_eq!(e.context.environment["MY_API_KEY"], PLACEHOLDER);
        assert_eq!(e.context.environment["PLAIN_SETTING"], "visible-env-marker");
    }

    let bytes = raw_bytes(dir.path());
    // The scan sees stored text: the markers stored in clear are found...
    assert!(contains(&bytes, b"visible-marker"));
    assert!(contains(&bytes, b"visible-env-marker"));
    // ...and the secrets are not.
    assert!(!contains(&bytes, canary.as_bytes()), "field canary on disk");
    assert!(
        !contains(&bytes, env_canary.as_bytes()),
        "environment canary on disk"
    );
    assert!(!run.stderr.contains(canary) && !run.stdout.contains(canary));
}
