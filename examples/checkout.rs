//! A checkout that fails, under `#[capture]` with the card number and CVV marked sensitive:
//! the stored event names the function and its arguments, with the card details (and every
//! other place they appear, such as the error message) shown as `**********`.
//!
//! ```text
//! cargo run --example checkout
//! ```

use std::fmt;

use stacktrace::{capture, sensitive_variables, Config};

#[derive(Debug)]
struct Basket {
    items: Vec<(&'static str, u64)>,
}

#[derive(Debug)]
enum PaymentError {
    Declined { card: String, reason: String },
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentError::Declined { card, reason } => {
                write!(f, "card {card} was declined: {reason}")
            }
        }
    }
}

impl std::error::Error for PaymentError {}

#[capture]
#[sensitive_variables("card_number", "cvv")]
fn checkout(
    customer: &str,
    basket: &Basket,
    card_number: &str,
    cvv: &str,
) -> Result<u64, PaymentError> {
    let total: u64 = basket.items.iter().map(|(_, cents)| cents).sum();
    if !cvv.chars().all(|c| c.is_ascii_digit()) {
        // A careless message: it repeats the card number. The stored event will not.
        return Err(PaymentError::Declined {
            card: card_number.to_owned(),
            reason: format!("invalid security code for {customer}"),
        });
    }
    Ok(total)
}

fn main() {
    let db = std::env::temp_dir().join(format!("stacktrace-checkout-{}.db", std::process::id()));
    let guard = stacktrace::install_with(Config::default().db_path(&db).capture_env(false));

    let basket = Basket {
        items: vec![("tea", 1250), ("cups", 2400)],
    };
    let result = checkout("ann@example.com", &basket, "4111 1111 1111 1111", "12x");
    println!("checkout returned: {result:?}\n");

    guard.flush();
    let store = stacktrace::store().expect("installed");
    for event in store.query().limit(1).run().expect("query").events {
        println!("{} [{}] {}", event.id, event.level, event.title());
        for call in &event.calls {
            println!("  in {} ({}:{})", call.function, call.file, call.line);
            for arg in &call.args {
                println!("    {} = {}", arg.name, arg.value);
            }
        }
    }
    drop(guard);
    let _ = std::fs::remove_dir_all(&db);
}
