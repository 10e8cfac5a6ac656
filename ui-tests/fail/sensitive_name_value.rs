use stacktrace::sensitive_variables;

#[stacktrace::capture]
#[sensitive_variables = "card"]
fn pay(card: &str) -> Result<(), String> {
    let _ = card;
    Ok(())
}

fn main() {
    let _ = pay("x");
}
