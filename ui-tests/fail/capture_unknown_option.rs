use stacktrace::capture;

#[capture(lvl = "warning")]
fn pay(amount: u64) -> Result<(), String> {
    let _ = amount;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
