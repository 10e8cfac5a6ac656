//! Every supported form of function compiles under `#[capture]`.

use std::fmt::{Debug, Display};
use std::io;

use stacktrace::capture;

#[derive(Debug)]
pub struct Order {
    pub id: u64,
}

pub struct NotDebug;

#[capture]
pub fn free(id: u64, name: &str, order: &Order, note: String, x: NotDebug) -> io::Result<u64> {
    let _ = (name, order, note, x);
    Ok(id)
}

#[capture]
pub fn no_return(id: u64) {
    let _ = id;
}

#[capture]
pub fn early_return_and_question_mark(s: &str) -> Result<u32, std::num::ParseIntError> {
    if s.is_empty() {
        return Ok(0);
    }
    let n: u32 = s.parse()?;
    Ok(n + 1)
}

#[capture]
pub fn mutates_and_moves(
    mut count: u32,
    mut list: Vec<u32>,
    text: String,
) -> Result<Vec<u32>, String> {
    count += 1;
    list.push(count);
    drop(text);
    Ok(list)
}

#[capture]
pub fn patterns((a, b): (u32, u32), Order { id }: Order, _: u8) -> Result<u64, String> {
    Ok(u64::from(a + b) + id)
}

pub struct Repo {
    pub orders: Vec<Order>,
}

impl Repo {
    #[capture]
    pub fn new() -> Result<Self, String> {
        Ok(Repo { orders: Vec::new() })
    }

    #[capture]
    pub fn get(&self, i: usize) -> Result<&Order, String> {
        self.orders.get(i).ok_or_else(|| "none".to_owned())
    }

    #[capture]
    pub fn get_mut(&mut self, i: usize) -> Result<&mut Order, String> {
        self.orders.get_mut(i).ok_or_else(|| "none".to_owned())
    }

    #[capture]
    pub fn into_orders(self) -> Result<Vec<Order>, String> {
        Ok(self.orders)
    }

    #[capture]
    pub fn name<'a>(&'a self, fallback: &'a str) -> Result<&'a str, String> {
        Ok(fallback)
    }

    #[capture]
    pub fn ids(&self) -> Result<impl Iterator<Item = u64> + '_, String> {
        Ok(self.orders.iter().map(|o| o.id))
    }

    #[capture]
    pub fn split<'s>(&self, s: &'s str) -> Result<std::str::Split<'s, char>, String> {
        Ok(s.split(','))
    }

    #[capture]
    pub fn boxed(&self) -> Result<(), Box<dyn std::error::Error>> {
        Err(Box::new(std::fmt::Error))
    }
}

pub trait Store {
    fn load(&self, key: &str) -> Result<String, io::Error>;
    fn load_default(&self) -> Result<String, io::Error> {
        self.load("default")
    }
}

impl Store for Repo {
    #[capture]
    fn load(&self, key: &str) -> Result<String, io::Error> {
        Ok(key.to_owned())
    }
}

#[capture]
pub fn generic<T: Debug + Clone, U>(t: &T, u: U) -> Result<T, String> {
    let _ = u;
    Ok(t.clone())
}

#[capture]
pub fn generic_where<T>(t: T) -> Result<T, T>
where
    T: PartialEq + Default,
{
    if t == T::default() {
        Err(t)
    } else {
        Ok(t)
    }
}

#[capture]
pub fn impl_trait_arg(
    label: impl Display,
    items: impl IntoIterator<Item = u8>,
) -> Result<String, String> {
    Ok(format!("{label}{}", items.into_iter().count()))
}

#[capture]
pub fn impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[capture]
pub fn impl_trait_in_result(n: u32) -> Result<impl Iterator<Item = u32>, String> {
    Ok(0..n)
}

#[capture]
pub fn slices(bytes: &[u8], dynamic: &dyn Debug, s: &'static str) -> Result<usize, String> {
    let _ = (dynamic, s);
    Ok(bytes.len())
}

/// # Safety
/// `p` must be valid for reads.
#[allow(unsafe_code)]
#[capture]
pub unsafe fn read(p: *const u8) -> Result<u8, String> {
    Ok(unsafe { *p })
}

#[capture]
pub fn diverges(code: i32) -> ! {
    std::process::exit(code)
}

#[capture(level = "warning", name = "custom.name", skip(secret))]
pub fn options(id: u64, secret: &str) -> Result<(), String> {
    let _ = (id, secret);
    Ok(())
}

#[capture(skip_all, level = "info")]
pub fn skip_all(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

#[capture]
pub async fn fetch(id: u64, name: &str, order: &Order) -> Result<u64, String> {
    tokio::task::yield_now().await;
    let _ = (name, order);
    Ok(id)
}

#[capture]
pub async fn fetch_unit(id: u64) {
    let _ = id;
}

impl Repo {
    #[capture]
    pub async fn save(&self, order: Order) -> Result<usize, String> {
        let _ = order;
        Ok(self.orders.len())
    }

    #[capture]
    pub async fn push(&mut self, order: Order) -> io::Result<()> {
        self.orders.push(order);
        Ok(())
    }
}

#[capture]
pub async fn checked(id: u64, order: &Order) -> Result<u64, String> {
    fetch_unit(id).await;
    Ok(order.id)
}

fn assert_send<T: Send>(_: T) {}
fn assert_unwind_safe<T: std::panic::UnwindSafe>(_: T) {}

fn main() {
    let repo = Repo::new().unwrap();
    assert_send(repo.save(Order { id: 1 }));
    assert_send(fetch(1, "a", &Order { id: 2 }));
    // The frame keeps what the future was (`fetch` awaits tokio's `!UnwindSafe` yield).
    assert_unwind_safe(fetch_unit(1));
    assert_unwind_safe(checked(1, &Order { id: 2 }));
}
