//! `Features`: the column types of `datasets`, stored as JSON in the Arrow schema metadata
//! (`{"huggingface": {"info": {"features": …}}}`) and in `dataset_info.json`.
//!
//! Understood: `Value` (every Arrow primitive dtype name `datasets` uses), `ClassLabel` (names;
//! stored as int64), `List` and the legacy `Sequence` / `LargeList`, and nested dicts (structs).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema};
use serde_json::{Map, Value, json};

use crate::error::{DatasetError, Result};

/// The type of one column (or nested field).
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// A scalar of a `datasets` dtype (`string`, `int64`, `float32`, `bool`, …).
    Value(String),
    /// An integer class index with names.
    ClassLabel(Vec<String>),
    /// A variable-length list of a feature.
    List(Box<Feature>),
    /// Named fields (a struct).
    Dict(Vec<(String, Feature)>),
}

/// The features of a dataset: its columns, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Features(pub Vec<(String, Feature)>);

fn dtype_of(name: &str) -> Result<DataType> {
    Ok(match name {
        "bool" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float16" => DataType::Float16,
        "float32" | "float" => DataType::Float32,
        "float64" | "double" => DataType::Float64,
        "string" => DataType::Utf8,
        "large_string" => DataType::LargeUtf8,
        "binary" => DataType::Binary,
        "large_binary" => DataType::LargeBinary,
        "null" => DataType::Null,
        "date32" => DataType::Date32,
        other => {
            return Err(DatasetError::Metadata(format!(
                "unsupported Value dtype `{other}`"
            )));
        }
    })
}

fn dtype_name(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Boolean => "bool",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float16 => "float16",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "string",
        DataType::LargeUtf8 => "large_string",
        DataType::Binary => "binary",
        DataType::LargeBinary => "large_binary",
        DataType::Null => "null",
        DataType::Date32 => "date32",
        _ => return None,
    })
}

impl Feature {
    /// The feature `datasets` infers for an Arrow type.
    pub fn from_arrow(t: &DataType) -> Result<Self> {
        if let Some(name) = dtype_name(t) {
            return Ok(Self::Value(name.to_owned()));
        }
        Ok(match t {
            DataType::Utf8View => Self::Value("string".into()),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                Self::List(Box::new(Self::from_arrow(f.data_type())?))
            }
            DataType::Struct(fields) => Self::Dict(
                fields
                    .iter()
                    .map(|f| Ok((f.name().clone(), Self::from_arrow(f.data_type())?)))
                    .collect::<Result<_>>()?,
            ),
            other => {
                return Err(DatasetError::Metadata(format!(
                    "no datasets feature for Arrow type {other}"
                )));
            }
        })
    }

    /// The Arrow type that stores this feature.
    pub fn arrow_type(&self) -> Result<DataType> {
        Ok(match self {
            Self::Value(dtype) => dtype_of(dtype)?,
            Self::ClassLabel(_) => DataType::Int64,
            Self::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.arrow_type()?, true)))
            }
            Self::Dict(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(n, f)| Ok(Field::new(n, f.arrow_type()?, true)))
                    .collect::<Result<Fields>>()?,
            ),
        })
    }

    /// The JSON `datasets` writes for this feature.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Value(dtype) => json!({"dtype": dtype, "_type": "Value"}),
            Self::ClassLabel(names) => json!({"names": names, "_type": "ClassLabel"}),
            Self::List(inner) => json!({"feature": inner.to_json(), "_type": "List"}),
            Self::Dict(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(n, f)| (n.clone(), f.to_json()))
                    .collect(),
            ),
        }
    }

    /// Parses the JSON of a feature (current and legacy spellings).
    pub fn from_json(v: &Value) -> Result<Self> {
        let Value::Object(map) = v else {
            return Err(DatasetError::Metadata(format!(
                "a feature must be an object, found {v}"
            )));
        };
        let Some(kind) = map.get("_type").and_then(Value::as_str) else {
            return Ok(Self::Dict(
                map.iter()
                    .map(|(n, f)| Ok((n.clone(), Self::from_json(f)?)))
                    .collect::<Result<_>>()?,
            ));
        };
        Ok(match kind {
            "Value" => Self::Value(
                map.get("dtype")
                    .and_then(Value::as_str)
                    .ok_or_else(|| DatasetError::Metadata("Value without dtype".into()))?
                    .to_owned(),
            ),
            "ClassLabel" => Self::ClassLabel(
                map.get("names")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "List" | "Sequence" | "LargeList" => {
                let inner = map
                    .get("feature")
                    .ok_or_else(|| DatasetError::Metadata(format!("{kind} without feature")))?;
                // A legacy Sequence of a dict is a dict of lists; keep it as a list of structs.
                Self::List(Box::new(Self::from_json(inner)?))
            }
            other => {
                return Err(DatasetError::Metadata(format!(
                    "unsupported feature type `{other}` (supported: Value, ClassLabel, List, Sequence, LargeList, dicts)"
                )));
            }
        })
    }
}

impl Features {
    /// Column names in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The feature of a column.
    pub fn get(&self, name: &str) -> Option<&Feature> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    /// Features inferred from an Arrow schema.
    pub fn from_schema(schema: &Schema) -> Result<Self> {
        Ok(Self(
            schema
                .fields()
                .iter()
                .map(|f| Ok((f.name().clone(), Feature::from_arrow(f.data_type())?)))
                .collect::<Result<_>>()?,
        ))
    }

    /// The features stored in a schema's `huggingface` metadata, if any and consistent with
    /// its columns; otherwise inferred from the Arrow types.
    pub fn from_schema_metadata(schema: &Schema) -> Result<Self> {
        if let Some(text) = schema.metadata().get("huggingface") {
            let meta: Value = serde_json::from_str(text).map_err(|e| {
                DatasetError::Metadata(format!("schema metadata `huggingface` is not JSON: {e}"))
            })?;
            if let Some(features) = meta.get("info").and_then(|i| i.get("features")) {
                let parsed = Self::from_json(features)?;
                if parsed.names()
                    == schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                {
                    return Ok(parsed);
                }
            }
        }
        Self::from_schema(schema)
    }

    /// The JSON object `datasets` writes.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(n, f)| (n.clone(), f.to_json()))
                .collect::<Map<_, _>>(),
        )
    }

    /// Parses a features JSON object.
    pub fn from_json(v: &Value) -> Result<Self> {
        match Feature::from_json(v)? {
            Feature::Dict(fields) => Ok(Self(fields)),
            other => Err(DatasetError::Metadata(format!(
                "features must be an object of columns, found {other:?}"
            ))),
        }
    }

    /// The Arrow schema these features store into, with the `huggingface` metadata.
    pub fn to_schema(&self) -> Result<Schema> {
        let fields = self
            .0
            .iter()
            .map(|(n, f)| Ok(Field::new(n, f.arrow_type()?, true)))
            .collect::<Result<Vec<_>>>()?;
        let meta = json!({"info": {"features": self.to_json()}}).to_string();
        Ok(
            Schema::new(fields).with_metadata(std::collections::HashMap::from([(
                "huggingface".to_owned(),
                meta,
            )])),
        )
    }
}
