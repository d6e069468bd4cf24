//! The backward passes: `backward` (every parameter gradient) and `backward_sgd` (the same
//! chain fused with a plain SGD step).
//!
//! Going down the layers, each turns the gradient of its output into that of its input
//! (`Layer::input_gradient`), given the derivative of the layer below to fuse into the
//! product when that layer offers one (`Layer::output_derivative`); it returns whether it
//! did, and the layer below then skips that step (`ready`).

use super::types::{grads_name, tape_fields, tape_name};
use super::{marker, Gen};
use crate::ir::Layer;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

/// A layer with parameters as the chain left it: its input, its tape and the buffer holding
/// what its parameter gradients are computed from.
struct Step<'a> {
    layer: &'a Layer,
    x: TokenStream,
    tape: TokenStream,
    dy: TokenStream,
}

/// The chain of input gradients from the output layer down; with `grads`, each layer's
/// parameter gradients right after its input gradient.
fn chain<'a>(g: &'a Gen, grads: bool) -> (Vec<TokenStream>, Vec<Step<'a>>) {
    let rt = g.rt;
    let layers = &g.net.layers;
    let mut body = vec![quote!(let ready = wrt == #rt::GradientOf::Logits;)];
    let mut steps = Vec::new();
    let mut grad: Ident = format_ident!("grad_out");
    for l in layers.iter().rev() {
        let (f, i, o) = (&l.name, &l.input, &l.output);
        let (x, out, tape) = (g.input_of(l), Gen::out_buf(l), g.tape_of(l));
        let dy = quote!(#grad[..#o * n]);
        body.push(marker(l));
        let dx = if g.has_dx(l) {
            let below = &layers[l.position - 1];
            let (b, bx, bout, bw) = (
                &below.name,
                g.input_of(below),
                Gen::out_buf(below),
                &below.output,
            );
            let btape = match g.parts(below).tape {
                Some(_) => quote!(#b),
                None => quote!(&()),
            };
            let dx = Gen::dx_buf(l);
            body.push(
                quote!(let below = self.#b.output_derivative(#btape, #bx, &#bout[..#bw * n]);),
            );
            quote!(#rt::layer::InputGradient::new(&mut #dx[..#i * n], below))
        } else {
            quote!(#rt::layer::InputGradient::none())
        };
        let call =
            quote!(self.#f.input_gradient(#x, &#out[..#o * n], #tape, &mut #dy, ready, #dx, n));
        body.push(if l.position == 0 {
            quote!(#call;)
        } else {
            quote!(let ready = #call;)
        });
        if g.parts(l).grads.is_some() {
            if grads {
                body.push(quote!(self.#f.parameter_gradients(#x, #tape, &#dy, &mut grads.#f, n);));
            }
            steps.push(Step {
                layer: l,
                x: x.clone(),
                tape: tape.clone(),
                dy: dy.clone(),
            });
        }
        if g.has_dx(l) {
            grad = Gen::dx_buf(l);
        }
    }
    (body, steps)
}

/// `backward` and `backward_sgd`.
pub(super) fn methods(g: &Gen) -> TokenStream {
    let (net, rt, t) = (g.net, g.rt, g.t);
    let input = net.input();
    let (tape_name, grads_name) = (tape_name(g), grads_name(g));
    let fields = tape_fields(g);
    let (back, _) = chain(g, true);
    let (back_sgd, steps) = chain(g, false);
    let checks = steps.iter().map(|s| {
        let (f, x, tape, dy) = (&s.layer.name, &s.x, &s.tape, &s.dy);
        quote!(self.#f.gradient_finite(#x, #tape, &#dy, n))
    });
    let fallback = steps.iter().map(|s| {
        let (f, x, tape, dy) = (&s.layer.name, &s.x, &s.tape, &s.dy);
        quote!(self.#f.parameter_gradients(#x, #tape, &#dy, &mut grads.#f, n);)
    });
    let updates = steps.iter().map(|s| {
        let (f, x, tape, dy) = (&s.layer.name, &s.x, &s.tape, &s.dy);
        quote!(self.#f.sgd_step(#x, #tape, &#dy, n, scale);)
    });
    quote! {
        /// Backward pass: from the loss gradient in `tape` (with respect to `wrt`), the
        /// gradient of every parameter into `grads`. `x` is the batch of `forward_train`.
        pub fn backward(
            &self,
            x: #rt::BatchView<'_, #t, #input>,
            tape: &mut #tape_name,
            wrt: #rt::GradientOf,
            grads: &mut #grads_name,
        ) {
            use #rt::layer::Layer as _;
            let n = tape.batch;
            let x = &x.as_slice()[..#input * n];
            let #tape_name { #(#fields,)* .. } = tape;
            #(#back)*
        }

        /// Backward pass fused with a plain SGD step (`scale = −lr`): every input gradient
        /// from the weights before the step, then each layer's parameters updated by its
        /// gradient product (`Layer::sgd_step`; for a dense layer `W ← scale·dZ Xᵀ + W`,
        /// `b ← b + scale·dZ 1`). Unless every gradient is sure to be finite, writes the
        /// gradients into `grads` instead (as `backward` does), changes no parameter and
        /// says so.
        pub fn backward_sgd(
            &mut self,
            x: #rt::BatchView<'_, #t, #input>,
            tape: &mut #tape_name,
            wrt: #rt::GradientOf,
            scale: #t,
            grads: &mut #grads_name,
        ) -> #rt::FusedStep {
            use #rt::layer::Layer as _;
            let n = tape.batch;
            let x = &x.as_slice()[..#input * n];
            let #tape_name { #(#fields,)* .. } = tape;
            #(#back_sgd)*
            if !(#(#checks)&&*) {
                #(#fallback)*
                return #rt::FusedStep::GradientsWritten;
            }
            #(#updates)*
            #rt::FusedStep::Stepped
        }
    }
}
