//! The glue to the runtime: `new`, `summary`, the tensor list (`Parameters`, for the
//! network and its gradients) and the `Network` trait.

use super::types::{grads_name, tape_name};
use super::Gen;
use crate::ir::{Layer, LayerKind, Scalar};
use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

/// One tensor a layer persists: its name in the layer, shape, whether it is a bias, and
/// whether it is trained (else a statistic).
struct TensorSpec {
    name: &'static str,
    rows: TokenStream,
    cols: TokenStream,
    is_bias: bool,
    trainable: bool,
}

fn spec(
    name: &'static str,
    rows: TokenStream,
    cols: TokenStream,
    is_bias: bool,
    trainable: bool,
) -> TensorSpec {
    TensorSpec {
        name,
        rows,
        cols,
        is_bias,
        trainable,
    }
}

/// The tensors a layer persists, in its `Tensors::visit` order (trainable ones first), named
/// as in PyTorch's `state_dict`.
fn tensors_of(l: &Layer) -> Vec<TensorSpec> {
    let (i, o) = (&l.input, &l.output);
    let affine = |affine: bool| match affine {
        true => vec![
            spec("weight", quote!(#o), quote!(1), false, true),
            spec("bias", quote!(#o), quote!(1), true, true),
        ],
        false => Vec::new(),
    };
    match l.kind {
        LayerKind::Dense { bias, .. } => {
            let mut out = vec![spec("weight", quote!(#o), quote!(#i), false, true)];
            if bias {
                out.push(spec("bias", quote!(#o), quote!(1), true, true));
            }
            out
        }
        LayerKind::BatchNorm { affine: a, .. } => {
            let mut out = affine(a);
            out.push(spec("running_mean", quote!(#o), quote!(1), false, false));
            out.push(spec("running_var", quote!(#o), quote!(1), false, false));
            out.push(spec(
                "num_batches_tracked",
                quote!(1),
                quote!(1),
                false,
                false,
            ));
            out
        }
        LayerKind::LayerNorm { affine: a, .. } => affine(a),
        LayerKind::Dropout { .. } | LayerKind::Activation(_) => Vec::new(),
    }
}

/// The layer's regularization coefficients from the DSL.
fn penalties(l: &Layer) -> (f64, f64) {
    match l.kind {
        LayerKind::Dense { l1, l2, .. } => (l1, l2),
        _ => (0.0, 0.0),
    }
}

/// The `TensorInfo` literals, and each layer's first index among them.
fn tensor_table<'a>(g: &Gen<'a>) -> (Vec<TokenStream>, Vec<(&'a Layer, usize)>) {
    let rt = g.rt;
    let (mut infos, mut firsts) = (Vec::new(), Vec::new());
    for l in &g.net.layers {
        let tensors = tensors_of(l);
        if tensors.is_empty() {
            continue;
        }
        firsts.push((l, infos.len()));
        let (l1, l2) = penalties(l);
        let (l1, l2) = (
            proc_macro2::Literal::f64_unsuffixed(l1),
            proc_macro2::Literal::f64_unsuffixed(l2),
        );
        for TensorSpec {
            name,
            rows,
            cols,
            is_bias,
            trainable,
        } in tensors
        {
            let index = proc_macro2::Literal::usize_unsuffixed(infos.len());
            let name = format!("{}.{name}", l.name);
            infos.push(quote!(#rt::TensorInfo { index: #index, name: #name, rows: #rows, cols: #cols, is_bias: #is_bias, trainable: #trainable, l1: #l1, l2: #l2 }));
        }
    }
    (infos, firsts)
}

/// `first + k`, or `k` for the first layer.
fn index(first: usize) -> TokenStream {
    match first {
        0 => quote!(k),
        f => {
            let f = proc_macro2::Literal::usize_unsuffixed(f);
            quote!(#f + k)
        }
    }
}

/// `Parameters` for the network or (`grads`) its gradients: both visit each layer's tensors
/// in the same order, through `Tensors`, the gradients only the trainable ones (the first of
/// each layer, with the same `k`).
fn parameters_impl(g: &Gen, ty: &Ident, grads: bool) -> TokenStream {
    let (rt, t) = (g.rt, g.t);
    let (infos, mut firsts) = tensor_table(g);
    if grads {
        firsts.retain(|(l, _)| g.parts(l).grads.is_some());
    }
    let visits = firsts.iter().map(|(l, first)| {
        let (f, k) = (&l.name, index(*first));
        quote!(self.#f.visit(&mut |k, v| f(&Self::TENSORS[#k], v));)
    });
    let visits_mut = firsts.iter().map(|(l, first)| {
        let (f, k) = (&l.name, index(*first));
        quote!(self.#f.visit_mut(&mut |k, v| f(&Self::TENSORS[#k], v));)
    });
    quote! {
        impl #rt::Parameters<#t> for #ty {
            const TENSORS: &'static [#rt::TensorInfo] = &[#(#infos),*];

            fn for_each_tensor(&self, f: &mut dyn FnMut(&'static #rt::TensorInfo, &[#t])) {
                use #rt::layer::Tensors as _;
                #(#visits)*
            }

            fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static #rt::TensorInfo, &mut [#t])) {
                use #rt::layer::Tensors as _;
                #(#visits_mut)*
            }
        }
    }
}

/// `new`, `summary`, `Parameters` and `Network`.
pub(super) fn items(g: &Gen) -> TokenStream {
    let (net, rt, t) = (g.net, g.rt, g.t);
    let name = &net.name;
    let (input, output) = (net.input(), net.output());
    let (tape_name, grads_name) = (tape_name(g), grads_name(g));
    let name_str = name.to_string();
    let scalar_str = match t {
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
    };
    let dsl = net.dsl();
    let inits = net.layers.iter().map(|l| {
        let (f, value) = (&l.name, g.parts(l).value);
        quote!(#f: #value,)
    });
    let last = &net.layers[net.layers.len() - 1];
    let out_act = g.act_ty(Gen::layer_act(last).unwrap_or(crate::ir::Act::Identity));
    let (_, mut firsts) = tensor_table(g);
    firsts.retain(|(l, _)| g.parts(l).grads.is_some());
    let pairs = firsts.iter().map(|(l, first)| {
        let (f, k) = (&l.name, index(*first));
        quote!(self.#f.visit_with_gradients(&grads.#f, &mut |k, p, g| f(&<Self as #rt::Parameters<#t>>::TENSORS[#k], p, g));)
    });
    let params_self = parameters_impl(g, name, false);
    let params_grads = parameters_impl(g, &grads_name, true);
    quote! {
        impl #name {
            /// A freshly initialized network: weights by each layer's scheme (the
            /// activation's `Activation::INIT`, He for the ReLU family and Xavier for the
            /// rest, unless `init` says otherwise), biases zero.
            pub fn new<R: #rt::rand::Rng + ?Sized>(rng: &mut R) -> Self {
                Self { #(#inits)* }
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
            const OUTPUT_ACTIVATION: #rt::OutputActivation = <#out_act as #rt::activation::Activation<#t>>::OUTPUT;

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

            fn forward_train<R: #rt::rand::Rng + ?Sized>(&mut self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name, rng: &mut R) {
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
                use #rt::layer::Layer as _;
                #(#pairs)*
            }
        }
    }
}
