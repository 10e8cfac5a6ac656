//! `#[capture]` on every supported form of function: an `Err` is stored with the function's
//! path, its arguments and the error's chain; `Ok` stores nothing.

mod support;

use std::fmt;
use std::sync::Mutex;

use stacktrace::{capture, sensitive_variables, Config, CrashEvent, Level, PLACEHOLDER};
use support::install::{install_once, Installed};

/// One runtime for this test binary (the install is process-global).
fn installed() -> &'static Installed {
    install_once(|| Config::default().capture_env(false))
}

/// Every stored event whose message contains `token`.
fn events_with(token: &str) -> Vec<CrashEvent> {
    let i = installed();
    assert!(i.guard.flush());
    let store = stacktrace::store().expect("installed with a store");
    store
        .query()
        .limit(100_000)
        .all()
        .expect("query")
        .into_iter()
        .filter(|e| e.logger == "capture" && e.message.contains(token))
        .collect()
}

fn only_event(token: &str) -> CrashEvent {
    let mut events = events_with(token);
    assert_eq!(events.len(), 1, "events for {token}: {events:#?}");
    events.remove(0)
}

fn args_of(e: &CrashEvent) -> Vec<(String, String)> {
    let call = e.calls.last().expect("the failing call");
    call.args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// An error with a source, so the chain is visible.
#[derive(Debug)]
struct CheckoutError {
    token: String,
    cause: std::num::ParseIntError,
}

impl fmt::Display for CheckoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkout failed ({})", self.token)
    }
}

impl std::error::Error for CheckoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

fn fail(token: &str) -> CheckoutError {
    CheckoutError {
        token: token.to_owned(),
        cause: "x".parse::<u8>().unwrap_err(),
    }
}

#[derive(Debug)]
struct Item {
    sku: u32,
}

/// Has no `Debug`: shown as its type name.
struct Opaque;

fn assert_checkout_event(e: &CrashEvent, token: &str, function: &str) {
    assert_eq!(e.logger, "capture");
    assert_eq!(e.level, Level::Error);
    assert!(e.error_type.ends_with("CheckoutError"), "{}", e.error_type);
    assert_eq!(e.message, format!("checkout failed ({token})"));
    assert_eq!(e.sources, ["invalid digit found in string"]);
    let call = e.calls.last().expect("the failing call");
    assert_eq!(call.function, function);
    assert!(call.file.ends_with("macros_capture.rs"), "{}", call.file);
    assert!(call.line > 0);
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(call.line));
}

#[capture]
fn free(id: u64, name: &str, item: &Item, note: String, o: Opaque) -> Result<u32, CheckoutError> {
    let _ = (note, o);
    if id == 0 {
        return Ok(item.sku);
    }
    Err(fail(name))
}

#[test]
fn free_function() {
    installed();
    let ok = free(0, "free-ok", &Item { sku: 3 }, "n".into(), Opaque);
    assert_eq!(ok.unwrap(), 3);
    assert!(events_with("free-ok").is_empty());

    let err = free(7, "plain-fn-err", &Item { sku: 3 }, "a note".into(), Opaque).unwrap_err();
    assert_eq!(err.token, "plain-fn-err");
    let e = only_event("plain-fn-err");
    assert_checkout_event(&e, "plain-fn-err", "macros_capture::free");
    assert_eq!(
        args_of(&e),
        pairs(&[
            ("id", "7"),
            ("name", "\"plain-fn-err\""),
            ("item", "Item { sku: 3 }"),
            ("note", "\"a note\""),
            ("o", "macros_capture::Opaque"),
        ])
    );
}

#[derive(Debug)]
struct Cart {
    items: Vec<u32>,
}

impl Cart {
    #[capture]
    fn check(&self, code: &str) -> Result<usize, CheckoutError> {
        if code.is_empty() {
            return Ok(self.items.len());
        }
        Err(fail(code))
    }

    #[capture]
    fn add(&mut self, sku: u32, code: &str) -> Result<(), CheckoutError> {
        self.items.push(sku);
        if code.is_empty() {
            Ok(())
        } else {
            Err(fail(code))
        }
    }

    #[capture]
    fn into_total(self, code: &str) -> Result<u32, CheckoutError> {
        if code.is_empty() {
            return Ok(self.items.iter().sum());
        }
        Err(fail(code))
    }

    #[capture]
    fn open(code: &str) -> Result<Cart, CheckoutError> {
        if code.is_empty() {
            return Ok(Cart { items: Vec::new() });
        }
        Err(fail(code))
    }

    /// Returns a reference into `self` through the closure the body runs in.
    #[capture]
    fn first(&self, code: &str) -> Result<&u32, CheckoutError> {
        self.items.first().ok_or_else(|| fail(code))
    }

    #[capture]
    fn first_mut(&mut self, code: &str) -> Result<&mut u32, CheckoutError> {
        self.items.first_mut().ok_or_else(|| fail(code))
    }
}

#[test]
fn methods_and_associated_functions() {
    installed();
    let mut cart = Cart::open("").unwrap();
    assert!(cart.add(5, "").is_ok());
    assert_eq!(cart.check("").unwrap(), 1);
    assert_eq!(*cart.first("").unwrap(), 5);
    *cart.first_mut("").unwrap() = 6;
    assert!(Cart::open("assoc-err").is_err());
    assert!(cart.check("ref-self-err").is_err());
    assert!(cart.add(9, "mut-self-err").is_err());
    let empty = Cart { items: vec![] };
    assert!(empty.first("first-err").is_err());
    assert!(cart.into_total("by-value-err").is_err());

    let e = only_event("assoc-err");
    assert_checkout_event(&e, "assoc-err", "macros_capture::Cart::open");
    assert_eq!(args_of(&e), pairs(&[("code", "\"assoc-err\"")]));

    let e = only_event("ref-self-err");
    assert_checkout_event(&e, "ref-self-err", "macros_capture::Cart::check");
    assert_eq!(
        args_of(&e),
        pairs(&[
            ("self", "Cart { items: [6] }"),
            ("code", "\"ref-self-err\"")
        ])
    );

    // `&mut self` is formatted at entry, before the body pushed 9.
    let e = only_event("mut-self-err");
    assert_checkout_event(&e, "mut-self-err", "macros_capture::Cart::add");
    assert_eq!(
        args_of(&e),
        pairs(&[
            ("self", "Cart { items: [6] }"),
            ("sku", "9"),
            ("code", "\"mut-self-err\"")
        ])
    );

    let e = only_event("first-err");
    assert_checkout_event(&e, "first-err", "macros_capture::Cart::first");

    let e = only_event("by-value-err");
    assert_checkout_event(&e, "by-value-err", "macros_capture::Cart::into_total");
    assert_eq!(
        args_of(&e),
        pairs(&[
            ("self", "Cart { items: [6, 9] }"),
            ("code", "\"by-value-err\"")
        ])
    );
}

trait Pricing {
    fn price(&self, code: &str) -> Result<u32, CheckoutError>;
}

impl Pricing for Cart {
    #[capture]
    fn price(&self, code: &str) -> Result<u32, CheckoutError> {
        Err(fail(code))
    }
}

#[test]
fn trait_impl_method() {
    installed();
    let cart = Cart { items: vec![1] };
    assert!(cart.price("trait-err").is_err());
    let e = only_event("trait-err");
    let function = &e.calls.last().unwrap().function;
    assert!(
        function.contains("Cart") && function.ends_with("price"),
        "{function}"
    );
}

#[capture]
fn generic<T: fmt::Debug, U>(shown: T, hidden: U, code: &str) -> Result<(), CheckoutError> {
    let _ = (shown, hidden);
    if code.is_empty() {
        Ok(())
    } else {
        Err(fail(code))
    }
}

#[capture]
fn impl_trait_arg(label: impl fmt::Display, code: &str) -> Result<String, CheckoutError> {
    if code.is_empty() {
        Ok(label.to_string())
    } else {
        Err(fail(code))
    }
}

#[capture]
fn impl_trait_return(code: &str) -> Result<impl fmt::Display, CheckoutError> {
    if code.is_empty() {
        Ok(42)
    } else {
        Err(fail(code))
    }
}

#[capture]
fn boxed(code: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(Box::new(fail(code)))
}

#[capture]
async fn boxed_async(code: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(Box::new(fail(code)))
}

#[capture]
fn io_alias(path: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// # Safety
/// `ptr` must be valid for a read when `code` is empty.
#[allow(unsafe_code)] // the `unsafe fn` form is what is tested
#[capture]
unsafe fn raw(ptr: *const u8, code: &str) -> Result<u8, CheckoutError> {
    if code.is_empty() {
        // SAFETY: the caller passes a valid pointer.
        Ok(unsafe { *ptr })
    } else {
        Err(fail(code))
    }
}

#[test]
#[allow(unsafe_code)]
fn generic_impl_trait_alias_and_unsafe_functions() {
    installed();
    assert!(generic(1u8, Opaque, "").is_ok());
    assert!(generic(vec![1, 2], Opaque, "generic-err").is_err());
    let e = only_event("generic-err");
    assert_checkout_event(&e, "generic-err", "macros_capture::generic");
    assert_eq!(
        args_of(&e),
        pairs(&[
            ("shown", "[1, 2]"),
            ("hidden", "macros_capture::Opaque"),
            ("code", "\"generic-err\"")
        ])
    );

    assert_eq!(impl_trait_arg("x", "").unwrap(), "x");
    assert!(impl_trait_arg(5, "impl-arg-err").is_err());
    let e = only_event("impl-arg-err");
    assert_checkout_event(&e, "impl-arg-err", "macros_capture::impl_trait_arg");

    assert_eq!(impl_trait_return("").unwrap().to_string(), "42");
    assert!(impl_trait_return("impl-ret-err").is_err());
    only_event("impl-ret-err");

    assert!(boxed("boxed-err").is_err());
    let e = only_event("boxed-err");
    assert_eq!(e.message, "checkout failed (boxed-err)");
    assert_eq!(e.sources, ["invalid digit found in string"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(boxed_async("boxed-async-err")).is_err());
    only_event("boxed-async-err");

    let missing = "/nonexistent/io-alias-err";
    assert!(io_alias(missing).is_err());
    let e = only_event("No such file");
    assert!(
        e.error_type.contains("io::error::Error"),
        "{}",
        e.error_type
    );
    assert_eq!(args_of(&e), pairs(&[("path", &format!("{missing:?}"))]));

    let byte = 9u8;
    assert_eq!(unsafe { raw(&byte, "") }.unwrap(), 9);
    assert!(unsafe { raw(&byte, "unsafe-err") }.is_err());
    let e = only_event("unsafe-err");
    assert_checkout_event(&e, "unsafe-err", "macros_capture::raw");
}

#[capture]
async fn fetch(id: u64, code: &str) -> Result<u64, CheckoutError> {
    tokio::task::yield_now().await;
    if code.is_empty() {
        Ok(id)
    } else {
        Err(fail(code))
    }
}

struct Client {
    base: String,
}

impl Client {
    #[capture(level = "warning")]
    async fn get(&self, path: &str, code: &str) -> Result<String, CheckoutError> {
        tokio::task::yield_now().await;
        if code.is_empty() {
            Ok(format!("{}{path}", self.base))
        } else {
            Err(fail(code))
        }
    }
}

#[test]
fn async_functions() {
    installed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(fetch(4, "").await.unwrap(), 4);
        assert!(fetch(4, "async-free-err").await.is_err());
        let client = Client { base: "b/".into() };
        assert_eq!(client.get("p", "").await.unwrap(), "b/p");
        // Spawned: the future must be Send.
        let task = tokio::spawn(async move { client.get("q", "async-method-err").await });
        assert!(task.await.unwrap().is_err());
    });
    let e = only_event("async-free-err");
    assert_checkout_event(&e, "async-free-err", "macros_capture::fetch");
    assert_eq!(
        args_of(&e),
        pairs(&[("id", "4"), ("code", "\"async-free-err\"")])
    );
    let e = only_event("async-method-err");
    assert_eq!(e.level, Level::Warning);
    let call = e.calls.last().unwrap();
    assert_eq!(call.function, "macros_capture::Client::get");
    assert_eq!(call.args[0].name, "self");
    assert_eq!(call.args[0].value, "macros_capture::Client");
}

#[capture(skip(item), name = "checkout.total")]
fn skipping(item: &Item, code: &str) -> Result<(), CheckoutError> {
    let _ = item;
    Err(fail(code))
}

#[capture(skip_all)]
fn skipping_all(item: &Item, code: &str) -> Result<(), CheckoutError> {
    let _ = item;
    Err(fail(code))
}

#[test]
fn options_skip_and_name() {
    installed();
    assert!(skipping(&Item { sku: 1 }, "skip-err").is_err());
    let e = only_event("skip-err");
    assert_eq!(e.calls.last().unwrap().function, "checkout.total");
    assert_eq!(args_of(&e), pairs(&[("code", "\"skip-err\"")]));

    assert!(skipping_all(&Item { sku: 1 }, "skip-all-err").is_err());
    let e = only_event("skip-all-err");
    assert!(args_of(&e).is_empty());
}

#[capture]
fn innermost(code: &str) -> Result<(), CheckoutError> {
    Err(fail(code))
}

#[capture]
fn middle(code: &str, depth: u8) -> Result<(), CheckoutError> {
    innermost(code)?;
    let _ = depth;
    Ok(())
}

#[capture]
fn outermost(code: &str) -> Result<(), CheckoutError> {
    middle(code, 2)?;
    Ok(())
}

#[capture]
fn handles_then_fails(code: &str) -> Result<(), CheckoutError> {
    let _ = innermost(code);
    // A captured call after the handled error: what follows is a new error.
    let _ = free(0, "", &Item { sku: 0 }, String::new(), Opaque);
    Err(fail(code))
}

#[test]
fn an_error_propagated_with_question_mark_is_stored_once_at_the_innermost_call() {
    installed();
    assert!(outermost("propagated-err").is_err());
    let e = only_event("propagated-err");
    let functions: Vec<&str> = e.calls.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(
        functions,
        [
            "macros_capture::outermost",
            "macros_capture::middle",
            "macros_capture::innermost"
        ]
    );
    assert_eq!(e.calls[1].args[1].value, "2");

    assert!(handles_then_fails("handled-err").is_err());
    assert_eq!(events_with("handled-err").len(), 2);
}

#[capture]
#[sensitive_variables("password")]
fn login_below(user: &str, password: &str) -> Result<(), String> {
    Err(format!(
        "login-below-err: bad password {password} for {user}"
    ))
}

#[sensitive_variables(password)]
#[capture]
fn login_above(user: &str, password: String) -> Result<(), String> {
    Err(format!(
        "login-above-err: bad password {password} for {user}"
    ))
}

#[test]
fn sensitive_arguments_in_both_orders() {
    installed();
    assert!(login_below("ann", "hunter2-below").is_err());
    let e = only_event("login-below-err");
    assert_eq!(
        args_of(&e),
        pairs(&[("user", "\"ann\""), ("password", PLACEHOLDER)])
    );
    assert_eq!(
        e.message,
        format!("login-below-err: bad password {PLACEHOLDER} for ann")
    );

    assert!(login_above("bob", "hunter2-above".into()).is_err());
    let e = only_event("login-above-err");
    assert_eq!(
        args_of(&e),
        pairs(&[("user", "\"bob\""), ("password", PLACEHOLDER)])
    );
    assert!(!e.message.contains("hunter2-above"));
}

#[sensitive_variables]
fn check_pin(pin: &str, attempts: u32) -> Result<(), String> {
    let _ = attempts;
    Err(format!("pin {pin} rejected"))
}

#[capture]
fn unlock(code: &str) -> Result<(), String> {
    check_pin(code, 3).map_err(|e| format!("unlock-err: {e}"))
}

#[test]
fn secrets_of_an_inner_sensitive_only_function_are_scrubbed_from_the_outer_event() {
    installed();
    assert!(unlock("9931").is_err());
    let e = only_event("unlock-err");
    assert_eq!(e.message, format!("unlock-err: pin {PLACEHOLDER} rejected"));
    // `code` is not sensitive here (nor a secret name, as `pin` is), but its value is the
    // inner function's secret.
    assert_eq!(args_of(&e), pairs(&[("code", "\"**********\"")]));
}

static ORDER: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[capture]
fn not_a_result(n: u32) -> Option<u32> {
    ORDER.lock().unwrap().push(n);
    None
}

#[capture]
fn unit(n: u32) {
    ORDER.lock().unwrap().push(n);
}

#[test]
fn functions_that_do_not_return_result_store_nothing() {
    installed();
    assert_eq!(not_a_result(1), None);
    unit(2);
    assert_eq!(*ORDER.lock().unwrap(), [1, 2]);
}

#[capture]
fn anyhow_alias(path: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("anyhow-alias: reading {path}"))?;
    Ok(text)
}

#[test]
fn anyhow_result_alias() {
    installed();
    let path = "/nonexistent/anyhow-alias.toml";
    let err = anyhow_alias(path).unwrap_err();
    // The error is returned unchanged.
    assert_eq!(err.to_string(), format!("anyhow-alias: reading {path}"));
    let e = only_event("anyhow-alias: reading");
    assert_eq!(e.error_type, "anyhow::Error");
    assert_eq!(e.message, format!("anyhow-alias: reading {path}"));
    assert_eq!(e.sources.len(), 1, "{:?}", e.sources);
    assert!(e.sources[0].contains("No such file"), "{:?}", e.sources);
    assert!(e.calls.last().unwrap().function.ends_with("anyhow_alias"));
    assert_eq!(args_of(&e), pairs(&[("path", &format!("{path:?}"))]));
    assert!(anyhow_alias("Cargo.toml").is_ok());
    assert!(
        events_with("Cargo.toml").is_empty(),
        "the success path stores nothing"
    );
}

#[capture]
fn frames_probe(code: &str) -> Result<(), CheckoutError> {
    Err(fail(code))
}

// Regression: the handler that hands a `#[capture]` function's error to the runtime was
// left out of the capture machinery, so the event's first frame was that handler instead
// of the call chain that reported the error.
#[test]
fn the_first_frame_of_a_function_error_is_past_the_capture_machinery() {
    installed();
    let _ = frames_probe("T-FRAMES");
    let e = only_event("T-FRAMES");
    let names: Vec<&str> = e.frames.iter().map(|f| f.function.as_str()).collect();
    assert!(
        names.iter().any(|n| n.contains("frames_probe")),
        "{names:#?}"
    );
    for machinery in [
        "stacktrace::capture::function_error::",
        "stacktrace::capture::trace::",
        "stacktrace::runtime::",
    ] {
        assert!(!names[0].starts_with(machinery), "{names:#?}");
    }
}
