use stacktrace::capture;

#[capture]
#[capture(level = "info")]
fn pay(amount: u64) -> Result<(), String> {
    let _ = amount;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
