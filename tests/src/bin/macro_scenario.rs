//! Panics inside `#[capture]` functions, each scenario in a process of its own (the panic
//! hook is process-wide). Scenarios with tokio tasks are in `tests/macros_tasks.rs`, which
//! runs itself as the subprocess.
//!
//! Usage: `macro_scenario <name> <db-path> [arg]`.

use stacktrace::{capture, sensitive_variables, Config};

#[derive(Debug)]
struct Basket {
    items: Vec<&'static str>,
}

#[capture]
fn level_one(user: &str, basket: &Basket) -> Result<(), String> {
    level_two(basket.items.len() as u32, "express")
}

#[capture]
fn level_two(count: u32, shipping: &str) -> Result<(), String> {
    level_three(count * 10, shipping.to_owned())
}

#[capture]
fn level_three(cents: u32, carrier: String) -> Result<(), String> {
    panic!("no rate for {carrier} at {cents}");
}

#[capture]
#[sensitive_variables("password")]
fn authenticate(user: &str, password: &str) {
    panic!("wrong password {password} for {user}");
}

/// A value whose `Debug` panics: kept by reference (it is `Sync`), formatted only for an
/// event.
struct PanickingDebug;

impl std::fmt::Debug for PanickingDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("debug-of-order-failed")
    }
}

#[capture]
fn ship(order: &PanickingDebug, carrier: &str) {
    let _ = order;
    panic!("no carrier {carrier}");
}

/// A credential whose secret text is its `Display`; kept by reference (it is `Sync`).
struct ApiKey(String);

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[capture]
#[sensitive_variables("key")]
fn call_api(key: &ApiKey, path: &str) {
    panic!("api call to {path} refused key {key}");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let arg = args.next().unwrap_or_default();
    let _guard = stacktrace::install_with(Config::default().db_path(&db).capture_env(false));

    match name.as_str() {
        // A panic three captured calls deep, on the main thread: the process ends with 101.
        "deep" => {
            let basket = Basket {
                items: vec!["tea", "cups"],
            };
            let _ = level_one("ann", &basket);
        }
        // A sensitive argument that is also in the panic message.
        "secret" => authenticate("ann", &arg),
        // A panic in a captured function one of whose arguments has a `Debug` that panics,
        // in a thread: the program goes on and says so.
        "debug-panics-in-panic" => {
            let joined = std::thread::spawn(|| ship(&PanickingDebug, "post")).join();
            println!("thread ended: panicked={}", joined.is_err());
        }
        // A sensitive argument held by reference, in the panic message.
        "secret-by-reference" => call_api(&ApiKey(arg), "/v1/orders"),
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}
