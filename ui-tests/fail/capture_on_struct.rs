use stacktrace::capture;

#[capture]
pub struct Payment {
    pub amount: u64,
}

fn main() {
    let _ = Payment { amount: 1 };
}
