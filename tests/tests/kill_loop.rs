//! Opt-in: programs panicking in threads, killed with SIGKILL at a random moment, over and
//! over on one database; every next open must work and keep what was stored before.
//!
//! `STACKTRACE_STRESS=1 cargo test -p stacktrace-tests --test kill_loop -- --nocapture`
//! (`STACKTRACE_KILLS` kills, default 1000; `STACKTRACE_SEED` replays a printed seed;
//! `STACKTRACE_KILL_TARGET` runs another build of the `store_scenario` program).
//!
//! Pins: about one kill in 400 left a database sled refused to open ("Read corrupted data at
//! file offset None"), and from then on every start stored nothing.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stacktrace::Store;
use support::scenario::{db_dir, env_u64, stress_enabled};

/// splitmix64: a seeded sequence, so a failing run can be replayed.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[test]
fn a_program_killed_at_any_moment_leaves_a_database_the_next_open_reads() {
    if !stress_enabled("run the kill loop") {
        return;
    }
    let kills = env_u64("STACKTRACE_KILLS", 1000);
    let seed: u64 = std::env::var("STACKTRACE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("kill loop: {kills} kills, STACKTRACE_SEED={seed}");
    let target = std::env::var_os("STACKTRACE_KILL_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_store_scenario")));
    let mut seq = Seq(seed);
    let (dir, db) = db_dir();
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut stored_before = 0u64;
    for kill in 0..kills {
        let delay = Duration::from_millis(10 + seq.next() % 491);
        let mut child = Command::new(&target)
            .arg("panic-until-killed")
            .arg(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("STACKTRACE_DB")
            .spawn()
            .expect("start the program");
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        match Store::open(&db) {
            Ok(store) => {
                let stored = store.stats().map(|s| s.events).unwrap_or(0);
                if stored < stored_before {
                    failures.push(format!(
                        "kill {kill} after {delay:?}: {stored} events, {stored_before} before"
                    ));
                }
                stored_before = stored;
            }
            Err(e) => {
                failures.push(format!("kill {kill} after {delay:?}: {e}"));
                // Kept for a look; the loop goes on with a fresh database.
                let aside = dir.path().join(format!("failed-{kill}.db"));
                std::fs::rename(&db, &aside).expect("move the failed database aside");
                stored_before = 0;
            }
        }
    }
    println!(
        "kill loop: {kills} kills in {:?}, {} failed, {stored_before} events at the end \
         (STACKTRACE_SEED={seed})",
        started.elapsed(),
        failures.len()
    );
    for f in &failures {
        println!("  {f}");
    }
    assert!(stored_before > 0, "the programs stored nothing");
    assert!(
        failures.is_empty(),
        "{} of {kills} kills failed (STACKTRACE_SEED={seed})",
        failures.len()
    );
}
