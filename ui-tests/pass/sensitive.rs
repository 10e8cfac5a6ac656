//! `#[sensitive_variables]` above or below `#[capture]`, with names as strings or
//! identifiers, alone, and hiding every argument.

use stacktrace::{capture, sensitive_variables};

#[capture]
#[sensitive_variables("password", "card")]
pub fn below(user: &str, password: &str, card: String) -> Result<(), String> {
    let _ = (user, password, card);
    Ok(())
}

#[sensitive_variables(password, card)]
#[capture(level = "warning")]
pub fn above(user: &str, password: &str, card: String) -> Result<(), String> {
    let _ = (user, password, card);
    Ok(())
}

#[stacktrace::sensitive_variables]
#[stacktrace::capture]
pub fn all_hidden(user: &str, password: &str) -> Result<(), String> {
    let _ = (user, password);
    Ok(())
}

#[sensitive_variables("pin")]
pub fn alone(pin: u32, attempts: u8) -> Result<(), String> {
    let _ = (pin, attempts);
    Ok(())
}

#[sensitive_variables]
pub async fn alone_async(token: String) -> Result<(), String> {
    let _ = token;
    Ok(())
}

pub struct Vault;

impl Vault {
    #[sensitive_variables(key)]
    #[capture]
    pub fn open(&self, key: &[u8]) -> Result<(), String> {
        let _ = key;
        Ok(())
    }
}

fn main() {}
