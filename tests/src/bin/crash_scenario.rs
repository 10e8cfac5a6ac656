//! A program that dies past the panic hook in a chosen way (a fatal signal, an abort, a
//! stack overflow, a kill), for the crash tests. With `plain` it does the same without the
//! tracker, so that a test can check that the exit status is what it would have been.
//!
//! Usage: `crash_scenario <name> <db-path> [plain|tracked] [secret]`.

use std::io::BufRead;

use stacktrace::{add_breadcrumb, Breadcrumb, Config, Level};

#[path = "crash_scenario/signals.rs"]
mod signals;

#[inline(never)]
fn write_through_null() {
    let p: *mut u64 = std::hint::black_box(std::ptr::null_mut());
    // SAFETY: none; the scenario writes through a null pointer on purpose.
    #[allow(unsafe_code)]
    unsafe {
        p.write_volatile(7);
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let room = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    room[(depth % 64) as usize] + recurse(depth + 1)
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("second panic, while unwinding");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("");
    let db = args.get(2).cloned().unwrap_or_else(|| "events.db".into());
    let plain = args.get(3).is_some_and(|a| a == "plain");
    // What the program did before `install()`: a handler of its own, no core dumps.
    match name {
        "recover-then-exit" | "recover-then-null-write" => signals::recover_faults_on_one_page(),
        "undumpable-null-write" => {
            signals::stop_being_dumpable();
            signals::tell_dumpable_in_handler();
        }
        _ => {}
    }
    let guard = (!plain).then(|| {
        // The `STACKTRACE_*` variables apply (the crash handler's among them).
        let mut config = Config::from_env().unwrap_or_default();
        // And the mail ones, when a scenario sets them (the SMTP password is a secret).
        if std::env::var_os("STACKTRACE_SMTP_URL").is_some() {
            match stacktrace::mail::MailConfig::from_env() {
                Ok(mail) => config = config.mail(mail),
                Err(e) => {
                    eprintln!("bad mail settings: {e}");
                    std::process::exit(2);
                }
            }
        }
        stacktrace::install_with(config.db_path(&db).release("crash-test 1.0"))
    });
    add_breadcrumb(Breadcrumb::new(Level::Info, "setup", "scenario started"));
    add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "cart",
        format!("running {name}"),
    ));
    match name {
        "null-write" => write_through_null(),
        "null-write-in-thread" => {
            let _ = std::thread::Builder::new()
                .name("worker".into())
                .spawn(write_through_null)
                .map(|h| h.join());
        }
        "raise-segv" => {
            // SAFETY: raising a signal has no precondition.
            #[allow(unsafe_code)]
            unsafe {
                libc::raise(libc::SIGSEGV);
            }
        }
        "overflow-main" => {
            println!("{}", recurse(0));
        }
        "overflow-thread" => {
            let _ = std::thread::Builder::new()
                .name("worker".into())
                .spawn(|| println!("{}", recurse(0)))
                .map(|h| h.join());
        }
        "abort" => std::process::abort(),
        "alloc-failure" => {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 4096]>());
        }
        "double-panic" => {
            let _bomb = PanicsOnDrop;
            panic!("first panic");
        }
        "wait-for-kill" => {
            // Told ready on stdout; waits for the parent's SIGKILL.
            println!("ready");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        "secrets-then-wait-for-kill" => {
            // Secrets in a breadcrumb's texts (a URL's password, a bearer token, the SMTP
            // password of the settings) and data, beside plain text; then as
            // `wait-for-kill`.
            let smtp = args.get(4).cloned().unwrap_or_default();
            add_breadcrumb(Breadcrumb::new(
                Level::Info,
                format!("db {smtp}"),
                format!(
                    "connect postgres://u:sv-ring-pw-1@db/x auth Bearer sv-ring-tok-2 \
                     mail {smtp} ring-control-text"
                ),
            ));
            // A value its data hides by name, quoted by the message (the data itself is
            // not copied into the record).
            add_breadcrumb(
                Breadcrumb::new(
                    Level::Info,
                    "login",
                    "signed in with sv-ring-data-4 ring-data-control",
                )
                .with_data("password", "sv-ring-data-4"),
            );
            println!("ready");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        "hold-until-eof" => {
            // Holds the database until stdin closes, then ends cleanly.
            println!("ready");
            for _ in std::io::stdin().lock().lines() {}
        }
        "exit-3" => std::process::exit(3),
        "fork-then-wait-for-kill" | "fork-then-exit" => {
            if let Some(guard) = &guard {
                guard.flush();
            }
            signals::fork_a_child_that_captures_and_exits();
            add_breadcrumb(Breadcrumb::new(Level::Info, "parent", "the child is gone"));
            stacktrace::capture_message("captured in the parent", Level::Warning);
            if let Some(guard) = &guard {
                guard.flush();
            }
            if name == "fork-then-wait-for-kill" {
                println!("ready");
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        "recover-then-exit" => signals::fault_on_the_page(),
        "recover-then-null-write" => {
            signals::fault_on_the_page();
            write_through_null();
        }
        "undumpable-null-write" => {
            // From here on, turning core dumps or tracing back on kills the process.
            signals::forbid_dumpable_and_ptracer();
            write_through_null();
        }
        "forbidden-prctl" => {
            // Control of the above: the filter kills a process that sets either.
            signals::forbid_dumpable_and_ptracer();
            signals::stop_being_dumpable();
        }
        "overflow-foreign-thread" => signals::overflow_in_a_thread_std_did_not_make(recurse, true),
        "overflow-quiet-foreign-thread" => {
            signals::overflow_in_a_thread_std_did_not_make(recurse, false)
        }
        "clean" => {}
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}
