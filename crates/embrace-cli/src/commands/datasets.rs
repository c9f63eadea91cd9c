//! `embrace datasets`: inspect, convert, split and push datasets (files, `save_to_disk` folders,
//! or hub dataset repositories as `hf://datasets/org/name[@revision]`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use embrace_datasets::{
    Dataset, DatasetDict, Loaded, load_hub_dataset, load_path, parse_hub_uri, push_to_hub,
};
use embrace_hub::HubClient;
use serde_json::json;

/// Arguments of `embrace datasets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replace invalid UTF-8 in CSV files with U+FFFD instead of failing.
    #[arg(long, global = true)]
    lossy_utf8: bool,
    #[command(subcommand)]
    command: DatasetsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DatasetsCommand {
    /// Rows, columns with their `datasets` features, splits and fingerprint, as JSON.
    Info {
        /// A .csv, .tsv, .json, .jsonl, .parquet or .txt file, a save_to_disk folder, or a hub
        /// dataset repository as hf://datasets/org/name[@revision] (downloaded into the cache).
        path: PathBuf,
    },
    /// The first rows, one JSON object per line.
    Head {
        /// A file or a save_to_disk folder.
        path: PathBuf,
        /// Number of rows.
        #[arg(short, long, default_value_t = 5)]
        n: usize,
        /// The split of a DatasetDict folder (default: the first).
        #[arg(long)]
        split: Option<String>,
    },
    /// Convert between formats: the output's extension picks it (.parquet, .csv, .jsonl);
    /// any other output is a save_to_disk folder that Python's datasets.load_from_disk opens.
    Convert {
        /// The input file or folder.
        input: PathBuf,
        /// The output file or folder.
        output: PathBuf,
        /// Turn this text column into a ClassLabel column first.
        #[arg(long)]
        class_column: Option<String>,
        /// The split of a DatasetDict input (default: the first).
        #[arg(long)]
        split: Option<String>,
    },
    /// Split into train and test (seeded shuffle) and save both as a DatasetDict folder.
    Split {
        /// The input file or folder.
        input: PathBuf,
        /// The output folder.
        output: PathBuf,
        /// A fraction (0.2) or a row count (500) for the test split.
        #[arg(long, default_value_t = 0.2)]
        test_size: f64,
        /// Shuffle seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Turn this text column into a ClassLabel column first.
        #[arg(long)]
        class_column: Option<String>,
    },
    /// Push a dataset to a hub dataset repository (created if missing): one Parquet file per
    /// split under data/ and a card whose configs map the splits, as datasets' push_to_hub.
    ///
    /// Example: HF_ENDPOINT=http://127.0.0.1:8000 HF_TOKEN=hf_... embrace datasets push data/tweets alice/tweets
    Push {
        /// The input file or folder (a DatasetDict keeps its splits; anything else is `train`).
        input: PathBuf,
        /// The dataset repository id (org/name).
        repo: String,
        /// Create the repository as private.
        #[arg(long)]
        private: bool,
    },
}

/// Opens a path, or a hub dataset repository given as `hf://datasets/org/name[@revision]`.
fn open(path: &std::path::Path, lossy_utf8: bool) -> Result<Loaded> {
    if let Some((repo, revision)) = parse_hub_uri(&path.to_string_lossy()) {
        let hub = HubClient::from_env()?;
        let dict = load_hub_dataset(&hub, &repo, &revision).with_context(|| {
            format!(
                "loading dataset {repo} at {revision} from {}",
                hub.config().endpoint
            )
        })?;
        return Ok(Loaded::Dict(dict));
    }
    Ok(load_path(path, lossy_utf8)?)
}

fn one(loaded: Loaded, split: Option<&str>) -> Result<Dataset> {
    match loaded {
        Loaded::Dataset(d) => Ok(d),
        Loaded::Dict(dict) => {
            let name = split
                .map(str::to_owned)
                .or_else(|| dict.splits().first().map(|s| s.to_string()));
            let name = name.context("the DatasetDict has no split")?;
            dict.get(&name)
                .cloned()
                .with_context(|| format!("no split {name:?}; splits: {}", dict.splits().join(", ")))
        }
    }
}

fn describe(d: &Dataset) -> serde_json::Value {
    json!({"num_rows": d.num_rows(), "features": d.features().to_json(), "fingerprint": d.fingerprint()})
}

/// Runs the `datasets` command.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        DatasetsCommand::Info { path } => {
            let info = match open(&path, args.lossy_utf8)? {
                Loaded::Dataset(d) => describe(&d),
                Loaded::Dict(dict) => json!({
                    "splits": dict.0.iter().map(|(n, d)| (n.clone(), describe(d))).collect::<serde_json::Map<_, _>>()
                }),
            };
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        DatasetsCommand::Head { path, n, split } => {
            let d = one(open(&path, args.lossy_utf8)?, split.as_deref())?;
            for row in d.rows(0, n)? {
                println!("{row}");
            }
        }
        DatasetsCommand::Convert {
            input,
            output,
            class_column,
            split,
        } => {
            let mut d = one(open(&input, args.lossy_utf8)?, split.as_deref())?;
            if let Some(c) = &class_column {
                d = d.class_encode_column(c)?;
            }
            let ext = output
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            match ext.as_str() {
                "parquet" => d.to_parquet(&output)?,
                "csv" => d.to_csv(&output)?,
                "jsonl" | "json" => d.to_json(&output)?,
                "" => d.save_to_disk(&output)?,
                other => bail!("cannot write .{other}; use .parquet, .csv, .jsonl or a folder"),
            }
            eprintln!("wrote {} rows to {}", d.num_rows(), output.display());
        }
        DatasetsCommand::Split {
            input,
            output,
            test_size,
            seed,
            class_column,
        } => {
            let mut d = one(open(&input, args.lossy_utf8)?, None)?;
            if let Some(c) = &class_column {
                d = d.class_encode_column(c)?;
            }
            let (train, test) = d.train_test_split(test_size, Some(seed))?;
            let sizes = (train.num_rows(), test.num_rows());
            DatasetDict(vec![("train".into(), train), ("test".into(), test)])
                .save_to_disk(&output)?;
            println!(
                "{}",
                json!({"output": output, "train": sizes.0, "test": sizes.1, "seed": seed})
            );
        }
        DatasetsCommand::Push {
            input,
            repo,
            private,
        } => {
            let dict = match open(&input, args.lossy_utf8)? {
                Loaded::Dict(dict) => dict,
                Loaded::Dataset(d) => DatasetDict(vec![("train".into(), d)]),
            };
            let hub = HubClient::from_env()?;
            let info = push_to_hub(&dict, &hub, &repo, private)
                .with_context(|| format!("pushing to {repo} on {}", hub.config().endpoint))?;
            let splits: serde_json::Map<String, serde_json::Value> = dict
                .0
                .iter()
                .map(|(n, d)| (n.clone(), json!(d.num_rows())))
                .collect();
            println!(
                "{}",
                json!({"repo": repo, "commit": info.commit_oid, "splits": splits})
            );
        }
    }
    Ok(())
}
