use stacktrace::sensitive_variables;

#[sensitive_variables(1)]
fn login(password: &str) {
    let _ = password;
}

fn main() {
    login("x");
}
