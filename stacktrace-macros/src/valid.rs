//! Meaning checks: the attribute arguments against the function they annotate. The result
//! is a [`Plan`] that [`crate::expand`] turns into tokens.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, Type};

use crate::args::{Args, CaptureOption};

/// How an argument's value is kept for the chain and the error path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum How {
    /// A `&str`: the reference is copied, formatted only when needed.
    Str,
    /// A `Copy` primitive (`u64`, `bool`, `char`, ...): copied at entry.
    Prim,
    /// A shared reference (`&T`, `&self`): copied, formatted only when needed.
    Ref,
    /// Anything else (owned values, `&mut`, `self` by value, patterns): formatted at entry,
    /// because the body may move or mutate it.
    Eager,
}

pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) how: How,
    pub(crate) sensitive: bool,
    pub(crate) shown: bool,
}

pub(crate) struct Plan {
    /// `#[capture]` is on the function: an `Err` it returns is stored.
    pub(crate) capture: bool,
    /// Calls and failures are counted: `#[capture]` without `uncounted`.
    pub(crate) counted: bool,
    /// Variant of `stacktrace::Level` for the stored errors.
    pub(crate) level: &'static str,
    pub(crate) name: Option<LitStr>,
    /// The parameters kept in the frame, in signature order (skipped, non-sensitive ones
    /// are left out).
    pub(crate) params: Vec<Param>,
}

/// Level names as `stacktrace::Level::from_str` accepts them.
fn level_variant(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "debug" | "trace" => Some("Debug"),
        "info" => Some("Info"),
        "warning" | "warn" => Some("Warning"),
        "error" => Some("Error"),
        "fatal" | "critical" => Some("Fatal"),
        _ => None,
    }
}

const PRIMITIVES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64", "bool", "char",
];

fn how_of_type(ty: &Type) -> How {
    match ty {
        Type::Group(g) => how_of_type(&g.elem),
        Type::Paren(p) => how_of_type(&p.elem),
        Type::Reference(r) if r.mutability.is_some() => How::Eager,
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => How::Str,
            _ => How::Ref,
        },
        Type::Path(p)
            if p.qself.is_none() && PRIMITIVES.iter().any(|name| p.path.is_ident(name)) =>
        {
            How::Prim
        }
        _ => How::Eager,
    }
}

/// Identifiers bound by a pattern, in order.
fn bound_idents(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bound_idents(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bound_idents(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::Reference(r) => bound_idents(&r.pat, out),
        Pat::Paren(p) => bound_idents(&p.pat, out),
        Pat::Type(t) => bound_idents(&t.pat, out),
        _ => {}
    }
}

/// The function's parameters as (name, how its value is kept).
fn parameters(func: &ItemFn) -> Vec<(Ident, How)> {
    let mut out = Vec::new();
    for input in &func.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                let how = if r.colon_token.is_some() {
                    how_of_type(&r.ty)
                } else if r.reference.is_some() && r.mutability.is_none() {
                    How::Ref
                } else {
                    How::Eager
                };
                out.push((Ident::new("self", r.self_token.span), how));
            }
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                    out.push((p.ident.clone(), how_of_type(&t.ty)));
                }
                pat => {
                    let mut idents = Vec::new();
                    bound_idents(pat, &mut idents);
                    out.extend(idents.into_iter().map(|i| (i, How::Eager)));
                }
            },
        }
    }
    out
}

fn expected_list(params: &[(Ident, How)]) -> String {
    if params.is_empty() {
        "this function has no parameters".to_owned()
    } else {
        let names: Vec<String> = params.iter().map(|(i, _)| format!("`{i}`")).collect();
        format!("expected one of {}", names.join(", "))
    }
}

/// Checks the arguments against the function; every problem found is reported, each at its
/// token.
pub(crate) fn plan(func: &ItemFn, args: Args) -> syn::Result<Plan> {
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(c) = &func.sig.constness {
        errors.push(syn::Error::new(
            c.span,
            "`#[capture]` and `#[sensitive_variables]` cannot be used on a `const fn`; \
             remove `const` or the attribute",
        ));
    }
    let params = parameters(func);
    let known: HashSet<String> = params.iter().map(|(i, _)| i.to_string()).collect();

    let mut level = "Error";
    let mut name = None;
    let mut skip: HashSet<String> = HashSet::new();
    let mut skip_all = false;
    let mut uncounted = false;
    let capture = args.capture.is_some();
    let mut seen: Vec<(String, Span)> = Vec::new();
    for option in args.capture.unwrap_or_default() {
        let key = option.key().to_string();
        if seen.iter().any(|(k, _)| *k == key) {
            errors.push(syn::Error::new(
                option.key().span(),
                format!("option `{key}` is given twice; remove one"),
            ));
            continue;
        }
        seen.push((key, option.key().span()));
        match option {
            CaptureOption::Level(_, value) => match level_variant(&value.value()) {
                Some(v) => level = v,
                None => errors.push(syn::Error::new(
                    value.span(),
                    format!(
                        "unknown level {:?}; expected \"debug\", \"info\", \"warning\", \
                         \"error\" or \"fatal\"",
                        value.value()
                    ),
                )),
            },
            CaptureOption::Name(_, value) => {
                if value.value().trim().is_empty() {
                    errors.push(syn::Error::new(
                        value.span(),
                        "the name is empty; give the name events should show, or remove \
                         `name`",
                    ));
                }
                name = Some(value);
            }
            CaptureOption::Skip(_, names) => {
                for n in names {
                    let text = n.to_string();
                    if !known.contains(&text) {
                        errors.push(syn::Error::new(
                            n.span(),
                            format!(
                                "`{text}` is not a parameter of this function; {}",
                                expected_list(&params)
                            ),
                        ));
                    } else if !skip.insert(text.clone()) {
                        errors.push(syn::Error::new(
                            n.span(),
                            format!("`{text}` is listed twice; remove one"),
                        ));
                    }
                }
            }
            CaptureOption::SkipAll(_) => skip_all = true,
            CaptureOption::Uncounted(_) => uncounted = true,
        }
    }
    if skip_all && !skip.is_empty() {
        if let Some((_, span)) = seen.iter().find(|(k, _)| k == "skip") {
            errors.push(syn::Error::new(
                *span,
                "`skip(...)` has no effect beside `skip_all`; remove one of them",
            ));
        }
    }

    let mut sensitive: HashSet<String> = HashSet::new();
    let mut all_sensitive = false;
    if let Some((_, names)) = args.sensitive {
        all_sensitive = names.is_empty();
        for n in names {
            if !known.contains(&n.name) {
                errors.push(syn::Error::new(
                    n.span,
                    format!(
                        "`{}` is not a parameter of this function; {}",
                        n.name,
                        expected_list(&params)
                    ),
                ));
            } else if !sensitive.insert(n.name.clone()) {
                errors.push(syn::Error::new(
                    n.span,
                    format!("`{}` is listed twice; remove one", n.name),
                ));
            }
        }
    }

    let mut errors = errors.into_iter();
    if let Some(mut first) = errors.next() {
        errors.for_each(|e| first.combine(e));
        return Err(first);
    }

    let params = params
        .into_iter()
        .filter_map(|(ident, how)| {
            let text = ident.to_string();
            let is_sensitive = all_sensitive || sensitive.contains(&text);
            let shown = !skip_all && !skip.contains(&text);
            (is_sensitive || shown).then_some(Param {
                ident,
                how,
                sensitive: is_sensitive,
                shown,
            })
        })
        .collect();
    Ok(Plan {
        capture,
        counted: capture && !uncounted,
        level,
        name,
        params,
    })
}
