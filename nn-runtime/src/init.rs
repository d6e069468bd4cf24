//! Weight initialization schemes.

use crate::scalar::Float;
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// How a dense layer's weights are drawn (biases always start at zero).
///
/// `fan_in` is the layer's input width, `fan_out` its output width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He (Kaiming) normal, for the ReLU family: `W ~ N(0, 2 / fan_in)`.
    He,
    /// Xavier (Glorot) uniform, for sigmoid, tanh, softmax and identity:
    /// `W ~ U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    Xavier,
    /// LeCun normal, for SELU-like units: `W ~ N(0, 1 / fan_in)`.
    Lecun,
    /// All weights zero (useful for tests; a hidden layer will not break symmetry).
    Zeros,
    /// `W ~ N(0, std^2)`.
    Normal(f64),
}

impl Init {
    /// Draws one weight for a layer with the given fans from the variant's distribution
    /// (`N(0, 2 / fan_in)`, `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`, ...).
    pub fn sample<T: Float, R: Rng + ?Sized>(
        self,
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> T {
        let fi = fan_in.max(1) as f64;
        let fo = fan_out.max(1) as f64;
        let normal = |std: f64, rng: &mut R| match Normal::new(0.0, std) {
            Ok(d) => d.sample(rng),
            Err(_) => 0.0,
        };
        let v = match self {
            Init::He => normal((2.0 / fi).sqrt(), rng),
            Init::Lecun => normal((1.0 / fi).sqrt(), rng),
            Init::Normal(std) => normal(std, rng),
            Init::Zeros => 0.0,
            Init::Xavier => {
                let a = (6.0 / (fi + fo)).sqrt();
                match Uniform::new_inclusive(-a, a) {
                    Ok(d) => d.sample(rng),
                    Err(_) => 0.0,
                }
            }
        };
        T::of(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn moments(init: Init, fan_in: usize, fan_out: usize) -> (f64, f64, f64) {
        let mut rng = StdRng::seed_from_u64(1);
        let xs: Vec<f64> = (0..200_000)
            .map(|_| init.sample::<f64, _>(fan_in, fan_out, &mut rng))
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        let max = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (mean, var, max)
    }

    #[test]
    fn variances_match_the_formulas() {
        let (m, v, _) = moments(Init::He, 50, 10);
        assert!(m.abs() < 0.01 && (v - 2.0 / 50.0).abs() < 0.002, "{m} {v}");
        let (m, v, _) = moments(Init::Lecun, 50, 10);
        assert!(m.abs() < 0.01 && (v - 1.0 / 50.0).abs() < 0.001, "{m} {v}");
        let (_, v, max) = moments(Init::Xavier, 30, 30);
        let a = (6.0f64 / 60.0).sqrt();
        assert!((v - a * a / 3.0).abs() < 0.002 && max <= a, "{v} {max}");
        let (_, v, _) = moments(Init::Normal(0.5), 3, 3);
        assert!((v - 0.25).abs() < 0.005);
        assert_eq!(moments(Init::Zeros, 3, 3), (0.0, 0.0, 0.0));
    }
}
