//! Parsing of the attribute arguments into typed values; their meaning is checked in
//! [`crate::valid`].

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, LitStr, Meta, Token};

/// Which of the two attributes is expanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Capture,
    Sensitive,
}

impl Kind {
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Kind::Capture => "capture",
            Kind::Sensitive => "sensitive_variables",
        }
    }
}

/// One option of `#[capture(...)]`, as written.
pub(crate) enum CaptureOption {
    Level(Ident, LitStr),
    Name(Ident, LitStr),
    Skip(Ident, Vec<Ident>),
    SkipAll(Ident),
    Uncounted(Ident),
}

impl CaptureOption {
    pub(crate) fn key(&self) -> &Ident {
        match self {
            CaptureOption::Level(k, _)
            | CaptureOption::Name(k, _)
            | CaptureOption::Skip(k, _)
            | CaptureOption::SkipAll(k)
            | CaptureOption::Uncounted(k) => k,
        }
    }
}

impl Parse for CaptureOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        match key.to_string().as_str() {
            "level" | "name" => {
                if !input.peek(Token![=]) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("expected a value: `{key} = \"...\"`"),
                    ));
                }
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), format!("expected a string: `{key} = \"...\"`"))
                })?;
                Ok(if key == "level" {
                    CaptureOption::Level(key, value)
                } else {
                    CaptureOption::Name(key, value)
                })
            }
            "skip" => {
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                Ok(CaptureOption::Skip(key, names.into_iter().collect()))
            }
            "skip_all" => Ok(CaptureOption::SkipAll(key)),
            "uncounted" => Ok(CaptureOption::Uncounted(key)),
            other => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{other}`; expected `level = \"...\"`, `name = \"...\"`, \
                     `skip(...)`, `skip_all` or `uncounted`"
                ),
            )),
        }
    }
}

/// A parameter named in `#[sensitive_variables(...)]`, as a string or an identifier.
pub(crate) struct SensitiveName {
    pub(crate) name: String,
    pub(crate) span: Span,
}

impl Parse for SensitiveName {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            Ok(SensitiveName {
                name: lit.value(),
                span: lit.span(),
            })
        } else if input.peek(Ident) || input.peek(Token![self]) {
            let ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
            Ok(SensitiveName {
                name: ident.to_string(),
                span: ident.span(),
            })
        } else {
            Err(input.error("expected a parameter name, as `\"password\"` or `password`"))
        }
    }
}

/// The arguments of both attributes of one function, however they were written.
#[derive(Default)]
pub(crate) struct Args {
    /// `Some` when `#[capture]` is on the function.
    pub(crate) capture: Option<Vec<CaptureOption>>,
    /// `Some` when `#[sensitive_variables]` is on the function; empty means all arguments.
    pub(crate) sensitive: Option<(Span, Vec<SensitiveName>)>,
}

/// Parses the arguments of the attribute being expanded into `args`.
pub(crate) fn parse_into(
    kind: Kind,
    tokens: TokenStream,
    span: Span,
    args: &mut Args,
) -> syn::Result<()> {
    match kind {
        Kind::Capture => {
            let options = Punctuated::<CaptureOption, Token![,]>::parse_terminated
                .parse2(tokens)?
                .into_iter()
                .collect();
            args.capture = Some(options);
        }
        Kind::Sensitive => {
            let names = Punctuated::<SensitiveName, Token![,]>::parse_terminated
                .parse2(tokens)?
                .into_iter()
                .collect();
            args.sensitive = Some((span, names));
        }
    }
    Ok(())
}

/// Which of our attributes this is, if it is one: `capture`, `stacktrace::capture`,
/// `::stacktrace::capture`, and the same for `sensitive_variables`.
pub(crate) fn kind_of(attr: &Attribute) -> Option<Kind> {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let (last, head) = segments.split_last()?;
    let ours = head.is_empty() || (head.len() == 1 && head[0] == "stacktrace");
    if !ours {
        return None;
    }
    match last.as_str() {
        "capture" => Some(Kind::Capture),
        "sensitive_variables" => Some(Kind::Sensitive),
        _ => None,
    }
}

/// The argument put in place of an absorbed attribute's arguments.
const ABSORBED: &str = "__stacktrace_absorbed";

/// The absorbed attribute, same path (and span, so its import counts as used), marker
/// arguments.
pub(crate) fn absorbed_marker(attr: &Attribute) -> Attribute {
    let path = attr.path();
    let marker = Ident::new(ABSORBED, Span::call_site());
    syn::parse_quote!(#[#path(#marker)])
}

/// Whether the arguments are the marker: the function was already expanded by the other
/// attribute.
pub(crate) fn is_absorbed_marker(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter();
    matches!(
        (iter.next(), iter.next()),
        (Some(proc_macro2::TokenTree::Ident(i)), None) if i == ABSORBED
    )
}

/// The argument tokens of an attribute found on the function (empty for a bare path).
pub(crate) fn tokens_of(attr: &Attribute, kind: Kind) -> syn::Result<TokenStream> {
    match &attr.meta {
        Meta::Path(_) => Ok(TokenStream::new()),
        Meta::List(list) => Ok(list.tokens.clone()),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv.eq_token,
            format!(
                "expected parentheses, as `#[{}(...)]`, not `=`",
                kind.attr_name()
            ),
        )),
    }
}
