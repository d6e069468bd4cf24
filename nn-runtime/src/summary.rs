//! A Keras-style table of a network's layers.

use crate::network::LayerInfo;
use std::fmt;

/// The table `summary()` prints: layer, output shape and parameters, with totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Network name.
    pub name: &'static str,
    /// Scalar type name.
    pub scalar: &'static str,
    /// Input width.
    pub inputs: usize,
    /// The layers.
    pub layers: &'static [LayerInfo],
    /// Total parameters.
    pub params: usize,
    /// Forward multiply-adds per sample.
    pub flops: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<(String, String, String)> = self
            .layers
            .iter()
            .map(|l| {
                (
                    format!("{} {}", l.name, l.text),
                    format!("({},)", l.outputs),
                    group(l.params),
                )
            })
            .collect();
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(5);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(12);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(7);
        let rule = "─".repeat(w0 + w1 + w2 + 4);
        writeln!(
            f,
            "Model: {} ({}, input ({},))",
            self.name, self.scalar, self.inputs
        )?;
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<w0$}  {:<w1$}  {:>w2$}",
            "Layer", "Output shape", "Params"
        )?;
        writeln!(f, "{rule}")?;
        for (a, b, c) in &rows {
            writeln!(f, "{a:<w0$}  {b:<w1$}  {c:>w2$}")?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Total params: {}", group(self.params))?;
        write!(f, "Forward multiply-adds per sample: {}", group(self.flops))
    }
}

/// `1234567` as `1,234,567`.
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::LayerKind;

    #[test]
    fn prints_a_table_with_totals() {
        static LAYERS: [LayerInfo; 2] = [
            LayerInfo {
                name: "dense0",
                text: "dense(784 -> 128, relu)",
                kind: LayerKind::Dense,
                inputs: 784,
                outputs: 128,
                params: 100_480,
                flops: 100_352,
            },
            LayerInfo {
                name: "dropout0",
                text: "dropout(0.5)",
                kind: LayerKind::Dropout,
                inputs: 128,
                outputs: 128,
                params: 0,
                flops: 0,
            },
        ];
        let s = Summary {
            name: "Mnist",
            scalar: "f32",
            inputs: 784,
            layers: &LAYERS,
            params: 100_480,
            flops: 100_352,
        }
        .to_string();
        assert!(s.contains("dense0 dense(784 -> 128, relu)"), "{s}");
        assert!(s.contains("(128,)") && s.contains("100,480"), "{s}");
        assert!(s.contains("Total params: 100,480"), "{s}");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
    }
}
