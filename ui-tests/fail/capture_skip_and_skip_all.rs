use stacktrace::capture;

#[capture(skip(card), skip_all)]
fn pay(amount: u64, card: &str) -> Result<(), String> {
    let _ = (amount, card);
    Ok(())
}

fn main() {
    let _ = pay(1, "x");
}
