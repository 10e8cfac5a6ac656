use stacktrace::capture;

#[capture(skip(amount, ammount))]
fn pay(amount: u64, card: &str) -> Result<(), String> {
    let _ = (amount, card);
    Ok(())
}

fn main() {
    let _ = pay(1, "x");
}
