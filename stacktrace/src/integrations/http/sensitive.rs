//! A route layer that hides the named body parameters of its requests.

use std::sync::Arc;
use std::task::{Context, Poll};

use super::scope::sensitive_post_parameters;

/// Hides body parameters of the routes it wraps (`["pass_word", "card"]`): form fields and JSON keys (at any
/// depth) with these names, in any case, are stored as `**********`; with
/// [`all`](SensitivePostParameters::all), the whole body is. It works inside a
/// [`StacktraceLayer`](super::StacktraceLayer), which it tells; put it on the route:
///
/// ```
/// use axum::{routing::post, Router};
/// use stacktrace::http::{SensitivePostParameters, StacktraceLayer};
///
/// async fn login(body: String) -> &'static str {
///     "ok"
/// }
/// async fn pay(body: String) -> &'static str {
///     "ok"
/// }
///
/// let app: Router = Router::new()
///     .route(
///         "/login",
///         post(login).layer(SensitivePostParameters::new(["pass_word", "card"])),
///     )
///     .route("/pay", post(pay).layer(SensitivePostParameters::all()))
///     .layer(StacktraceLayer::new());
/// ```
///
/// From inside a handler, [`sensitive_post_parameters`](super::sensitive_post_parameters)
/// does the same.
#[derive(Clone, Debug)]
pub struct SensitivePostParameters {
    names: Arc<[String]>,
}

impl SensitivePostParameters {
    /// Hides the parameters with these names.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return SensitivePostParameters::all();
        }
        SensitivePostParameters {
            names: names.into(),
        }
    }

    /// Hides the whole body.
    pub fn all() -> Self {
        SensitivePostParameters {
            names: Arc::from(Vec::new()),
        }
    }

    fn mark(&self) {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        sensitive_post_parameters(&names);
    }
}

impl<S> tower::Layer<S> for SensitivePostParameters {
    type Service = SensitiveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SensitiveService {
            inner,
            params: self.clone(),
        }
    }
}

/// The service made by [`SensitivePostParameters`].
#[derive(Clone, Debug)]
pub struct SensitiveService<S> {
    inner: S,
    params: SensitivePostParameters,
}

impl<S, R> tower::Service<R> for SensitiveService<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // The stacktrace layer outside has made this request current for its `call`.
        self.params.mark();
        self.inner.call(req)
    }
}
