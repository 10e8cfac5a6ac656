//! A crate that denies warnings (rustc's and the workspace's lints) compiles cleanly with the
//! macros on every form.
#![deny(
    warnings,
    missing_docs,
    rust_2018_idioms,
    unused_qualifications,
    unreachable_pub
)]

use stacktrace::{capture, sensitive_variables};

/// An order.
#[derive(Debug)]
pub struct Order {
    /// Its id.
    pub id: u64,
}

/// Free function.
#[capture]
#[sensitive_variables(card)]
pub fn checkout(order: &Order, card: &str, qty: u32) -> Result<u64, String> {
    if card.is_empty() {
        return Err("no card".to_owned());
    }
    Ok(order.id * u64::from(qty))
}

/// Not counted, with `#[sensitive_variables]` below and other options beside it.
#[capture(uncounted, level = "warning")]
#[sensitive_variables(card)]
pub fn checkout_hot(order: &Order, card: &str) -> Result<u64, String> {
    if card.is_empty() {
        return Err("no card".to_owned());
    }
    Ok(order.id)
}

/// Unit return.
#[capture(skip_all)]
pub fn log(line: String) {
    let _ = line;
}

/// Async.
#[capture(level = "info")]
pub async fn fetch(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

/// Method holder.
#[derive(Debug)]
pub struct Svc;

impl Svc {
    /// Method.
    #[capture]
    pub fn run(&self, n: u8) -> Result<u8, String> {
        Ok(n)
    }
}

fn main() {
    let _ = checkout(&Order { id: 1 }, "4111", 2);
    let _ = checkout_hot(&Order { id: 2 }, "");
    log(String::new());
    let _ = fetch(1);
    let _ = Svc.run(1);
}
