use stacktrace::{capture, sensitive_variables};

#[capture]
#[sensitive_variables("password", password)]
fn login(user: &str, password: &str) -> Result<(), String> {
    let _ = (user, password);
    Ok(())
}

fn main() {
    let _ = login("ann", "x");
}
