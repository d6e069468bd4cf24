//! The forward passes: `predict` (one sample, on the stack), `forward` (a batch, split over
//! threads) and the recording forward behind `forward_train` and `forward_eval`.

use super::types::tape_name;
use super::{marker, Gen};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// `predict`: each layer's `Layer::predict` on the previous one's `SVector`.
fn predict_body(g: &Gen) -> TokenStream {
    let mut body = Vec::new();
    let mut cur = format_ident!("x");
    for l in &g.net.layers {
        let f = &l.name;
        let src = if l.position == 0 {
            quote!(#cur)
        } else {
            quote!(&#cur)
        };
        body.push(marker(l));
        body.push(quote!(let #f = self.#f.predict(#src);));
        cur = f.clone();
    }
    quote!(#(#body)* #cur)
}

/// `forward`'s work on one part of the batch (`x`, `n` columns): a buffer per layer that is
/// not in place, moved on through the layers that are.
fn forward_body(g: &Gen) -> TokenStream {
    let zero = g.t.lit(0.0);
    let mut body = Vec::new();
    let mut cur: Option<syn::Ident> = None;
    for l in &g.net.layers {
        let (f, o) = (&l.name, &l.output);
        body.push(marker(l));
        if g.parts(l).in_place {
            let from = match &cur {
                Some(c) => quote!(#c),
                None => quote!(x.to_vec()),
            };
            body.push(quote! {
                let mut #f = #from;
                self.#f.forward_in_place(&mut #f, n);
            });
        } else {
            let src = match &cur {
                Some(c) => quote!(&#c),
                None => quote!(x),
            };
            body.push(quote! {
                let mut #f = ::std::vec![#zero; #o * n];
                self.#f.forward(#src, &mut #f, n);
            });
        }
        cur = Some(f.clone());
    }
    quote!(#(#body)* #cur)
}

/// The recording forward: each layer's `Layer::record` from the previous one's output in
/// the tape.
fn record_body(g: &Gen) -> TokenStream {
    let rt = g.rt;
    let mut body = Vec::new();
    for l in &g.net.layers {
        let (f, o) = (&l.name, &l.output);
        let (x, out, tape) = (g.input_of(l), Gen::out_buf(l), g.tape_of(l));
        body.push(marker(l));
        if g.is_last(l) {
            body.push(quote!(pass.output_layer = true;));
        }
        body.push(quote!(self.#f.record(#x, &mut #out[..#o * n], #tape, n, &mut pass);));
    }
    quote! {
        let mut pass = #rt::layer::Record { training, output_layer: false, rng };
        #(#body)*
    }
}

/// `new`'s field values, `predict`, `forward`, `forward_train`, `forward_eval` and `record`.
pub(super) fn methods(g: &Gen) -> TokenStream {
    let (net, rt, t) = (g.net, g.rt, g.t);
    let (input, output) = (net.input(), net.output());
    let tape_name = tape_name(g);
    // What the recording forward writes: each layer's output and its own tape.
    let fields = net.layers.iter().flat_map(|l| {
        let tape = g.parts(l).tape.map(|_| l.name.clone());
        tape.into_iter().chain([Gen::out_buf(l)])
    });
    let predict = predict_body(g);
    let forward = forward_body(g);
    let record = record_body(g);
    // The layers whose statistics a training-mode pass moves, each from its own tape.
    let statistics = net
        .layers
        .iter()
        .filter(|l| Gen::keeps_statistics(l))
        .map(|l| {
            let f = &l.name;
            let m = marker(l);
            quote!(#m self.#f.update_statistics(&tape.#f, tape.batch);)
        });
    let statistics: Vec<_> = statistics.collect();
    let forward_train_body = if statistics.is_empty() {
        quote!(self.record(x, tape, rng, true);)
    } else {
        quote! {
            use #rt::layer::Layer as _;
            self.record(x, tape, rng, true);
            #(#statistics)*
        }
    };
    quote! {
        /// Inference on one sample, on the stack: no heap allocation.
        #[must_use]
        pub fn predict(&self, x: &#rt::nalgebra::SVector<#t, #input>) -> #rt::nalgebra::SVector<#t, #output> {
            use #rt::layer::Layer as _;
            #predict
        }

        /// Inference on a batch, one column per sample (dropout is the identity). Large
        /// batches are split into one part of columns per thread (`kernel::split_batch`),
        /// each part running every layer; the result has the same bits either way.
        #[must_use]
        pub fn forward(&self, x: &#rt::Batch<#t, #input>) -> #rt::Batch<#t, #output> {
            use #rt::layer::{InPlace as _, Layer as _};
            let columns = x.ncols();
            let y = #rt::kernel::split_batch(x.as_slice(), #input, #output, Self::FLOPS, &|x: &[#t]| {
                let n = x.len() / #input;
                #forward
            });
            #rt::Batch::<#t, #output>::from_vec_generic(#rt::nalgebra::Const::<#output>, #rt::nalgebra::Dyn(columns), y)
        }

        /// Training-mode forward pass: records every layer's output (and dropout masks,
        /// drawn from `rng`) in `tape`, and moves the statistics layers keep (batch norm's
        /// running mean and variance).
        pub fn forward_train<R: #rt::rand::Rng + ?Sized>(
            &mut self,
            x: #rt::BatchView<'_, #t, #input>,
            tape: &mut #tape_name,
            rng: &mut R,
        ) {
            #forward_train_body
        }

        /// Inference-mode forward pass recorded in `tape` (dropout is the identity), so a
        /// loss can be evaluated from the logits.
        pub fn forward_eval(&self, x: #rt::BatchView<'_, #t, #input>, tape: &mut #tape_name) {
            self.record(x, tape, &mut #rt::__private::NoDraws, false);
        }

        /// Runs every layer on a batch, recording outputs in `tape`; dropout draws masks
        /// from `rng` when `training`, else is the identity, and batch norm uses the
        /// batch's statistics when `training`, else its running ones.
        fn record<R: #rt::rand::Rng + ?Sized>(
            &self,
            x: #rt::BatchView<'_, #t, #input>,
            tape: &mut #tape_name,
            rng: &mut R,
            training: bool,
        ) {
            use #rt::layer::Layer as _;
            let n = x.ncols();
            tape.reserve(n);
            let x = &x.as_slice()[..#input * n];
            let #tape_name { #(#fields,)* .. } = tape;
            #record
        }
    }
}
