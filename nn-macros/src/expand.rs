//! The checked network to Rust: the struct, its gradients and tape, inference, training-mode
//! forward, backward, and the runtime traits.
//!
//! Generated code is meant to be read (`cargo expand`): every block is introduced by a comment
//! naming the DSL layer it comes from, and names follow the layers (`dense0`, `dropout0`).

use crate::ast::{DimAst, LayerKindAst, NetworkAst};
use crate::diag::Diagnostics;
use crate::ir::{Act, ConstWidth, ConstWidths, Dim, Init, Layer, LayerKind, Network, Scalar};
use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::Ident;

/// The path generated code uses for the runtime: `::nn::runtime` when the user depends on
/// `nn` (under any name), else `::nn_runtime` (under any name).
pub fn runtime_path() -> TokenStream {
    use proc_macro_crate::{crate_name, FoundCrate};
    // Inside `nn` or `nn-runtime` themselves (their doctests, examples and tests), the crate's
    // own name resolves too: each declares `extern crate self as ...`.
    match crate_name("nn") {
        Ok(FoundCrate::Itself) => quote!(::nn::runtime),
        Ok(FoundCrate::Name(name)) => {
            let name = format_ident!("{}", name);
            quote!(::#name::runtime)
        }
        Err(_) => match crate_name("nn-runtime") {
            Ok(FoundCrate::Itself) => quote!(::nn_runtime),
            Ok(FoundCrate::Name(name)) => {
                let name = format_ident!("{}", name);
                quote!(::#name)
            }
            Err(_) => quote!(::nn::runtime),
        },
    }
}

/// Expands a `network!` input: the generated code, or every error plus a stand-in type so
/// code using the network does not light up with follow-on errors.
pub fn network(input: TokenStream, rt: &TokenStream) -> TokenStream {
    let mut diag = Diagnostics::default();
    let Some(ast) = crate::parse::network(input, &mut diag) else {
        return diag.to_compile_errors();
    };
    let fallback = stand_in(&ast, rt);
    let anonymous = ast.name.is_none() && ast.header_ok;
    match crate::check::network(ast, &mut diag) {
        Some(net) if !diag.has_errors() => generate(&net, rt),
        _ => {
            let errors = diag.to_compile_errors();
            if anonymous {
                // Expression position: the errors become statements of the stand-in's block.
                quote!({ #errors #fallback })
            } else {
                quote!(#errors #fallback)
            }
        }
    }
}

/// After an error: a type with the network's name and attributes (and, where the widths are
/// known, the signatures of `new`, `predict` and `forward` and the width consts), so only the
/// real errors are reported, not follow-on errors in code that uses the network. The
/// anonymous form becomes a block that evaluates to such a stand-in. After a header error
/// (name unknown) nothing but the errors is emitted.
fn stand_in(ast: &NetworkAst, rt: &TokenStream) -> TokenStream {
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

/// The associated consts that hold the widths given by `const` paths: each path appears here,
/// with the user's spans, and nowhere else in the expansion (see [`ConstWidth`]). Nothing for
/// a network without one.
fn const_widths(owner: &Ident, widths: &[ConstWidth]) -> TokenStream {
    if widths.is_empty() {
        return TokenStream::new();
    }
    let items = widths.iter().map(|c| {
        let (item, path) = (&c.item, &c.path);
        let d = doc(format!(
            "The width `{}`, named here only: a `const` of type `usize` in scope.",
            crate::ast::path_text(path)
        ));
        quote!(#d const #item: usize = #path;)
    });
    quote! {
        impl #owner {
            #(#items)*
        }
    }
}

/// `a + b + c` (or `0` for no terms).
fn join_sum(terms: impl Iterator<Item = TokenStream>) -> TokenStream {
    let terms: Vec<TokenStream> = terms.collect();
    if terms.is_empty() {
        quote!(0)
    } else {
        quote!(#(#terms)+*)
    }
}

/// Everything the generated code of one network needs to know.
struct Gen<'a> {
    net: &'a Network,
    rt: &'a TokenStream,
    t: Scalar,
}

fn doc(text: impl AsRef<str>) -> TokenStream {
    let text = format!(" {}", text.as_ref());
    quote!(#[doc = #text])
}

/// A `let _ = "Layer k: text";` marker opening each layer's code in generated function
/// bodies: comments do not survive macro expansion, so this is how `cargo expand` shows
/// which DSL layer the following lines come from.
fn marker(layer: &Layer) -> TokenStream {
    let text = format!("Layer {}: `{}`", layer.position + 1, layer.text);
    quote!(let _ = #text;)
}

impl Gen<'_> {
    fn act(&self, act: Act) -> TokenStream {
        let rt = self.rt;
        let t = self.t;
        match act {
            Act::Identity => quote!(#rt::activation::Identity),
            Act::Sigmoid => quote!(#rt::activation::Sigmoid),
            Act::Tanh => quote!(#rt::activation::Tanh),
            Act::Relu => quote!(#rt::activation::Relu),
            Act::Gelu => quote!(#rt::activation::Gelu),
            Act::GeluTanh => quote!(#rt::activation::GeluTanh),
            Act::Silu => quote!(#rt::activation::Silu),
            Act::Softmax => quote!(#rt::activation::Softmax),
            Act::LeakyRelu(s) => {
                let s = t.lit(s);
                quote!(#rt::activation::LeakyRelu::<#t> { negative_slope: #s })
            }
            Act::Elu(a) => {
                let a = t.lit(a);
                quote!(#rt::activation::Elu::<#t> { alpha: #a })
            }
            Act::Softplus(b, th) => {
                let (b, th) = (t.lit(b), t.lit(th));
                quote!(#rt::activation::Softplus::<#t> { beta: #b, threshold: #th })
            }
        }
    }

    /// `<Act as Activation<T>>::method(&act, args)`.
    fn act_call(&self, act: Act, method: &str, args: TokenStream) -> TokenStream {
        let (rt, t) = (self.rt, self.t);
        let a = self.act(act);
        let m = format_ident!("{}", method);
        quote!(#rt::activation::Activation::<#t>::#m(&#a, #args);)
    }

    /// `out = f(W x + b)` for dense layer `f`: the product alone for the identity, else with
    /// the activation (applied in the product's epilogue when element-wise).
    fn dense_forward(&self, f: &Ident, act: Act, x: TokenStream, out: TokenStream) -> TokenStream {
        if act == Act::Identity {
            quote!(self.#f.forward(#x, #out, n);)
        } else {
            let a = self.act(act);
            quote!(self.#f.forward_activated(#x, #out, n, &#a);)
        }
    }

    fn init(&self, init: Init) -> TokenStream {
        let rt = self.rt;
        match init {
            Init::He => quote!(#rt::init::Init::He),
            Init::Xavier => quote!(#rt::init::Init::Xavier),
            Init::Lecun => quote!(#rt::init::Init::Lecun),
            Init::Zeros => quote!(#rt::init::Init::Zeros),
            Init::Normal(s) => {
                let s = proc_macro2::Literal::f64_unsuffixed(s);
                quote!(#rt::init::Init::Normal(#s))
            }
        }
    }

    fn dense_layers(&self) -> impl Iterator<Item = &Layer> {
        self.net
            .layers
            .iter()
            .filter(|l| matches!(l.kind, LayerKind::Dense { .. }))
    }

    fn dense_type(&self, l: &Layer) -> TokenStream {
        let (rt, t, i, o) = (self.rt, self.t, &l.input, &l.output);
        quote!(#rt::layer::Dense<#t, #i, #o>)
    }

    /// The activation a layer applies, if any.
    fn layer_act(l: &Layer) -> Option<Act> {
        match l.kind {
            LayerKind::Dense { activation, .. } => Some(activation),
            LayerKind::Activation(a) => Some(a),
            LayerKind::Dropout { .. } => None,
        }
    }

    fn is_last(&self, l: &Layer) -> bool {
        l.position + 1 == self.net.layers.len()
    }

    /// Whether a dense layer keeps its pre-activation in a buffer of its own.
    fn keeps_z(&self, l: &Layer) -> bool {
        match l.kind {
            LayerKind::Dense { activation, .. } => {
                activation != Act::Identity && (activation.needs_z() || self.is_last(l))
            }
            _ => false,
        }
    }

    fn out_buf(l: &Layer) -> Ident {
        format_ident!("{}_out", l.name)
    }

    fn z_buf(l: &Layer) -> Ident {
        format_ident!("{}_z", l.name)
    }

    fn mask_buf(l: &Layer) -> Ident {
        format_ident!("{}_mask", l.name)
    }

    fn dx_buf(l: &Layer) -> Ident {
        format_ident!("{}_dx", l.name)
    }

    /// The tape's buffers: (name, width, doc).
    fn tape_buffers(&self) -> Vec<(Ident, Dim, String)> {
        let mut out = Vec::new();
        for l in &self.net.layers {
            let head = format!("Layer {} `{}`:", l.position + 1, l.text);
            match &l.kind {
                LayerKind::Dense { .. } => {
                    if self.keeps_z(l) {
                        out.push((
                            Self::z_buf(l),
                            l.output.clone(),
                            format!("{head} pre-activation `W x + b`."),
                        ));
                    }
                    out.push((
                        Self::out_buf(l),
                        l.output.clone(),
                        format!("{head} output."),
                    ));
                    if l.position > 0 {
                        out.push((
                            Self::dx_buf(l),
                            l.input.clone(),
                            format!("{head} gradient with respect to its input."),
                        ));
                    }
                }
                LayerKind::Dropout { .. } => {
                    out.push((
                        Self::mask_buf(l),
                        l.output.clone(),
                        format!("{head} mask, 0 or 1/(1-p) per value."),
                    ));
                    out.push((
                        Self::out_buf(l),
                        l.output.clone(),
                        format!("{head} output."),
                    ));
                }
                LayerKind::Activation(_) => {
                    out.push((
                        Self::out_buf(l),
                        l.output.clone(),
                        format!("{head} output."),
                    ));
                }
            }
        }
        out.push((
            format_ident!("grad_out"),
            self.net.output().clone(),
            "Gradient of the loss with respect to the output (or the logits), written by the loss."
                .into(),
        ));
        out
    }

    /// The buffer holding the output layer's pre-activation (the logits).
    fn logits_buf(&self) -> Ident {
        let layers = &self.net.layers;
        let last = &layers[layers.len() - 1];
        match last.kind {
            LayerKind::Dense { .. } if self.keeps_z(last) => Self::z_buf(last),
            LayerKind::Dense { .. } => Self::out_buf(last),
            _ => Self::out_buf(&layers[layers.len() - 2]),
        }
    }

    fn output_activation(&self) -> Act {
        let layers = &self.net.layers;
        Self::layer_act(&layers[layers.len() - 1]).unwrap_or(Act::Identity)
    }

    /// Whether a width is given by a `const` path, which the macro cannot read.
    fn has_const_widths(&self) -> bool {
        !self.net.const_widths.is_empty()
    }

    /// A dense layer as `(IN, OUT, bias)`.
    fn triple(l: &Layer) -> (&Dim, &Dim, bool) {
        let bias = matches!(l.kind, LayerKind::Dense { bias: true, .. });
        (&l.input, &l.output, bias)
    }

    /// `Σ IN x OUT (+ OUT with a bias)` over `layers`: plain arithmetic when all their widths
    /// are literals (the macro checked that these fit), else saturating through the runtime,
    /// so that an overflow is reported once, by the assertion of [`Gen::overflow_checks`].
    fn count_expr<'b>(
        &self,
        layers: impl Iterator<Item = (&'b Dim, &'b Dim, bool)>,
    ) -> TokenStream {
        let rt = self.rt;
        let layers: Vec<_> = layers.collect();
        let literal = |d: &Dim| matches!(d, Dim::Lit(_));
        if layers.iter().all(|(i, o, _)| literal(i) && literal(o)) {
            join_sum(layers.iter().map(|(i, o, bias)| match bias {
                true => quote!(#i * #o + #o),
                false => quote!(#i * #o),
            }))
        } else {
            let list = layers.iter().map(|(i, o, bias)| quote!((#i, #o, #bias)));
            quote!(#rt::__private::saturating_parameter_count(&[#(#list),*]))
        }
    }

    fn params_expr(&self) -> TokenStream {
        self.count_expr(self.dense_layers().map(Self::triple))
    }

    fn flops_expr(&self) -> TokenStream {
        self.count_expr(self.dense_layers().map(|l| (&l.input, &l.output, false)))
    }

    /// For a network with a `const` width (the macro checked literal widths itself): one
    /// `const` assertion per dense layer that the parameter count fits in usize. Only the
    /// first layer where the running sum overflows fails, so the user sees one error, under
    /// that layer. `FLOPS` (`Σ IN x OUT`) is at most `PARAMS`.
    fn overflow_checks(&self) -> Vec<TokenStream> {
        if !self.has_const_widths() {
            return Vec::new();
        }
        let rt = self.rt;
        let list = self.dense_layers().map(|l| {
            let (i, o, bias) = Self::triple(l);
            quote!((#i, #o, #bias))
        });
        let list = quote!(&[#(#list),*]);
        self.dense_layers()
            .enumerate()
            .map(|(k, l)| {
                let k = proc_macro2::Literal::usize_unsuffixed(k);
                let msg = format!(
                    "layer {} `{}`: the network's parameter count overflows usize",
                    l.position + 1,
                    l.text
                );
                // The assertion's first tokens at the layer's first, its parentheses at the
                // layer's last, so the compiler underlines the whole layer.
                let mut tokens = l.tokens.clone().into_iter();
                let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
                let last = tokens.last().map_or(first, |t| t.span());
                let mut args = Group::new(
                    Delimiter::Parenthesis,
                    quote!(!::core::matches!(#rt::__private::parameter_count(#list), ::core::result::Result::Err(#k)), #msg),
                );
                args.set_span(last);
                quote_spanned!(first=> const _: () = ::core::assert! #args;)
            })
            .collect()
    }

    fn tensors(&self) -> Vec<(TokenStream, Ident, bool)> {
        // (TensorInfo literal, layer field, is_bias)
        let rt = self.rt;
        let mut out = Vec::new();
        for l in self.dense_layers() {
            let LayerKind::Dense { bias, l1, l2, .. } = l.kind else {
                continue;
            };
            let (i, o) = (&l.input, &l.output);
            let (l1, l2) = (
                proc_macro2::Literal::f64_unsuffixed(l1),
                proc_macro2::Literal::f64_unsuffixed(l2),
            );
            let index_lit = proc_macro2::Literal::usize_unsuffixed(out.len());
            let name = format!("{}.weight", l.name);
            out.push((
                            quote!(#rt::TensorInfo { index: #index_lit, name: #name, rows: #o, cols: #i, is_bias: false, l1: #l1, l2: #l2 }),
                l.name.clone(),
                false,
            ));
            if bias {
                let index_lit = proc_macro2::Literal::usize_unsuffixed(out.len());
                let name = format!("{}.bias", l.name);
                out.push((
                                    quote!(#rt::TensorInfo { index: #index_lit, name: #name, rows: #o, cols: 1, is_bias: true, l1: #l1, l2: #l2 }),
                    l.name.clone(),
                    true,
                ));
            }
        }
        out
    }

    fn tensor_access(field: &Ident, is_bias: bool, mutable: bool) -> TokenStream {
        match (is_bias, mutable) {
            (false, false) => quote!(self.#field.weight.as_slice()),
            (false, true) => quote!(self.#field.weight.as_mut_slice()),
            (true, false) => quote!(self.#field.bias.as_ref().map_or(&[][..], |b| b.as_slice())),
            (true, true) => {
                quote!(self.#field.bias.as_mut().map_or(&mut [][..], |b| b.as_mut_slice()))
            }
        }
    }

    fn parameters_impl(&self, ty: &Ident) -> TokenStream {
        let (rt, t) = (self.rt, self.t);
        let tensors = self.tensors();
        let infos = tensors.iter().map(|(info, _, _)| info);
        let visits = tensors.iter().enumerate().map(|(k, (_, f, b))| {
            let a = Self::tensor_access(f, *b, false);
            quote!(f(&Self::TENSORS[#k], #a);)
        });
        let visits_mut = tensors.iter().enumerate().map(|(k, (_, f, b))| {
            let a = Self::tensor_access(f, *b, true);
            quote!(f(&Self::TENSORS[#k], #a);)
        });
        quote! {
            impl #rt::Parameters<#t> for #ty {
                const TENSORS: &'static [#rt::TensorInfo] = &[#(#infos),*];

                fn for_each_tensor(&self, f: &mut dyn FnMut(&'static #rt::TensorInfo, &[#t])) {
                    #(#visits)*
                }

                fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static #rt::TensorInfo, &mut [#t])) {
                    #(#visits_mut)*
                }
            }
        }
    }
}

/// Generates the code of a checked network.
pub fn generate(net: &Network, rt: &TokenStream) -> TokenStream {
    let g = Gen {
        net,
        rt,
        t: net.scalar,
    };
    let t = net.scalar;
    let name = &net.name;
    let vis = &net.vis;
    let (user_docs, other_attrs): (Vec<_>, Vec<_>) =
        net.attrs.iter().partition(|a| a.path().is_ident("doc"));
    let grads_name = format_ident!("{}Gradients", name);
    let tape_name = format_ident!("{}Tape", name);
    let dsl = net.dsl();
    let (input, output) = (net.input(), net.output());
    let name_str = name.to_string();
    let scalar_str = match t {
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
    };

    // ---- struct docs and fields
    let mut struct_docs = vec![
        doc(""),
        doc(format!("Generated by `network!` from `< {dsl} >`:")),
        doc(""),
    ];
    for l in &net.layers {
        struct_docs.push(doc(format!(
            "{}. `{}` (`{}`)",
            l.position + 1,
            l.text,
            l.name
        )));
    }
    let dense: Vec<&Layer> = g.dense_layers().collect();
    let fields = dense.iter().map(|l| {
        let ty = g.dense_type(l);
        let f = &l.name;
        let bias = match l.kind {
            LayerKind::Dense { bias: false, .. } => "no bias",
            _ => "bias",
        };
        let d = doc(format!(
            "Layer {}: `{}` — weights `{} x {}` and {bias}.",
            l.position + 1,
            l.text,
            l.output.text(),
            l.input.text()
        ));
        quote!(#d pub #f: #ty,)
    });
    let grad_fields = dense.iter().map(|l| {
        let ty = g.dense_type(l);
        let f = &l.name;
        let d = doc(format!(
            "Gradient of layer {} `{}`.",
            l.position + 1,
            l.text
        ));
        quote!(#d pub #f: #ty,)
    });

    // ---- constructors
    let inits = dense.iter().map(|l| {
        let LayerKind::Dense { init, bias, .. } = l.kind else {
            unreachable!("dense_layers yields dense layers")
        };
        let f = &l.name;
        let ty = g.dense_type(l);
        let init = g.init(init);
        quote!(#f: <#ty>::init(#init, #bias, rng),)
    });
    let zeros = dense.iter().map(|l| {
        let LayerKind::Dense { bias, .. } = l.kind else {
            unreachable!("dense_layers yields dense layers")
        };
        let f = &l.name;
        let ty = g.dense_type(l);
        quote!(#f: <#ty>::zeros(#bias),)
    });

    // ---- predict: one sample on the stack
    let mut predict = Vec::new();
    let mut cur: Option<Ident> = None;
    for l in &net.layers {
        predict.push(marker(l));
        match &l.kind {
            LayerKind::Dense { activation, .. } => {
                let f = &l.name;
                let src = match &cur {
                    None => quote!(x.as_slice()),
                    Some(c) => quote!(#c.as_slice()),
                };
                let o = &l.output;
                let mutability = if *activation == Act::Identity {
                    quote!()
                } else {
                    quote!(mut)
                };
                predict.push(quote!(let #mutability #f = self.#f.apply_slice(#src);));
                if *activation != Act::Identity {
                    predict.push(g.act_call(
                        *activation,
                        "forward_in_place",
                        quote!(#f.as_mut_slice(), #o),
                    ));
                }
                cur = Some(f.clone());
            }
            LayerKind::Dropout { .. } => {}
            LayerKind::Activation(a) => {
                let c = cur.clone().unwrap_or_else(|| format_ident!("x"));
                let o = &l.output;
                let f = &l.name;
                predict.push(quote!(let mut #f = #c;));
                predict.push(g.act_call(*a, "forward_in_place", quote!(#f.as_mut_slice(), #o)));
                cur = Some(f.clone());
            }
        }
    }
    let predict_result = cur.clone();

    // ---- forward: a batch, inference mode
    let zero = t.lit(0.0);
    let mut forward = Vec::new();
    let mut cur: Option<Ident> = None;
    for l in &net.layers {
        forward.push(marker(l));
        let o = &l.output;
        match &l.kind {
            LayerKind::Dense { activation, .. } => {
                let f = &l.name;
                let src = match &cur {
                    None => quote!(x),
                    Some(c) => quote!(&#c),
                };
                forward.push(quote!(let mut #f = ::std::vec![#zero; #o * n];));
                forward.push(g.dense_forward(f, *activation, src, quote!(&mut #f)));
                cur = Some(f.clone());
            }
            LayerKind::Dropout { .. } => {}
            LayerKind::Activation(a) => {
                let c = cur.clone().unwrap_or_else(|| format_ident!("x"));
                let f = &l.name;
                forward.push(quote!(let mut #f = #c;));
                forward.push(g.act_call(*a, "forward_in_place", quote!(&mut #f, #o)));
                cur = Some(f.clone());
            }
        }
    }
    let forward_result = cur;

    // ---- forward_train: a batch, recording the tape
    let buffers = g.tape_buffers();
    let buffer_names: Vec<&Ident> = buffers.iter().map(|(n, _, _)| n).collect();
    let tape_fields = buffers.iter().map(|(n, _, d)| {
        let d = doc(d);
        quote!(#d #n: ::std::vec::Vec<#t>,)
    });
    let reserves = buffers
        .iter()
        .map(|(n, w, _)| quote!(#rt::__private::ensure_len(&mut self.#n, #w * n);));
    let mut train = Vec::new();
    let mut input_of: Vec<TokenStream> = Vec::new(); // expression of each layer's input slice
    let mut cur = quote!(x);
    for l in &net.layers {
        train.push(marker(l));
        input_of.push(cur.clone());
        let w = &l.output;
        let out = Gen::out_buf(l);
        match &l.kind {
            LayerKind::Dense { activation, .. } => {
                let f = &l.name;
                if g.keeps_z(l) {
                    let z = Gen::z_buf(l);
                    train.push(quote!(self.#f.forward(#cur, &mut #z[..#w * n], n);));
                    train.push(g.act_call(
                        *activation,
                        "forward",
                        quote!(&#z[..#w * n], &mut #out[..#w * n], #w),
                    ));
                } else {
                    train.push(g.dense_forward(
                        f,
                        *activation,
                        cur.clone(),
                        quote!(&mut #out[..#w * n]),
                    ));
                }
            }
            LayerKind::Dropout { p } => {
                let mask = Gen::mask_buf(l);
                let p = proc_macro2::Literal::f64_unsuffixed(*p);
                train.push(quote! {
                    let p = if training { #p } else { 0.0 };
                    #rt::__private::dropout_forward(p, #cur, &mut #mask[..#w * n], &mut #out[..#w * n], rng);
                });
            }
            LayerKind::Activation(a) => {
                train.push(g.act_call(*a, "forward", quote!(#cur, &mut #out[..#w * n], #w)));
            }
        }
        cur = quote!(&#out[..#w * n]);
    }

    // ---- backward: from the output gradient to every parameter gradient
    let mut back = Vec::new();
    // backward_sgd: the same chain with input gradients only, then the checks and updates.
    let mut back_sgd = Vec::new();
    let mut sgd_checks = Vec::new();
    let mut sgd_updates = Vec::new();
    let mut sgd_fallback = Vec::new();
    let mut grad = format_ident!("grad_out");
    // Whether the layer below's activation derivative was applied by the input-gradient
    // product's epilogue (when the layer below is a dense layer with an activation).
    let mut derivative_done = false;
    for (k, l) in net.layers.iter().enumerate().rev() {
        back.push(marker(l));
        back_sgd.push(marker(l));
        let w = &l.output;
        let out = Gen::out_buf(l);
        // Only the output layer's activation is skipped, when the loss gave the gradient with
        // respect to the logits.
        let guard = |call: TokenStream| {
            if g.is_last(l) {
                quote!(if wrt == #rt::GradientOf::Output { #call })
            } else {
                call
            }
        };
        match &l.kind {
            LayerKind::Dense { activation, .. } => {
                let f = &l.name;
                if *activation != Act::Identity && !std::mem::take(&mut derivative_done) {
                    let z = if g.keeps_z(l) {
                        Gen::z_buf(l)
                    } else {
                        out.clone()
                    };
                    let call = g.act_call(
                        *activation,
                        "backward",
                        quote!(&#z[..#w * n], &#out[..#w * n], &mut #grad[..#w * n], #w),
                    );
                    back.push(guard(call.clone()));
                    back_sgd.push(guard(call));
                }
                let input = &input_of[k];
                sgd_checks
                    .push(quote!(#rt::kernel::weight_gradient_finite(#input, &#grad[..#w * n], n)));
                sgd_updates
                    .push(quote!(self.#f.add_scaled_gradient(#input, &#grad[..#w * n], n, scale);));
                sgd_fallback.push(
                    quote!(self.#f.backward(#input, &#grad[..#w * n], n, &mut grads.#f, None);),
                );
                if l.position == 0 {
                    back.push(
                        quote!(self.#f.backward(#input, &#grad[..#w * n], n, &mut grads.#f, None);),
                    );
                } else {
                    let dx = Gen::dx_buf(l);
                    let i = &l.input;
                    let below = &net.layers[k - 1];
                    match below.kind {
                        LayerKind::Dense {
                            activation: act, ..
                        } if act != Act::Identity => {
                            // dX through the activation of the layer below, in one pass.
                            let a = g.act(act);
                            let out = Gen::out_buf(below);
                            let z = if g.keeps_z(below) {
                                Gen::z_buf(below)
                            } else {
                                out.clone()
                            };
                            let dx_call = quote!(self.#f.input_gradient_activated(&#grad[..#w * n], n, &mut #dx[..#i * n], &#a, &#z[..#i * n], &#out[..#i * n]););
                            back.push(quote!(self.#f.backward(#input, &#grad[..#w * n], n, &mut grads.#f, None);));
                            back.push(dx_call.clone());
                            back_sgd.push(dx_call);
                            derivative_done = true;
                        }
                        _ => {
                            back.push(quote!(self.#f.backward(#input, &#grad[..#w * n], n, &mut grads.#f, Some(&mut #dx[..#i * n]));));
                            back_sgd.push(quote!(self.#f.input_gradient(&#grad[..#w * n], n, &mut #dx[..#i * n]);));
                        }
                    }
                    grad = dx;
                }
            }
            LayerKind::Dropout { .. } => {
                let mask = Gen::mask_buf(l);
                let call = quote!(#rt::__private::dropout_backward(&#mask[..#w * n], &mut #grad[..#w * n]););
                back.push(call.clone());
                back_sgd.push(call);
            }
            LayerKind::Activation(a) => {
                let input = &input_of[k];
                let call = g.act_call(
                    *a,
                    "backward",
                    quote!(#input, &#out[..#w * n], &mut #grad[..#w * n], #w),
                );
                back.push(guard(call.clone()));
                back_sgd.push(guard(call));
            }
        }
    }

    // Every network starts with a dense layer (checked), so there is at least one check.
    let sgd_guard = quote!(if !(#(#sgd_checks)&&*) { #(#sgd_fallback)* return #rt::FusedStep::GradientsWritten; });

    let logits = g.logits_buf();
    let out_last = Gen::out_buf(&net.layers[net.layers.len() - 1]);
    let out_act = match g.output_activation() {
        Act::Identity => quote!(#rt::OutputActivation::Identity),
        Act::Sigmoid => quote!(#rt::OutputActivation::Sigmoid),
        Act::Softmax => quote!(#rt::OutputActivation::Softmax),
        other => {
            let n = other.name();
            quote!(#rt::OutputActivation::Other(#n))
        }
    };
    let layer_infos = net.layers.iter().map(|l| {
        let (lname, text) = (l.name.to_string(), &l.text);
        let (i, o) = (&l.input, &l.output);
        let (kind, params, flops) = match l.kind {
            LayerKind::Dense { bias, .. } => (
                quote!(#rt::LayerKind::Dense),
                g.count_expr(std::iter::once((i, o, bias))),
                g.count_expr(std::iter::once((i, o, false))),
            ),
            LayerKind::Dropout { .. } => (quote!(#rt::LayerKind::Dropout), quote!(0), quote!(0)),
            LayerKind::Activation(_) => (quote!(#rt::LayerKind::Activation), quote!(0), quote!(0)),
        };
        quote!(#rt::LayerInfo { name: #lname, text: #text, kind: #kind, inputs: #i, outputs: #o, params: #params, flops: #flops })
    });
    let params = g.params_expr();
    let flops = g.flops_expr();
    let const_checks = net.const_checks.iter().map(|c| {
        let (cond, msg) = (&c.cond, &c.message);
        quote_spanned!(c.span=> const _: () = ::core::assert!(#cond, #msg);)
    });
    let overflow_checks = g.overflow_checks();
    let const_widths = const_widths(name, &net.const_widths);
    let pairs = g.tensors().into_iter().enumerate().map(|(k, (_, f, b))| {
        let p = Gen::tensor_access(&f, b, true);
        let gr = match b {
            false => quote!(grads.#f.weight.as_slice()),
            true => quote!(grads.#f.bias.as_ref().map_or(&[][..], |b| b.as_slice())),
        };
        quote!(f(&<Self as #rt::Parameters<#t>>::TENSORS[#k], #p, #gr);)
    });
    let params_self = g.parameters_impl(name);
    let params_grads = g.parameters_impl(&grads_name);
    let doc_grads = doc(format!(
        "Gradients of every parameter of [`{name}`], with its layout."
    ));
    let doc_tape = doc(format!(
        "What [`{name}::forward_train`] records for [`{name}::backward`]: buffers sized for the largest batch seen, reused."
    ));
    let doc_input = doc(format!("Input width: {}.", input.text()));
    let doc_output = doc(format!("Output width: {}.", output.text()));
    let predict_result = predict_result.unwrap_or_else(|| format_ident!("x"));
    let forward_result = forward_result.unwrap_or_else(|| format_ident!("x"));

    let items = quote! {
                #(#user_docs)*
        #(#struct_docs)*
        #(#other_attrs)*
        #vis struct #name {
            #(#fields)*
        }

        #const_widths

        #doc_grads
        #[derive(Clone, Debug, PartialEq)]
        #vis struct #grads_name {
            #(#grad_fields)*
        }

        #doc_tape
        #[derive(Clone, Debug, Default)]
        #vis struct #tape_name {
            /// Samples in the last batch recorded.
            batch: usize,
            #(#tape_fields)*
        }

        impl #tape_name {
            /// Grows every buffer to hold a batch of `n` (allocates only for a larger batch).
            fn reserve(&mut self, n: usize) {
                self.batch = n;
                #(#reserves)*
            }
        }

        impl #rt::Tape<#t> for #tape_name {
            fn batch(&self) -> usize {
                self.batch
            }

            fn output_parts(&mut self) -> #rt::OutputParts<'_, #t> {
                let len = #output * self.batch;
                #rt::OutputParts {
                    rows: #output,
                    batch: self.batch,
                    logits: &self.#logits[..len],
                    output: &self.#out_last[..len],
                    grad: &mut self.grad_out[..len],
                }
            }
        }

        #(#const_checks)*
        #(#overflow_checks)*

        #[allow(clippy::identity_op, clippy::erasing_op)]
        impl #name {
            #doc_input
            pub const INPUTS: usize = #input;
            #doc_output
            pub const OUTPUTS: usize = #output;
            /// Number of parameters (weights and biases).
            pub const PARAMS: usize = #params;
            /// Multiply-adds per sample in the forward pass (`Σ IN x OUT` over dense layers).
            pub const FLOPS: usize = #flops;
            /// The layer list as written in the DSL.
            pub const DSL: &'static str = #dsl;
            /// The layers, in order.
            pub const LAYERS: &'static [#rt::LayerInfo] = &[#(#layer_infos),*];

            /// A freshly initialized network: weights by each layer's scheme (He for the ReLU
            /// family, Xavier for the rest, unless `init` says otherwise), biases zero.
            pub fn new<R: #rt::rand::Rng + ?Sized>(rng: &mut R) -> Self {
                Self { #(#inits)* }
            }

            /// Inference on one sample, on the stack: no heap allocation.
            #[must_use]
            pub fn predict(&self, x: &#rt::nalgebra::SVector<#t, #input>) -> #rt::nalgebra::SVector<#t, #output> {
                #(#predict)*
                #predict_result
            }

            /// Inference on a batch, one column per sample (dropout is the identity). Large
            /// batches are split into one part of columns per thread (`kernel::split_batch`),
            /// each part running every layer; the result has the same bits either way.
            #[must_use]
            pub fn forward(&self, x: &#rt::Batch<#t, #input>) -> #rt::Batch<#t, #output> {
                let columns = x.ncols();
                let y = #rt::kernel::split_batch(x.as_slice(), #input, #output, Self::FLOPS, &|x: &[#t]| {
                    let n = x.len() / #input;
                    #(#forward)*
                    #forward_result
                });
                #rt::Batch::<#t, #output>::from_vec_generic(#rt::nalgebra::Const::<#output>, #rt::nalgebra::Dyn(columns), y)
            }

            /// Training-mode forward pass: records every layer's output (and dropout masks,
            /// drawn from `rng`) in `tape`.
            pub fn forward_train<R: #rt::rand::Rng + ?Sized>(
                &self,
                x: #rt::BatchView<'_, #t, #input>,
                tape: &mut #tape_name,
                rng: &mut R,
            ) {
                self.record(x, tape, rng, true);
            }

            /// Inference-mode forward pass recorded in `tape` (dropout is the identity), so a
            /// loss can be evaluated from the logits.
            pub fn forward_eval(&self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name) {
                self.record(x, tape, &mut #rt::__private::NoDraws, false);
            }

            /// Runs every layer on a batch, recording outputs in `tape`; dropout draws masks
            /// from `rng` when `training`, else is the identity.
            #[allow(unused_variables)]
            fn record<R: #rt::rand::Rng + ?Sized>(
                &self,
                x: #rt::BatchView<'_, #t, #input>,
                tape: &mut #tape_name,
                rng: &mut R,
                training: bool,
            ) {
                let n = x.ncols();
                tape.reserve(n);
                let x = &x.as_slice()[..#input * n];
                let #tape_name { #(#buffer_names,)* .. } = tape;
                #(#train)*
            }

            /// Backward pass: from the loss gradient in `tape` (with respect to `wrt`), the
            /// gradient of every parameter into `grads`. `x` is the batch of `forward_train`.
            pub fn backward(
                &self,
                x: #rt::BatchView<'_, #t, #input>,
                tape: &mut #tape_name,
                wrt: #rt::GradientOf,
                grads: &mut #grads_name,
            ) {
                let n = tape.batch;
                let x = &x.as_slice()[..#input * n];
                let #tape_name { #(#buffer_names,)* .. } = tape;
                #(#back)*
            }

            /// Backward pass fused with a plain SGD step (`scale = −lr`): every input gradient
            /// from the weights before the step, then each dense layer's parameters updated
            /// by its weight-gradient product, `W ← scale·dZ Xᵀ + W`, `b ← b + scale·dZ 1`.
            /// Unless every gradient is sure to be finite, writes the gradients into `grads`
            /// instead (as `backward` does), changes no parameter and says so.
            pub fn backward_sgd(
                &mut self,
                x: #rt::BatchView<'_, #t, #input>,
                tape: &mut #tape_name,
                wrt: #rt::GradientOf,
                scale: #t,
                grads: &mut #grads_name,
            ) -> #rt::FusedStep {
                let n = tape.batch;
                let x = &x.as_slice()[..#input * n];
                let #tape_name { #(#buffer_names,)* .. } = tape;
                #(#back_sgd)*
                #sgd_guard
                #(#sgd_updates)*
                #rt::FusedStep::Stepped
            }

            /// A Keras-style table of the layers, output shapes and parameter counts.
            pub fn summary(&self) -> #rt::summary::Summary {
                #rt::summary::Summary {
                    name: #name_str,
                    scalar: #scalar_str,
                    inputs: Self::INPUTS,
                    layers: Self::LAYERS,
                    params: Self::PARAMS,
                    flops: Self::FLOPS,
                }
            }
        }

        impl #grads_name {
            /// Gradients of zeros.
            pub fn zeros() -> Self {
                Self { #(#zeros)* }
            }
        }

        #params_self
        #params_grads

        impl #rt::Network<#input, #output> for #name {
            type Scalar = #t;
            type Gradients = #grads_name;
            type Tape = #tape_name;

            const NAME: &'static str = #name_str;
            const DSL: &'static str = #dsl;
            const PARAMS: usize = #name::PARAMS;
            const FLOPS: usize = #name::FLOPS;
            const LAYERS: &'static [#rt::LayerInfo] = #name::LAYERS;
            const OUTPUT_ACTIVATION: #rt::OutputActivation = #out_act;

            fn init<R: #rt::rand::Rng + ?Sized>(rng: &mut R) -> Self {
                #name::new(rng)
            }

            fn predict(&self, x: &#rt::nalgebra::SVector<#t, #input>) -> #rt::nalgebra::SVector<#t, #output> {
                #name::predict(self, x)
            }

            fn forward(&self, x: &#rt::Batch<#t, #input>) -> #rt::Batch<#t, #output> {
                #name::forward(self, x)
            }

            fn new_tape(&self) -> #tape_name {
                #tape_name::default()
            }

            fn zero_gradients(&self) -> #grads_name {
                #grads_name::zeros()
            }

            fn forward_train<R: #rt::rand::Rng + ?Sized>(&self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name, rng: &mut R) {
                #name::forward_train(self, x, tape, rng)
            }

            fn forward_eval(&self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name) {
                #name::forward_eval(self, x, tape)
            }

            fn backward(&self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name, wrt: #rt::GradientOf, grads: &mut #grads_name) {
                #name::backward(self, x, tape, wrt, grads)
            }

            fn backward_sgd(&mut self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name, wrt: #rt::GradientOf, scale: #t, grads: &mut #grads_name) -> #rt::FusedStep {
                #name::backward_sgd(self, x, tape, wrt, scale, grads)
            }

            fn for_each_param_grad(
                &mut self,
                grads: &#grads_name,
                f: &mut #rt::network::ParamGradVisitor<'_, #t>,
            ) {
                #(#pairs)*
            }
        }
    };
    if net.anonymous {
        quote! {{
            #items
            #name::new(&mut <#rt::rand::rngs::StdRng as #rt::rand::SeedableRng>::seed_from_u64(0))
        }}
    } else {
        items
    }
}
