//! A network that failed its checks still gets a type of its name, so code using it does not
//! light up with follow-on errors.

use super::const_widths;
use crate::ast::{DimAst, LayerKindAst, NetworkAst};
use crate::ir::ConstWidths;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};

/// After an error: a type with the network's name and attributes (and, where the widths are
/// known, the signatures of `new`, `predict` and `forward` and the width consts), so only the
/// real errors are reported, not follow-on errors in code that uses the network. The
/// anonymous form becomes a block that evaluates to such a stand-in. After a header error
/// (name unknown) nothing but the errors is emitted.
pub(super) fn stand_in(ast: &NetworkAst, rt: &TokenStream) -> TokenStream {
    if !ast.header_ok {
        return TokenStream::new();
    }
    let anonymous = ast.name.is_none();
    let name = ast
        .name
        .clone()
        .unwrap_or_else(|| format_ident!("AnonymousNetwork"));
    let (vis, attrs) = (&ast.vis, &ast.attrs);
    let dense: Vec<_> = ast
        .layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKindAst::Dense(d) => Some(d),
            _ => None,
        })
        .collect();
    // Const widths through their generated consts, as in the real network.
    let mut widths = ConstWidths::new(name.clone());
    let mut dim = |d: &DimAst| match d {
        DimAst::Lit(_, v) => {
            let v = proc_macro2::Literal::u128_unsuffixed(*v);
            quote!(#v)
        }
        DimAst::Path(p) => widths.dim(p).to_token_stream(),
    };
    let scalar = match &ast.scalar {
        Some(s) if s == "f64" => quote!(f64),
        _ => quote!(f32),
    };
    let io = match (
        dense.first().and_then(|d| d.input.as_ref()),
        dense.last().and_then(|d| d.output.as_ref()),
    ) {
        (Some(i), Some(o)) => {
            let (i, o) = (dim(i), dim(o));
            quote! {
                pub const INPUTS: usize = #i;
                pub const OUTPUTS: usize = #o;
                pub fn predict(&self, x: &#rt::nalgebra::SVector<#scalar, #i>) -> #rt::nalgebra::SVector<#scalar, #o> {
                    ::core::unreachable!()
                }
                pub fn forward(&self, x: &#rt::Batch<#scalar, #i>) -> #rt::Batch<#scalar, #o> {
                    ::core::unreachable!()
                }
            }
        }
        _ => quote!(),
    };
    let widths = const_widths(&name, &widths.into_vec());
    let items = quote! {
        #(#attrs)*
        #[allow(missing_docs, dead_code)]
        #vis struct #name {}
        #widths
        #[allow(missing_docs, dead_code, unused_variables)]
        impl #name {
            pub fn new<R: ?Sized>(rng: &mut R) -> Self {
                ::core::unreachable!()
            }
            #io
        }
    };
    if anonymous {
        quote!({ #items #name::new(&mut ()) })
    } else {
        items
    }
}
