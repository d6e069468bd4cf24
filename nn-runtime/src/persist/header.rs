//! Reading a safetensors file header first: the 8-byte header length against the file's
//! size, then the header alone (streamed, so a false length costs nothing), every tensor's
//! extent checked against the data section; tensor bytes are read only when asked for.

use super::error::{Name, Shape};
use super::{Mismatch, PersistError};
use safetensors::tensor::Dtype;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The largest header read, in bytes: the `safetensors` crate's own limit.
pub(super) const MAX_HEADER: u64 = 100_000_000;

/// Where one tensor's bytes are, checked against the file.
#[derive(Debug)]
pub(super) struct Entry {
    /// Element type.
    pub(super) dtype: Dtype,
    /// Shape, row-major.
    pub(super) shape: Vec<usize>,
    /// Position of the first byte in the file.
    offset: u64,
    /// Length in bytes: the shape's elements times the dtype's size.
    len: u64,
}

/// An open safetensors file whose header has been read and checked; no tensor data is read
/// until [`SafetensorsFile::read`].
pub(super) struct SafetensorsFile {
    path: PathBuf,
    file: File,
    /// The header's `__metadata__` (empty if it has none).
    pub(super) metadata: HashMap<String, String>,
    /// Every tensor, by name.
    pub(super) tensors: HashMap<String, Entry>,
}

impl SafetensorsFile {
    /// Opens `path` and reads its header: the header length must fit in the file and under
    /// [`MAX_HEADER`], and the tensors' data offsets must tile the rest of the file exactly,
    /// each as long as its shape and dtype say.
    pub(super) fn open(path: &Path) -> Result<Self, PersistError> {
        let io = |source| PersistError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |message: String| PersistError::Format {
            path: path.to_path_buf(),
            message,
        };
        let mut file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size < 8 {
            return Err(bad(format!(
                "{size} bytes, too short for the 8-byte header length"
            )));
        }
        let mut word = [0; 8];
        file.read_exact(&mut word).map_err(io)?;
        let n = u64::from_le_bytes(word);
        if n > size - 8 {
            return Err(bad(format!(
                "the header length is {n} bytes, but only {} bytes follow it",
                size - 8
            )));
        }
        if n > MAX_HEADER {
            return Err(bad(format!(
                "the header length is {n} bytes, more than the limit of {MAX_HEADER}"
            )));
        }
        let mut json = serde_json::Deserializer::from_reader(BufReader::new((&file).take(n)));
        let raw = RawHeader::deserialize(&mut json)
            .and_then(|h| json.end().map(|()| h))
            .map_err(|e| match e.io_error_kind() {
                Some(kind) => io(io::Error::new(kind, e)),
                None => bad(format!("header: {e}")),
            })?;
        let tensors = locate(raw.tensors, 8 + n, size - 8 - n).map_err(bad)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            metadata: raw.metadata.unwrap_or_default(),
            tensors,
        })
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// A [`PersistError::Format`] about this file.
    pub(super) fn format(&self, message: String) -> PersistError {
        PersistError::Format {
            path: self.path.clone(),
            message,
        }
    }

    /// A [`PersistError::NonFinite`] about tensor `tensor` of this file.
    pub(super) fn non_finite(&self, tensor: &str, index: usize, value: f64) -> PersistError {
        PersistError::NonFinite {
            path: self.path.clone(),
            tensor: tensor.to_owned(),
            index,
            value,
        }
    }

    /// A [`PersistError::Mismatch`] about this file if there are `problems`.
    pub(super) fn refuse(&self, problems: Vec<Mismatch>) -> Result<(), PersistError> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(PersistError::Mismatch {
            path: self.path.clone(),
            problems,
        })
    }

    /// The bytes of one tensor of this file.
    pub(super) fn read(&self, entry: &Entry) -> Result<Vec<u8>, PersistError> {
        let io = |source| PersistError::Io {
            path: self.path.clone(),
            source,
        };
        let len = usize::try_from(entry.len).map_err(|_| {
            io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "tensor too large",
            ))
        })?;
        let mut bytes = vec![0; len];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(entry.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(io)?;
        Ok(bytes)
    }
}

/// Checks that the tensors' data offsets tile the `available` bytes of data starting at
/// file position `start`, each tensor as long as its shape and dtype say (the `safetensors`
/// crate's rules), and that no name appears twice.
fn locate(
    mut raw: Vec<(String, RawEntry)>,
    start: u64,
    available: u64,
) -> Result<HashMap<String, Entry>, String> {
    raw.sort_by_key(|(_, e)| e.data_offsets);
    let mut tensors = HashMap::with_capacity(raw.len());
    let mut end = 0;
    for (name, e) in raw {
        let (from, to) = e.data_offsets;
        let tensor = Name(&name);
        if to > available {
            return Err(format!(
                "tensor `{tensor}`: data_offsets [{from}, {to}] end beyond the file's {available} bytes of tensor data"
            ));
        }
        if from != end {
            return Err(format!(
                "tensor `{tensor}`: data_offsets [{from}, {to}] should start at {end}"
            ));
        }
        if to < from {
            return Err(format!(
                "tensor `{tensor}`: data_offsets [{from}, {to}] end before they start"
            ));
        }
        let len = e.shape.iter().try_fold(e.dtype.size() as u64, |n, &d| {
            u64::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        match len {
            Some(len) if len == to - from => {}
            Some(len) => {
                return Err(format!(
                    "tensor `{tensor}`: shape {} of {:?} needs {len} bytes, data_offsets [{from}, {to}] hold {}",
                    Shape(&e.shape),
                    e.dtype,
                    to - from
                ))
            }
            None => {
                return Err(format!(
                    "tensor `{tensor}`: shape {} overflows",
                    Shape(&e.shape)
                ))
            }
        }
        end = to;
        if tensors.contains_key(&name) {
            return Err(format!("tensor `{tensor}` appears twice in the header"));
        }
        let entry = Entry {
            dtype: e.dtype,
            shape: e.shape,
            offset: start + from,
            len: to - from,
        };
        tensors.insert(name, entry);
    }
    if end != available {
        return Err(format!(
            "{} bytes follow the last tensor's data",
            available - end
        ));
    }
    Ok(tensors)
}

/// A header as written: `__metadata__` and the tensors in file order.
struct RawHeader {
    metadata: Option<HashMap<String, String>>,
    tensors: Vec<(String, RawEntry)>,
}

/// One tensor as the header describes it.
#[derive(Deserialize)]
struct RawEntry {
    dtype: Dtype,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut metadata = None;
        let mut seen_metadata = false;
        let mut tensors = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                if seen_metadata {
                    return Err(de::Error::custom("`__metadata__` appears twice"));
                }
                seen_metadata = true;
                metadata = map.next_value()?;
            } else {
                let entry = map
                    .next_value()
                    .map_err(|e| de::Error::custom(format!("tensor `{}`: {e}", Name(&key))))?;
                tensors.push((key, entry));
            }
        }
        Ok(RawHeader { metadata, tensors })
    }
}
