use stacktrace::sensitive_variables;

#[sensitive_variables("pasword")]
fn login(user: &str, password: &str) -> Result<(), String> {
    let _ = (user, password);
    Ok(())
}

fn main() {
    // The function is still emitted: no error here.
    let _ = login("ann", "x");
}
