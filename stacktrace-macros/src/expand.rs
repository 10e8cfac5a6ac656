//! The instrumented function: a frame describing the call is registered in the chain while
//! the body runs (for `async fn`, while the body is polled), and an `Err` it returns is
//! reported.
//!
//! ```text
//! fn f(a: &A, n: u64) -> Result<T, E> {
//!     static SITE = { path, name, file, line, level, args: [a, n] };
//!     count_call(&SITE);                                  // counted only
//!     let args = [a (the reference, formatted only for an event), n (copied)];
//!     let frame = Frame::new(&SITE, &args);
//!     let result: Result<T, E> = call::<COUNTED, _>(&frame, || -> Result<T, E> { body });
//!     if let Some(e) = result as Err {
//!         count_failure(&SITE);                           // counted only
//!         report(&frame, type, message, sources of e)
//!     }
//!     result
//! }
//!
//! async fn g(..) -> Result<T, E> {
//!     ..same frame..
//!     let result = Instrumented::<_, COUNTED>::new(&frame, async move { type hint; body }).await;
//!     ..same report..
//! }
//! ```
//!
//! Whether the function is counted is a literal of the expansion (`COUNTED`, `true` unless
//! `uncounted`), so that an uncounted function carries no counting code and a counted one
//! only the count of its call on the success path: a panic out of the body is counted by a
//! guard that only unwinding drops. The call is counted before the arguments are taken, so
//! that the cold first count of a thread never runs while they are alive, which would make
//! the compiler keep them on the stack for its unwinding path.
//!
//! `impl Trait` in the return type becomes `_` where the type is spelled out; a function
//! returning nothing, `!` or a bare `impl Trait` is registered but never reported.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{Ident, ItemFn, ReturnType, Type};

use crate::args::{self, Args, Kind};
use crate::fallback;
use crate::valid::{self, How, Param, Plan};

/// Entry point of both attributes.
pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    if args::is_absorbed_marker(&attr) {
        return item;
    }
    let Ok(mut func) = syn::parse2::<ItemFn>(item.clone()) else {
        return fallback::not_a_function(kind, item);
    };
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut args = Args::default();
    if let Err(e) = args::parse_into(kind, attr, Span::call_site(), &mut args) {
        errors.push(e);
    }
    // The other attribute, when it is below this one, is absorbed so that both orders give
    // one expansion.
    let mut kept = Vec::with_capacity(func.attrs.len());
    let mut absorbed = false;
    for attr in std::mem::take(&mut func.attrs) {
        match args::kind_of(&attr) {
            Some(k) if k == kind || (absorbed && k != kind) => {
                errors.push(syn::Error::new_spanned(
                    &attr,
                    format!(
                        "`#[{}]` is repeated on this function; remove one",
                        k.attr_name()
                    ),
                ))
            }
            Some(k) => {
                absorbed = true;
                let parsed = args::tokens_of(&attr, k).and_then(|tokens| {
                    args::parse_into(k, tokens, proc_macro2::Span::call_site(), &mut args)
                });
                if let Err(e) = parsed {
                    errors.push(e);
                }
                // Left in place with its arguments replaced by a marker that makes it expand
                // to nothing new: the user's `use` of it stays used.
                kept.push(args::absorbed_marker(&attr));
            }
            None => kept.push(attr),
        }
    }
    func.attrs = kept;
    let mut errors = errors.into_iter();
    if let Some(mut first) = errors.next() {
        errors.for_each(|e| first.combine(e));
        return fallback::function_with_errors(&func, first);
    }
    match valid::plan(&func, args) {
        Ok(plan) => instrument(func, &plan),
        Err(e) => fallback::function_with_errors(&func, e),
    }
}

/// The return type with every `impl Trait` turned into `_`, usable as a `let` type.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            let underscore = syn::token::Underscore(syn::spanned::Spanned::span(&it.impl_token));
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: underscore,
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// The type to bind the result to, when an `Err` can be told apart; `None` for `()`, `!`
/// and a bare `impl Trait`, which are never `Result`s.
fn result_type(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let mut inner: &Type = ty;
    while let Type::Paren(p) = inner {
        inner = &p.elem;
    }
    match inner {
        Type::ImplTrait(_) | Type::Never(_) => return None,
        Type::Tuple(t) if t.elems.is_empty() => return None,
        _ => {}
    }
    let mut erased = (**ty).clone();
    EraseImplTrait.visit_type_mut(&mut erased);
    Some(erased)
}

fn value_of(p: &Param) -> TokenStream {
    let ident = &p.ident;
    let private = quote!(::stacktrace::__private);
    match (p.how, p.sensitive) {
        (How::Prim, _) => quote!(#private::ArgValue::from(#ident)),
        (How::Str, _) => quote!(#private::ArgValue::Str(#ident)),
        (How::Ref, false) => quote!((&&&#private::View(#ident)).__stacktrace_arg()),
        (How::Ref, true) => quote!((&&&&&#private::SecretView(#ident)).__stacktrace_secret()),
        (How::Eager, false) => quote!((&&&#private::Eager(&#ident)).__stacktrace_arg()),
        (How::Eager, true) => quote!((&&&#private::SecretEager(&#ident)).__stacktrace_secret()),
    }
}

fn instrument(func: ItemFn, plan: &Plan) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let private = quote!(::stacktrace::__private);

    let metas = plan.params.iter().map(|p| {
        let name = p.ident.to_string();
        let (sensitive, shown) = (p.sensitive, p.shown);
        quote!(#private::ArgMeta { name: #name, sensitive: #sensitive, shown: #shown })
    });
    let values = plan.params.iter().map(value_of);
    let level = Ident::new(plan.level, Span::call_site());
    let name = match &plan.name {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let capture = plan.capture;
    let counted = plan.counted;
    let count_call = counted.then(|| quote!(#private::count_call(&__STACKTRACE_SITE);));
    let count_failure = counted.then(|| quote!(#private::count_failure(&__STACKTRACE_SITE);));
    let file_line =
        quote_spanned!(sig.ident.span()=> file: ::core::file!(), line: ::core::line!(),);

    let setup = quote! {
        fn __stacktrace_path() -> &'static str {
            #private::path_of(__stacktrace_path)
        }
        static __STACKTRACE_SITE: #private::Site = #private::Site {
            path: __stacktrace_path,
            name: #name,
            #file_line
            level: #private::Level::#level,
            reports_errors: #capture,
            calls: #private::CallSlot::new(),
            args: &[#(#metas),*],
        };
        #count_call
        let __stacktrace_args = {
            #[allow(unused_imports)]
            use #private::spec::*;
            [#(#values),*]
        };
        let __stacktrace_frame = #private::Frame::new(&__STACKTRACE_SITE, &__stacktrace_args);
    };

    let result_ty = result_type(&sig.output);
    let run = if sig.asyncness.is_some() {
        let hint = result_ty.as_ref().map(|ty| {
            quote! {
                #[allow(
                    unknown_lints,
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::needless_return,
                    clippy::let_with_type_underscore
                )]
                if false {
                    let __stacktrace_fake: #ty = loop {};
                    return __stacktrace_fake;
                }
            }
        });
        quote! {
            #private::Instrumented::<_, #counted>::new(
                &__stacktrace_frame,
                async move { #hint #block },
            )
            .await
        }
    } else {
        // The closure's return type is spelled out so that the body's tail and `return`s
        // coerce to it as they would to the function's (`Box<Concrete>` into
        // `Box<dyn Error>`).
        let arrow = result_ty.as_ref().map(|ty| quote!(-> #ty));
        quote!(#private::call::<#counted, _>(&__stacktrace_frame, || #arrow #block))
    };

    let body = match result_ty {
        Some(ty) => quote! {
            #setup
            #[allow(clippy::let_with_type_underscore)]
            let __stacktrace_result: #ty = #run;
            {
                #[allow(unused_imports)]
                use #private::spec::*;
                if let ::core::option::Option::Some(__stacktrace_err) =
                    (&&#private::ResultProbe(&__stacktrace_result)).__stacktrace_err()
                {
                    #count_failure
                    if #private::wants_errors() {
                        #private::report(
                            &__stacktrace_frame,
                            #private::ErrorParts {
                                type_name: #private::type_name_of(__stacktrace_err),
                                message: (&&&#private::ErrorView(__stacktrace_err))
                                    .__stacktrace_message(),
                                sources: (&&&#private::ErrorView(__stacktrace_err))
                                    .__stacktrace_sources(),
                            },
                        );
                    }
                }
            }
            __stacktrace_result
        },
        None => quote! {
            #setup
            #run
        },
    };

    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}
