//! Checkpoint files: safetensors (single or sharded) and PyTorch `.bin`, read into `f32`.
//!
//! A [`Checkpoint`] knows every tensor name of the files and reads tensors on request,
//! converting f16, bf16 and f64 to f32 and checking shapes. A [`WeightLoader`] sits on top and
//! speaks the model's names: it resolves a base-model prefix present or absent (`bert.` …), the
//! legacy LayerNorm names `gamma` / `beta`, collects every missing tensor instead of stopping at
//! the first, and reports the names the model never asked for.
//!
//! Invariants: a malformed file (truncated, bad header, offsets outside the data, unknown dtype)
//! is a [`ModelError::WeightFile`], never a panic; safetensors headers are validated by the
//! `safetensors` crate before any data is read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

/// Where a tensor's bytes are.
enum Storage {
    /// Whole safetensors files read into memory (index into `Checkpoint::files`).
    Safetensors(Vec<Vec<u8>>),
    /// PyTorch zip checkpoints, read lazily by candle's pickle reader.
    Pickle(Vec<candle_core::pickle::PthTensors>),
}

/// A tensor's place and description.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    shape: Vec<usize>,
    /// The name inside the file, when the checkpoint exposes it under another one (a head
    /// tensor renamed to its base model's convention).
    stored: Option<String>,
}

/// The tensors of one checkpoint (one or several files).
pub struct Checkpoint {
    files: Vec<PathBuf>,
    storage: Storage,
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("files", &self.files)
            .field("tensors", &self.entries.len())
            .finish()
    }
}

fn weight_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::WeightFile {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The key under which a tensor named `name` (with or without the base-model prefix, e.g.
/// `bert.`) lives in a checkpoint, so that a replacement takes the place of the base's tensor.
fn base_key(entries: &BTreeMap<String, Entry>, name: String) -> String {
    if entries.contains_key(&name) {
        return name;
    }
    if let Some((_, rest)) = name.split_once('.')
        && entries.contains_key(rest)
    {
        return rest.to_owned();
    }
    entries
        .keys()
        .find(|k| k.split_once('.').is_some_and(|(_, rest)| rest == name))
        .cloned()
        .unwrap_or(name)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })
}

impl Checkpoint {
    /// Opens the weights of a model directory, preferring safetensors as transformers does:
    /// `model.safetensors`, `model.safetensors.index.json`, `pytorch_model.bin`,
    /// `pytorch_model.bin.index.json`.
    ///
    /// A directory with `embrace_head.json` (`{"base_model": <path or repo id>, "head":
    /// "head.safetensors"}`, written by `embrace train --head-only`) holds only trained head
    /// tensors: the base model's weights are opened from `base_model` and the head's tensors
    /// replace or add to them.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let head_meta = dir.join("embrace_head.json");
        if head_meta.is_file() {
            return Self::from_head_dir(dir, &head_meta);
        }
        let adapter = dir.join("adapter_config.json");
        if adapter.is_file() && !dir.join("model.safetensors").is_file() {
            return Self::from_lora_dir(dir, &adapter);
        }
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Self::from_safetensors(&[single]);
        }
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            return Self::from_safetensors(&shards(dir, &index)?);
        }
        let bin = dir.join("pytorch_model.bin");
        if bin.is_file() {
            return Self::from_pickle(&[bin]);
        }
        let index = dir.join("pytorch_model.bin.index.json");
        if index.is_file() {
            return Self::from_pickle(&shards(dir, &index)?);
        }
        Err(ModelError::NoWeights(dir.to_owned()))
    }

    fn from_head_dir(dir: &Path, meta_path: &Path) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct HeadMeta {
            base_model: String,
            #[serde(default = "default_head")]
            head: String,
        }
        fn default_head() -> String {
            "head.safetensors".into()
        }
        let text = std::fs::read_to_string(meta_path).map_err(|source| ModelError::Io {
            path: meta_path.to_owned(),
            source,
        })?;
        let meta: HeadMeta = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: meta_path.to_owned(),
            message: e.to_string(),
        })?;
        if Path::new(&meta.head).components().count() != 1 {
            return Err(ModelError::Json {
                path: meta_path.to_owned(),
                message: format!("head file `{}` is not a plain file name", meta.head),
            });
        }
        let base_dir = crate::model::resolve_model_dir(&meta.base_model)?;
        let base = Self::from_dir(&base_dir)?;
        let head = Self::from_safetensors(&[dir.join(&meta.head)])?;
        let (Storage::Safetensors(mut buffers), Storage::Safetensors(head_buffers)) =
            (base.storage, head.storage)
        else {
            return Err(ModelError::WeightFile {
                path: base_dir,
                message: "a head directory needs a safetensors base model".into(),
            });
        };
        let offset = buffers.len();
        let mut files = base.files;
        let mut entries = base.entries;
        files.extend(head.files);
        buffers.extend(head_buffers);
        for (name, mut entry) in head.entries {
            entry.file += offset;
            entry.stored = Some(name.clone());
            // Store the head tensor under the base checkpoint's naming (with or without the
            // base-model prefix) so that it replaces the base's tensor of the same role.
            let key = base_key(&entries, name);
            entries.insert(key, entry);
        }
        Ok(Self {
            files,
            storage: Storage::Safetensors(buffers),
            entries,
        })
    }

    /// A PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`): the base
    /// model named by `base_model_name_or_path` with every LoRA update merged into its weight
    /// (`W + scale · B·A`, `scale = lora_alpha / r`, or `/ sqrt(r)` with rsLoRA) and the adapter's
    /// saved modules (the classifier) replacing the base's.
    fn from_lora_dir(dir: &Path, config_path: &Path) -> Result<Self> {
        let json_error = |message: String| ModelError::Json {
            path: config_path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(config_path).map_err(|source| ModelError::Io {
            path: config_path.to_owned(),
            source,
        })?;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| json_error(e.to_string()))?;
        if config["peft_type"].as_str() != Some("LORA") {
            return Err(json_error(format!(
                "peft_type {} is not supported (only LORA)",
                config["peft_type"]
            )));
        }
        if config["fan_in_fan_out"].as_bool() == Some(true) {
            return Err(json_error(
                "fan_in_fan_out adapters are not supported".into(),
            ));
        }
        let base_name = config["base_model_name_or_path"]
            .as_str()
            .ok_or_else(|| json_error("no base_model_name_or_path".into()))?;
        let rank = config["r"]
            .as_f64()
            .filter(|r| *r > 0.0)
            .ok_or_else(|| json_error("no rank r".into()))?;
        let alpha = config["lora_alpha"].as_f64().unwrap_or(rank);
        let scale = if config["use_rslora"].as_bool() == Some(true) {
            alpha / rank.sqrt()
        } else {
            alpha / rank
        };
        let base_dir = crate::model::resolve_model_dir(base_name)?;
        let base = Self::from_dir(&base_dir)?;
        let adapter = Self::from_safetensors(&[dir.join("adapter_model.safetensors")])?;
        let mut merged: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for name in adapter.names() {
            let plain = name.strip_prefix("base_model.model.").unwrap_or(name);
            if plain.contains(".lora_B.") || plain.contains(".lora_embedding_") {
                continue;
            }
            if let Some(target) = plain.strip_suffix(".lora_A.weight") {
                let b_name = name.replace(".lora_A.weight", ".lora_B.weight");
                let a_shape = adapter.shape(name).unwrap_or_default().to_vec();
                let b_shape = adapter.shape(&b_name).unwrap_or_default().to_vec();
                let weight = base_key(&base.entries, format!("{target}.weight"));
                let w_shape = base.shape(&weight).unwrap_or_default().to_vec();
                let [r, input] = a_shape[..] else {
                    return Err(weight_error(dir, format!("{name} is not a matrix")));
                };
                if b_shape != [w_shape.first().copied().unwrap_or(0), r]
                    || w_shape.get(1) != Some(&input)
                {
                    return Err(weight_error(
                        dir,
                        format!(
                            "LoRA shapes {a_shape:?} / {b_shape:?} do not fit {weight} {w_shape:?}"
                        ),
                    ));
                }
                let (a, b, mut w) = (
                    adapter.read_f32(name)?,
                    adapter.read_f32(&b_name)?,
                    base.read_f32(&weight)?,
                );
                let out = w_shape[0];
                for o in 0..out {
                    for k in 0..r {
                        let coef = (b[o * r + k] as f64 * scale) as f32;
                        if coef == 0.0 {
                            continue;
                        }
                        let row = &a[k * input..(k + 1) * input];
                        for (wv, av) in w[o * input..(o + 1) * input].iter_mut().zip(row) {
                            *wv += coef * av;
                        }
                    }
                }
                merged.push((weight, w_shape, w));
            } else {
                // A saved module (the classifier): replaces the base's tensor.
                let plain = plain
                    .replace(".modules_to_save.default", "")
                    .replace(".modules_to_save", "");
                let key = base_key(&base.entries, plain);
                merged.push((
                    key,
                    adapter.shape(name).unwrap_or_default().to_vec(),
                    adapter.read_f32(name)?,
                ));
            }
        }
        let bytes: Vec<Vec<u8>> = merged
            .iter()
            .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views = merged
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), raw)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), raw)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| weight_error(dir, e))
            })
            .collect::<Result<Vec<_>>>()?;
        let buffer = safetensors::serialize(views, None).map_err(|e| weight_error(dir, e))?;
        let Storage::Safetensors(mut buffers) = base.storage else {
            return Err(weight_error(
                &base_dir,
                "a LoRA adapter needs a safetensors base model",
            ));
        };
        let file = buffers.len();
        buffers.push(buffer);
        let mut files = base.files;
        files.push(dir.join("adapter_model.safetensors"));
        let mut entries = base.entries;
        for (name, shape, _) in merged {
            entries.insert(
                name.clone(),
                Entry {
                    file,
                    shape,
                    stored: Some(name),
                },
            );
        }
        Ok(Self {
            files,
            storage: Storage::Safetensors(buffers),
            entries,
        })
    }

    /// Opens safetensors files (the shards of one checkpoint).
    pub fn from_safetensors(paths: &[PathBuf]) -> Result<Self> {
        let mut buffers = Vec::with_capacity(paths.len());
        let mut entries = BTreeMap::new();
        for (file, path) in paths.iter().enumerate() {
            let bytes = read(path)?;
            {
                let st = SafeTensors::deserialize(&bytes).map_err(|e| weight_error(path, e))?;
                for (name, view) in st.tensors() {
                    dtype_size(view.dtype()).ok_or_else(|| {
                        weight_error(
                            path,
                            format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()),
                        )
                    })?;
                    entries.insert(
                        name,
                        Entry {
                            file,
                            shape: view.shape().to_vec(),
                            stored: None,
                        },
                    );
                }
            }
            buffers.push(bytes);
        }
        Ok(Self {
            files: paths.to_vec(),
            storage: Storage::Safetensors(buffers),
            entries,
        })
    }

    /// Opens PyTorch `.bin` checkpoints (zip archives written by `torch.save`).
    pub fn from_pickle(paths: &[PathBuf]) -> Result<Self> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut entries = BTreeMap::new();
        for (file, path) in paths.iter().enumerate() {
            let pth = candle_core::pickle::PthTensors::new(path, None)
                .map_err(|e| weight_error(path, e))?;
            for (name, info) in pth.tensor_infos() {
                entries.insert(
                    name.clone(),
                    Entry {
                        file,
                        shape: info.layout.shape().dims().to_vec(),
                        stored: None,
                    },
                );
            }
            readers.push(pth);
        }
        Ok(Self {
            files: paths.to_vec(),
            storage: Storage::Pickle(readers),
            entries,
        })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The shape of a tensor, if the checkpoint has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads a tensor as `f32`, row-major.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingWeights {
                missing: vec![name.to_owned()],
                unexpected: Vec::new(),
            })?;
        let path = &self.files[entry.file];
        let name = entry.stored.as_deref().unwrap_or(name);
        match &self.storage {
            Storage::Safetensors(buffers) => {
                let st = SafeTensors::deserialize(&buffers[entry.file])
                    .map_err(|e| weight_error(path, e))?;
                let view = st.tensor(name).map_err(|e| weight_error(path, e))?;
                to_f32(view.dtype(), view.data()).ok_or_else(|| {
                    weight_error(
                        path,
                        format!("tensor `{name}`: cannot convert {:?} to f32", view.dtype()),
                    )
                })
            }
            Storage::Pickle(readers) => {
                let tensor = readers[entry.file]
                    .get(name)
                    .map_err(|e| weight_error(path, format!("tensor `{name}`: {e}")))?
                    .ok_or_else(|| weight_error(path, format!("tensor `{name}` vanished")))?;
                let tensor = tensor
                    .to_dtype(candle_core::DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| weight_error(path, format!("tensor `{name}`: {e}")))?;
                Ok(tensor)
            }
        }
    }
}

/// The shard files named by an index file's `weight_map`.
fn shards(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io {
        path: index.to_owned(),
        source,
    })?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: index.to_owned(),
        message: e.to_string(),
    })?;
    let files: BTreeSet<&String> = parsed.weight_map.values().collect();
    files
        .into_iter()
        .map(|file| {
            let rel = Path::new(file);
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(ModelError::Json {
                    path: index.to_owned(),
                    message: format!("shard name `{file}` is not a plain file name"),
                });
            }
            Ok(dir.join(rel))
        })
        .collect()
}

fn dtype_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F32 => Some(4),
        Dtype::F16 | Dtype::BF16 => Some(2),
        Dtype::F64 | Dtype::I64 => Some(8),
        Dtype::I32 => Some(4),
        Dtype::U8 | Dtype::BOOL => Some(1),
        _ => None,
    }
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let size = dtype_size(dtype)?;
    if !data.len().is_multiple_of(size) {
        return None;
    }
    let chunks = data.chunks_exact(size);
    Some(match dtype {
        Dtype::F32 => chunks
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => chunks
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::I64 => chunks
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::I32 => chunks
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
        Dtype::U8 | Dtype::BOOL => chunks.map(|b| b[0] as f32).collect(),
        _ => return None,
    })
}

/// Reads a model's tensors by the names the model uses, tracking what is missing and unused.
pub struct WeightLoader<'a> {
    checkpoint: &'a Checkpoint,
    /// The base-model prefix with its dot (`"bert."`), when the checkpoint's encoder tensors
    /// carry it.
    prefix: String,
    /// The base-model prefix without its dot (`"bert"`).
    base_prefix: String,
    used: Mutex<BTreeSet<String>>,
    missing: Mutex<Vec<String>>,
}

impl<'a> WeightLoader<'a> {
    /// A loader for a model whose base model is called `base_prefix` (`bert`, `roberta`, …).
    ///
    /// Whether the checkpoint's encoder tensors carry the prefix is detected from the names.
    pub fn new(checkpoint: &'a Checkpoint, base_prefix: &str) -> Self {
        let dotted = format!("{base_prefix}.");
        // Prefixed when the encoder's embeddings carry the prefix (a head file may add prefixed
        // pooler tensors to an unprefixed base).
        let prefixed = checkpoint
            .names()
            .any(|n| n.starts_with(&dotted) && n.contains("embeddings"));
        Self {
            checkpoint,
            base_prefix: base_prefix.to_owned(),
            prefix: if prefixed { dotted } else { String::new() },
            used: Mutex::new(BTreeSet::new()),
            missing: Mutex::new(Vec::new()),
        }
    }

    /// The name under which the checkpoint stores `name`, trying the legacy LayerNorm names.
    fn resolve(&self, name: &str) -> Option<String> {
        if self.checkpoint.shape(name).is_some() {
            return Some(name.to_owned());
        }
        let legacy = if let Some(stem) = name.strip_suffix(".weight") {
            format!("{stem}.gamma")
        } else if let Some(stem) = name.strip_suffix(".bias") {
            format!("{stem}.beta")
        } else {
            return None;
        };
        self.checkpoint.shape(&legacy).map(|_| legacy)
    }

    /// The stored name of an encoder tensor: under the base-model prefix when the checkpoint
    /// uses one, falling back to the other convention (checkpoints that mix both, such as a
    /// base model plus a trained head).
    fn base_name(&self, name: &str) -> String {
        let prefixed = format!("{}{name}", self.prefix);
        if self.resolve(&prefixed).is_some() || self.prefix.is_empty() {
            if self.prefix.is_empty() && self.resolve(name).is_none() {
                let with = format!("{}.{name}", self.base_prefix);
                if self.resolve(&with).is_some() {
                    return with;
                }
            }
            return prefixed;
        }
        if self.resolve(name).is_some() {
            name.to_owned()
        } else {
            prefixed
        }
    }

    /// Reads an encoder tensor (under the base-model prefix when the checkpoint has one).
    pub fn base(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = self.base_name(name);
        self.get(&full, shape)
    }

    /// Whether the checkpoint has an encoder tensor.
    pub fn has_base(&self, name: &str) -> bool {
        self.resolve(&self.base_name(name)).is_some()
    }

    /// Whether the checkpoint has a head tensor (a name outside the base model).
    pub fn has(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// Reads a head tensor (a name outside the base model).
    ///
    /// A missing tensor is recorded and an empty vector returned, so that [`finish`] can list
    /// every missing tensor at once; a tensor of another shape is an error right away.
    ///
    /// [`finish`]: WeightLoader::finish
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let Some(stored) = self.resolve(name) else {
            if let Ok(mut missing) = self.missing.lock() {
                missing.push(name.to_owned());
            }
            return Ok(Vec::new());
        };
        let found = self.checkpoint.shape(&stored).unwrap_or_default();
        if found != shape {
            return Err(ModelError::ShapeMismatch {
                name: stored,
                expected: shape.to_vec(),
                found: found.to_vec(),
            });
        }
        let data = self.checkpoint.read_f32(&stored)?;
        if let Ok(mut used) = self.used.lock() {
            used.insert(stored);
        }
        Ok(data)
    }

    /// Marks a tensor as used without reading it (tied weights stored twice).
    pub fn mark_used(&self, name: &str) {
        if let Some(stored) = self.resolve(name)
            && let Ok(mut used) = self.used.lock()
        {
            used.insert(stored);
        }
    }

    /// Ends loading: an error listing every missing tensor (and the unused ones), or the list
    /// of unused tensor names.
    pub fn finish(self) -> Result<Vec<String>> {
        let used = self.used.into_inner().unwrap_or_default();
        let missing = self.missing.into_inner().unwrap_or_default();
        let unexpected: Vec<String> = self
            .checkpoint
            .names()
            .filter(|n| !used.contains(*n))
            // Buffers transformers keeps in state dicts: not weights.
            .filter(|n| !n.ends_with("position_ids") && !n.ends_with("token_type_ids"))
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::MissingWeights {
                missing,
                unexpected,
            });
        }
        Ok(unexpected)
    }
}
