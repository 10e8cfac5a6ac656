use stacktrace::sensitive_variables;

pub struct Vault;

#[sensitive_variables(key)]
impl Vault {
    pub fn open(&self, key: &str) {
        let _ = key;
    }
}

fn main() {
    Vault.open("k");
}
