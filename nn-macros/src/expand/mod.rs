//! The checked network to Rust: the struct, its gradients and tape, inference, training-mode
//! forward, backward, and the runtime traits.
//!
//! Every layer is a runtime type implementing `nn_runtime::layer::Layer`; the generated code
//! declares one field per layer and calls the trait's methods in a fixed chain, the output
//! of each layer being the input of the next. No layer's mathematics is written here: what a
//! kind of layer is in the generated code (its type, its value, its tape and gradients, the
//! tensors it persists) is the one table [`Gen::parts`]; the rest is plumbing.
//!
//! One file per thing generated: [`types`] (the struct, its gradients and tape), [`forward`]
//! (inference and the recording forward), [`backward`], [`glue`] (the runtime traits and the
//! tensor list), [`counts`] (`PARAMS`, `FLOPS`, the layer table) and [`stand_in`] (the type
//! emitted after an error).
//!
//! Generated code is meant to be read (`cargo expand`): every block is introduced by a marker
//! naming the DSL layer it comes from, and names follow the layers (`dense0`, `dropout0`).

mod backward;
mod counts;
mod forward;
mod glue;
mod stand_in;
mod types;

use crate::diag::Diagnostics;
use crate::ir::{Act, ConstWidth, Init, InitChoice, Layer, LayerKind, Network, Scalar};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use stand_in::stand_in;
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

/// The associated consts that hold the widths given by `const` paths: each path appears here,
/// with the user's spans, and nowhere else in the expansion (see [`ConstWidth`]). Nothing for
/// a network without one.
pub(crate) fn const_widths(owner: &Ident, widths: &[ConstWidth]) -> TokenStream {
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

/// Everything the generated code of one network needs to know.
struct Gen<'a> {
    net: &'a Network,
    rt: &'a TokenStream,
    t: Scalar,
}

/// What one kind of layer is in the generated code: the row of the table [`Gen::parts`].
struct Parts {
    /// The field's type, e.g. `Dense<f32, 784, 128, Relu>`.
    ty: TokenStream,
    /// Its initial value (`rng` in scope).
    value: TokenStream,
    /// The type of what it records beyond its output (`Layer::Tape`), when not `()`.
    tape: Option<TokenStream>,
    /// The type of its parameters' gradients (`Layer::Gradients`) and their zeros, for a
    /// layer with parameters.
    grads: Option<(TokenStream, TokenStream)>,
    /// Whether it implements `InPlace`: inference overwrites its input, backward works on
    /// `dy` itself.
    in_place: bool,
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
    /// The runtime type of an activation.
    fn act_ty(&self, act: Act) -> TokenStream {
        let (rt, t) = (self.rt, self.t);
        match act {
            Act::Identity => quote!(#rt::activation::Identity),
            Act::Sigmoid => quote!(#rt::activation::Sigmoid),
            Act::Tanh => quote!(#rt::activation::Tanh),
            Act::Relu => quote!(#rt::activation::Relu),
            Act::Gelu => quote!(#rt::activation::Gelu),
            Act::GeluTanh => quote!(#rt::activation::GeluTanh),
            Act::Silu => quote!(#rt::activation::Silu),
            Act::Softmax => quote!(#rt::activation::Softmax),
            Act::LeakyRelu(_) => quote!(#rt::activation::LeakyRelu<#t>),
            Act::Elu(_) => quote!(#rt::activation::Elu<#t>),
            Act::Softplus(..) => quote!(#rt::activation::Softplus<#t>),
        }
    }

    /// An activation's value, with the DSL's arguments.
    fn act_value(&self, act: Act) -> TokenStream {
        let (rt, t) = (self.rt, self.t);
        match act {
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
            unit => self.act_ty(unit),
        }
    }

    /// The activation a layer applies last, if any.
    fn layer_act(l: &Layer) -> Option<Act> {
        match l.kind {
            LayerKind::Dense { activation, .. } => Some(activation),
            LayerKind::Activation(a) => Some(a),
            _ => None,
        }
    }

    fn init(&self, init: InitChoice) -> TokenStream {
        let (rt, t) = (self.rt, self.t);
        match init {
            InitChoice::Given(Init::He) => quote!(#rt::init::Init::He),
            InitChoice::Given(Init::Xavier) => quote!(#rt::init::Init::Xavier),
            InitChoice::Given(Init::Lecun) => quote!(#rt::init::Init::Lecun),
            InitChoice::Given(Init::Zeros) => quote!(#rt::init::Init::Zeros),
            InitChoice::Given(Init::Normal(s)) => {
                let s = proc_macro2::Literal::f64_unsuffixed(s);
                quote!(#rt::init::Init::Normal(#s))
            }
            InitChoice::Of(act) => {
                let a = self.act_ty(act);
                quote!(<#a as #rt::activation::Activation<#t>>::INIT)
            }
        }
    }

    /// The table: what each kind of layer is in the generated code.
    fn parts(&self, l: &Layer) -> Parts {
        let (rt, t, i, o) = (self.rt, self.t, &l.input, &l.output);
        match l.kind {
            LayerKind::Dense {
                activation,
                init,
                bias,
                ..
            } => {
                let a = self.act_ty(activation);
                let ty = quote!(#rt::layer::Dense<#t, #i, #o, #a>);
                let (av, init) = (self.act_value(activation), self.init(init));
                let grads = quote!(#rt::layer::DenseGradients<#t, #i, #o>);
                Parts {
                    value: quote!(<#ty>::new(#av, #init, #bias, rng)),
                    tape: Some(quote!(#rt::layer::DenseTape<#t>)),
                    grads: Some((grads.clone(), quote!(<#grads>::zeros(#bias)))),
                    in_place: false,
                    ty,
                }
            }
            LayerKind::Activation(act) => {
                let (a, av) = (self.act_ty(act), self.act_value(act));
                Parts {
                    ty: quote!(#rt::layer::Activate<#a, #o>),
                    value: quote!(#rt::layer::Activate::new(#av)),
                    tape: None,
                    grads: None,
                    in_place: true,
                }
            }
            LayerKind::Dropout { p } => {
                let p = proc_macro2::Literal::f64_unsuffixed(p);
                Parts {
                    ty: quote!(#rt::layer::Dropout<#o>),
                    value: quote!(#rt::layer::Dropout { p: #p }),
                    tape: Some(quote!(#rt::layer::DropoutTape<#t>)),
                    grads: None,
                    in_place: true,
                }
            }
            LayerKind::BatchNorm {
                momentum,
                eps,
                affine,
            } => {
                let (m, e) = (
                    proc_macro2::Literal::f64_unsuffixed(momentum),
                    proc_macro2::Literal::f64_unsuffixed(eps),
                );
                let grads = quote!(#rt::layer::NormGradients<#t, #o>);
                Parts {
                    ty: quote!(#rt::layer::BatchNorm<#t, #o>),
                    value: quote!(#rt::layer::BatchNorm::<#t, #o> { momentum: #m, eps: #e, affine: #affine, ..::core::default::Default::default() }),
                    tape: Some(quote!(#rt::layer::BatchNormTape<#t>)),
                    grads: affine.then(|| (grads.clone(), quote!(<#grads>::zeros(true)))),
                    in_place: false,
                }
            }
            LayerKind::LayerNorm { eps, affine } => {
                let e = proc_macro2::Literal::f64_unsuffixed(eps);
                let grads = quote!(#rt::layer::NormGradients<#t, #o>);
                Parts {
                    ty: quote!(#rt::layer::LayerNorm<#t, #o>),
                    value: quote!(#rt::layer::LayerNorm::<#t, #o> { eps: #e, affine: #affine, ..::core::default::Default::default() }),
                    tape: Some(quote!(#rt::layer::LayerNormTape<#t>)),
                    grads: affine.then(|| (grads.clone(), quote!(<#grads>::zeros(true)))),
                    in_place: false,
                }
            }
        }
    }

    /// Whether a layer keeps statistics that a training-mode forward moves
    /// (`Layer::update_statistics`).
    fn keeps_statistics(l: &Layer) -> bool {
        matches!(l.kind, LayerKind::BatchNorm { .. })
    }

    /// `Layer<T, IN, OUT>` of a layer, for fully qualified calls.
    fn layer_trait(&self, l: &Layer) -> TokenStream {
        let (rt, t, i, o) = (self.rt, self.t, &l.input, &l.output);
        quote!(#rt::layer::Layer<#t, #i, #o>)
    }

    fn layers_with_params(&self) -> impl Iterator<Item = &Layer> {
        self.net
            .layers
            .iter()
            .filter(|l| self.parts(l).grads.is_some())
    }

    fn is_last(&self, l: &Layer) -> bool {
        l.position + 1 == self.net.layers.len()
    }

    /// The tape's buffer holding a layer's output.
    fn out_buf(l: &Layer) -> Ident {
        format_ident!("{}_out", l.name)
    }

    /// The tape's buffer holding a layer's input gradient (for a layer that is not in place
    /// and not the first).
    fn dx_buf(l: &Layer) -> Ident {
        format_ident!("{}_dx", l.name)
    }

    /// Whether a layer writes its input gradient into a buffer of its own.
    fn has_dx(&self, l: &Layer) -> bool {
        l.position > 0 && !self.parts(l).in_place
    }

    /// A layer's input in the recording forward and backward: the batch `x` or the previous
    /// layer's output in the tape, `IN x n`.
    fn input_of(&self, l: &Layer) -> TokenStream {
        match l.position {
            0 => quote!(x),
            k => {
                let prev = Self::out_buf(&self.net.layers[k - 1]);
                let w = &l.input;
                quote!(&#prev[..#w * n])
            }
        }
    }

    /// A layer's tape entry as passed to its methods: the tape's field, or `&mut ()`.
    fn tape_of(&self, l: &Layer) -> TokenStream {
        match self.parts(l).tape {
            Some(_) => {
                let f = &l.name;
                quote!(#f)
            }
            None => quote!(&mut ()),
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
    let name = &net.name;
    let types = types::items(&g);
    let counts = counts::items(&g);
    let methods = forward::methods(&g);
    let backward = backward::methods(&g);
    let glue = glue::items(&g);
    let items = quote! {
        #types
        #counts
        #[allow(clippy::identity_op, clippy::erasing_op)]
        impl #name {
            #methods
            #backward
        }
        #glue
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
