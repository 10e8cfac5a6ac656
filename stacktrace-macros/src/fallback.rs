//! What is emitted when the attribute cannot be applied: the user's item as written (so the
//! rest of the crate and the IDE keep working), followed by the errors.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ItemFn;

use crate::args::Kind;

/// The function without our attributes, then the errors.
pub(crate) fn function_with_errors(func: &ItemFn, error: syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    let mut tokens = func.to_token_stream();
    tokens.extend(errors);
    tokens
}

/// The item unchanged, then an error at its keyword (`struct`, `impl`, `mod`, ...).
pub(crate) fn not_a_function(kind: Kind, item: TokenStream) -> TokenStream {
    let span = keyword_span(&item);
    let message = format!(
        "`#[{}]` applies to functions and methods with a body; remove it from this item",
        kind.attr_name()
    );
    let error = syn::Error::new(span, message).to_compile_error();
    quote!(#item #error)
}

/// The first token after the item's outer attributes and visibility.
fn keyword_span(item: &TokenStream) -> Span {
    let mut tokens = item.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        match &token {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                // `#` `[...]`: an outer attribute.
                tokens.next();
            }
            TokenTree::Ident(i) if i == "pub" => {
                if let Some(TokenTree::Group(g)) = tokens.peek() {
                    if g.delimiter() == Delimiter::Parenthesis {
                        tokens.next();
                    }
                }
            }
            other => return other.span(),
        }
    }
    Span::call_site()
}
