//! MNIST in its IDX format, raw or gzip-compressed.
//!
//! An image file is the magic number 2051, then the image count, rows and columns (each a
//! big-endian `u32`), then `count * rows * cols` pixels, one byte each, row by row. A label
//! file is the magic number 2049, the count, then one byte per label. Compression is detected
//! by the gzip magic bytes `1f 8b`, not by the file name.

use super::{DataError, Dataset, Labels};
use crate::network::Batch;
use crate::scalar::Float;
use flate2::read::GzDecoder;
use nalgebra::{Const, Dyn};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The magic number of an IDX file of `u8` images (three dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// The magic number of an IDX file of `u8` labels (one dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// Images read from an IDX file: `count` images of `rows x cols` pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// The pixels, image after image, each image row-major.
    pub pixels: Vec<u8>,
}

/// The largest expansion of deflate: a byte of compressed stream decodes to at most 1032
/// bytes (RFC 1951 limits a match to 258 bytes; a run of them packs four matches per byte).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// What the file itself says about the length of the data it holds.
enum Size {
    /// An uncompressed file of this many bytes.
    Raw(u64),
    /// A gzip file of `compressed` bytes whose trailer (ISIZE) gives the uncompressed length
    /// modulo 2³².
    Gzip { compressed: u64, isize: u32 },
}

/// An open IDX file: its reader and what the file says about its length.
struct Idx {
    path: PathBuf,
    reader: Box<dyn Read>,
    size: Size,
}

impl Idx {
    fn open(path: &Path) -> Result<Self, DataError> {
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; 2];
        let gz = len >= 2 && {
            file.read_exact(&mut magic).map_err(io)?;
            magic == [0x1f, 0x8b]
        };
        let size = if gz {
            // A gzip member ends with CRC32 and ISIZE, 4 bytes each, little-endian.
            let mut trailer = [0u8; 4];
            if len >= 20 {
                file.seek(SeekFrom::End(-4)).map_err(io)?;
                file.read_exact(&mut trailer).map_err(io)?;
            }
            Size::Gzip {
                compressed: len,
                isize: u32::from_le_bytes(trailer),
            }
        } else {
            Size::Raw(len)
        };
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let buf = BufReader::new(file);
        let reader: Box<dyn Read> = if gz {
            Box::new(GzDecoder::new(buf))
        } else {
            Box::new(buf)
        };
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            size,
        })
    }

    fn err(&self, message: impl Into<String>) -> DataError {
        DataError::Format {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Reads the magic number and `dims` dimensions.
    fn header(&mut self, magic: u32, dims: usize) -> Result<Vec<usize>, DataError> {
        let mut words = Vec::with_capacity(dims + 1);
        for _ in 0..=dims {
            let mut b = [0u8; 4];
            self.reader
                .read_exact(&mut b)
                .map_err(|e| self.err(format!("cannot read the header: {e}")))?;
            words.push(u32::from_be_bytes(b));
        }
        if words[0] != magic {
            return Err(self.err(format!("bad magic number {} (expected {magic})", words[0])));
        }
        Ok(words[1..].iter().map(|&w| w as usize).collect())
    }

    /// Reads exactly `n` bytes of body after a header of `header` bytes, then the stream to
    /// its end (which makes the gzip decoder verify the CRC and length).
    ///
    /// A count the file cannot hold is refused before any allocation: for a raw file, the
    /// body must be exactly the file's length minus the header; for a gzip file, the total
    /// must fit the compressed length (at most [`MAX_DEFLATE_RATIO`] times it) and agree with
    /// the gzip trailer's length (modulo 2³²). The buffer then grows only as data arrives.
    fn body(&mut self, header: u64, n: usize, what: &str) -> Result<Vec<u8>, DataError> {
        let total = header.saturating_add(n as u64);
        let capacity = match self.size {
            Size::Raw(len) => {
                let have = len.saturating_sub(header);
                if have != n as u64 {
                    return Err(self.err(format!(
                        "the header claims {what} of {n} bytes, but the file holds {have} bytes of data"
                    )));
                }
                n
            }
            Size::Gzip { compressed, isize } => {
                let most = compressed.saturating_mul(MAX_DEFLATE_RATIO);
                if total > most {
                    return Err(self.err(format!(
                        "the header claims {what} of {n} bytes, more than a gzip stream of {compressed} bytes can hold"
                    )));
                }
                if total as u32 != isize {
                    return Err(self.err(format!(
                        "the header claims {what} ({total} bytes with the header), but the gzip trailer records {isize} bytes (mod 2^32): truncated or corrupt"
                    )));
                }
                n.min(usize::try_from(compressed.saturating_mul(8)).unwrap_or(usize::MAX))
            }
        };
        let mut data = Vec::with_capacity(capacity);
        let got = (&mut self.reader)
            .take(n as u64)
            .read_to_end(&mut data)
            .map_err(|e| self.err(format!("cannot read {what}: {e}")))?;
        if got != n {
            return Err(self.err(format!(
                "truncated: the header claims {what} of {n} bytes, only {got} follow"
            )));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.reader.read(&mut extra) {
                Ok(0) => return Ok(data),
                Ok(_) => return Err(self.err(format!("trailing data after {what}"))),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(format!("at the end of the data: {e}"))),
            }
        }
    }
}

/// Reads an IDX image file (raw or gzip).
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    read_images_of(path.as_ref(), None)
}

/// Reads an IDX image file whose images must have `pixels` pixels, if given (checked before
/// reading the body).
fn read_images_of(path: &Path, pixels: Option<usize>) -> Result<IdxImages, DataError> {
    let mut idx = Idx::open(path)?;
    let dims = idx.header(IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(idx.err(format!("images of {rows} x {cols} pixels")));
    }
    let overflow = || idx.err(format!("{count} images of {rows} x {cols} pixels overflow"));
    let per_image = rows.checked_mul(cols).ok_or_else(overflow)?;
    if let Some(p) = pixels.filter(|&p| p != per_image) {
        return Err(idx.err(format!(
            "images of {rows} x {cols} pixels, expected {p} pixels"
        )));
    }
    let n = count.checked_mul(per_image).ok_or_else(overflow)?;
    let pixels = idx.body(16, n, &format!("{count} images of {rows} x {cols}"))?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Reads an IDX label file (raw or gzip).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let mut idx = Idx::open(path.as_ref())?;
    let count = idx.header(LABELS_MAGIC, 1)?[0];
    idx.body(8, count, &format!("{count} labels"))
}

/// A data set from an IDX image file and its label file: pixels scaled to `[0, 1]`
/// (`p / 255`), labels checked to be below 10, counts checked to match, and images checked
/// to have `IN = rows * cols` pixels.
pub fn load_pair<T: Float, const IN: usize>(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<Dataset<T, IN>, DataError> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    let img = read_images_of(images, Some(IN))?;
    let format = |path: &Path, message: String| DataError::Format {
        path: path.to_path_buf(),
        message,
    };
    let lab = read_labels(labels)?;
    if lab.len() != img.count {
        let m = format!(
            "{} labels for {} images in {}",
            lab.len(),
            img.count,
            images.display()
        );
        return Err(format(labels, m));
    }
    if let Some((i, &l)) = lab.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(format(
            labels,
            format!("label {i} is {l}, not a digit 0..=9"),
        ));
    }
    let scale: Vec<T> = (0..=255u8).map(|p| T::of(f64::from(p) / 255.0)).collect();
    let pixels: Vec<T> = img.pixels.iter().map(|&p| scale[usize::from(p)]).collect();
    let inputs = Batch::<T, IN>::from_vec_generic(Const::<IN>, Dyn(img.count), pixels);
    let labels = lab.into_iter().map(usize::from).collect();
    Dataset::new(
        inputs,
        Labels::Classes {
            labels,
            classes: 10,
        },
    )
}

/// The path of an MNIST file in `dir`: `name`, else `name.gz`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if raw.is_file() {
        return Ok(raw);
    }
    if gz.is_file() {
        return Ok(gz);
    }
    let message = format!("neither this file nor {} exists", gz.display());
    Err(DataError::Io {
        path: raw,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, message),
    })
}

/// Loads MNIST's training (60 000) and test (10 000) sets from `dir`, which holds the
/// standard files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each raw or with `.gz`.
pub fn load<T: Float>(
    dir: impl AsRef<Path>,
) -> Result<(Dataset<T, 784>, Dataset<T, 784>), DataError> {
    let dir = dir.as_ref();
    let set = |prefix: &str| -> Result<Dataset<T, 784>, DataError> {
        let images = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        load_pair(images, labels)
    };
    Ok((set("train")?, set("t10k")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mnist_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn header(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn data_mnist_real_files() {
        let (train, test) = load::<f32>(mnist_dir()).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        let Labels::Classes { labels, classes } = train.labels() else {
            panic!("classes")
        };
        assert_eq!((labels[0], *classes), (5, 10));
        assert!(labels.iter().all(|&l| l < 10));
        let x = train.inputs().as_slice();
        assert!(x.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(x.contains(&1.0) && x.contains(&0.0));
    }

    #[test]
    fn data_mnist_raw_and_gzip_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = header(&[2051, 3, 2, 2]);
        img.extend([0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8]);
        let lab = [header(&[2049, 3]), vec![7, 0, 9]].concat();
        let raw = load_pair::<f64, 4>(write(dir.path(), "i", &img), write(dir.path(), "l", &lab))
            .unwrap();
        // The names say nothing: `.gz` holds raw bytes, the extensionless file is gzip.
        let gz = load_pair::<f64, 4>(
            write(dir.path(), "i.gz", &img),
            write(dir.path(), "l2", &gzip(&lab)),
        )
        .unwrap();
        assert_eq!(raw, gz);
        assert_eq!(&raw.inputs().as_slice()[..4], &[0.0, 1.0, 0.2, 0.4]);
        let zipped = load_pair::<f64, 4>(
            write(dir.path(), "iz", &gzip(&img)),
            write(dir.path(), "l3", &lab),
        )
        .unwrap();
        assert_eq!(raw, zipped);
    }

    #[test]
    fn data_mnist_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let lab = write(d, "lab", &[header(&[2049, 2]), vec![1, 2]].concat());
        let msg = |img: &[u8], name: &str| {
            let p = write(d, name, img);
            let e = load_pair::<f32, 4>(&p, &lab).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
            e
        };
        let good = [header(&[2051, 2, 2, 2]), vec![0; 8]].concat();
        assert!(
            msg(&[header(&[2051, 2, 2, 2]), vec![0; 7]].concat(), "trunc")
                .contains("holds 7 bytes")
        );
        assert!(msg(&gzip(&good[..20]), "trunc_gz").contains("truncated"));
        assert!(
            msg(&[header(&[2049, 2, 2, 2]), vec![0; 8]].concat(), "magic").contains("bad magic")
        );
        assert!(msg(
            &[header(&[2051, u32::MAX, 2, 2]), vec![0; 8]].concat(),
            "huge"
        )
        .contains("the header claims"));
        assert!(msg(
            &gzip(&[header(&[2051, u32::MAX, 2, 2]), vec![0; 8]].concat()),
            "huge_gz"
        )
        .contains("more than a gzip stream of"));
        // The gzip CRC and length are verified: the stream is read to its end.
        let mut bad_crc = gzip(&good);
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        let e = msg(&bad_crc, "crc_gz");
        assert!(
            e.ends_with(
                "at the end of the data: corrupt gzip stream does not have a matching checksum"
            ),
            "{e}"
        );
        let mut bad_len = gzip(&good);
        let at = bad_len.len() - 4;
        bad_len[at] ^= 1;
        assert!(msg(&bad_len, "isize_gz").contains("trailer records 25 bytes"));
        let mut tail = gzip(&good);
        tail.extend([0u8; 4]);
        assert!(msg(&tail, "tail_gz").contains("truncated or corrupt"));
        assert!(msg(&[0x1f, 0x8b, 0, 1, 2], "garbage_gz").contains("header"));
        assert!(msg(&[1, 2], "short").contains("cannot read the header"));
        assert!(
            msg(&[header(&[2051, 2, 3, 3]), vec![0; 18]].concat(), "dims")
                .contains("expected 4 pixels")
        );
        assert!(msg(&header(&[2051, u32::MAX, 60000, 60000]), "dims_huge")
            .contains("expected 4 pixels"));
        let three = write(d, "three", &[header(&[2049, 3]), vec![1, 2, 3]].concat());
        let e = load_pair::<f32, 4>(write(d, "ok", &good), &three)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("three") && e.contains("3 labels for 2 images"),
            "{e}"
        );
        let bad = write(d, "bad_label", &[header(&[2049, 2]), vec![1, 10]].concat());
        let e = load_pair::<f32, 4>(d.join("ok"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 1 is 10"), "{e}");
        let e = load::<f32>(d.join("missing")).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    }
}
