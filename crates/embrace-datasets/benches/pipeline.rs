//! A 1,000,000-row data pipeline: Embrace next to HuggingFace `datasets`, and the memory cost
//! of opening a 2 GB Arrow cache file.
//!
//! ```text
//! cargo bench -p embrace-datasets --bench pipeline [-- --rows 1000000 --open-gb 2 --skip-open]
//! ```
//!
//! The benchmark writes a CSV of `--rows` rows (`text`: two English prose lines, `label`: 0/1)
//! under `target/bench-data/datasets/`, once. Then two worker processes run the same pipeline
//! on it, each timing every stage and reporting its peak RSS: this binary in worker mode, and
//! `tools/oracle/bench_datasets.py` in the oracle venv (`datasets` with a fresh cache folder).
//!
//! Pipeline: load the CSV -> batched map with the all-MiniLM-L6-v2 tokenizer (BERT uncased,
//! truncation to 128, no padding) -> batched filter (at least 24 tokens) -> shuffle (seed 42)
//! -> train_test_split (test 0.1, seed 42) -> train split to Parquet.
//!
//! Open: a transform-cache file of at least `--open-gb` GB (the tokenized rows repeated) is
//! written once; then a fresh process of each side opens it (`Dataset::from_arrow_file` /
//! `datasets.Dataset.from_file`), counts the rows and reads the first and last rows, and
//! reports its peak RSS. Without the venv only Embrace's side runs.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray};
use embrace_assets::bench::{peak_rss_kb, prose_lines, repo_root, run_worker};
use embrace_datasets::{Dataset, TransformCache, read_csv};
use embrace_tokenizers::{Tokenizer, TruncationParams};
use serde_json::{Map, Value, json};

/// The pipeline's settings; `tools/oracle/bench_datasets.py` uses the same values.
const MAX_LENGTH: usize = 128;
const MIN_TOKENS: i32 = 24;
const SEED: u64 = 42;
const TEST_SIZE: f64 = 0.1;

const STAGES: [&str; 6] = [
    "load",
    "map (tokenize)",
    "filter",
    "shuffle",
    "train_test_split",
    "to_parquet",
];

fn data_dir() -> PathBuf {
    repo_root().join("target/bench-data/datasets")
}

/// Writes the benchmark CSV once: row i pairs two prose lines chosen by i, label i % 2.
fn ensure_csv(rows: usize) -> PathBuf {
    let path = data_dir().join(format!("rows-{rows}.csv"));
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(data_dir()).unwrap();
    let lines = prose_lines().unwrap();
    let n = lines.len();
    let temp = path.with_extension("csv.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&temp).unwrap());
    writeln!(out, "text,label").unwrap();
    for i in 0..rows {
        let text = format!("{} {}", lines[i % n], lines[(i / n + 7 * i) % n]);
        writeln!(out, "\"{}\",{}", text.replace('"', "\"\""), i % 2).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&temp, &path).unwrap();
    path
}

fn tokenizer(dir: &Path) -> Tokenizer {
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: Default::default(),
            max_length: MAX_LENGTH,
            strategy: Default::default(),
            stride: 0,
        }))
        .unwrap();
    tokenizer
}

/// Worker: the pipeline, timed stage by stage.
fn run_pipeline(csv: &Path, tokenizer_dir: &Path, work: &Path) -> Value {
    let tokenizer = tokenizer(tokenizer_dir);
    let mut stages = Map::new();
    let mut rows = Map::new();
    let mut peaks = Map::new();
    let mut record = |name: &str, start: Instant, n: usize| {
        stages.insert(name.into(), json!(start.elapsed().as_secs_f64()));
        rows.insert(name.into(), json!(n));
        peaks.insert(name.into(), json!(peak_rss_kb()));
    };
    let t = Instant::now();
    let ds = read_csv(csv, b',').unwrap();
    record("load", t, ds.num_rows());
    let t = Instant::now();
    let ds = ds.tokenize(&tokenizer, "text").unwrap();
    record("map (tokenize)", t, ds.num_rows());
    let t = Instant::now();
    let ds = ds
        .filter_batches("min_tokens", |batch| {
            let ids = batch.column_by_name("input_ids").unwrap().as_list::<i32>();
            Ok((0..ids.len())
                .map(|i| Some(ids.value_length(i) >= MIN_TOKENS))
                .collect::<BooleanArray>())
        })
        .unwrap();
    record("filter", t, ds.num_rows());
    let t = Instant::now();
    let ds = ds.shuffle(SEED).unwrap();
    record("shuffle", t, ds.num_rows());
    let t = Instant::now();
    let (train, _test) = ds.train_test_split(TEST_SIZE, Some(SEED)).unwrap();
    drop(ds);
    record("train_test_split", t, train.num_rows());
    let t = Instant::now();
    train.to_parquet(&work.join("train.parquet")).unwrap();
    record("to_parquet", t, train.num_rows());
    json!({"stages": stages, "rows": rows, "peak_rss_kb": peak_rss_kb(), "peak_rss_kb_after": peaks})
}

/// Worker: writes a transform-cache file of at least `gb` GB and prints its path.
fn build_cache_file(csv: &Path, tokenizer_dir: &Path, dir: &Path, gb: f64) -> Value {
    let tokenized = read_csv(csv, b',')
        .unwrap()
        .tokenize(&tokenizer(tokenizer_dir), "text")
        .unwrap();
    let bytes: usize = tokenized
        .batches()
        .iter()
        .flat_map(|b| b.columns())
        .map(|c| c.to_data().get_slice_memory_size().unwrap())
        .sum();
    let copies = ((gb * 1e9) / bytes as f64).ceil().max(1.0) as usize;
    let cache = TransformCache::new(dir);
    cache.cleanup().unwrap();
    let repeated = cache
        .apply(&tokenized, &format!("repeat x{copies}"), |d| {
            Dataset::concatenate(&vec![d; copies])
        })
        .unwrap();
    let file = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "arrow"))
        .unwrap();
    json!({"path": file, "rows": repeated.num_rows(), "bytes": std::fs::metadata(&file).unwrap().len()})
}

/// Worker: opens the cache file and reads its size and first and last rows.
fn open_file(path: &Path) -> Value {
    let t = Instant::now();
    let ds = Dataset::from_arrow_file(path).unwrap();
    let n = ds.num_rows();
    let first = ds.rows(0, 1).unwrap();
    let last = ds.rows(n - 1, 1).unwrap();
    let seconds = t.elapsed().as_secs_f64();
    assert!(!first.is_empty() && !last.is_empty());
    json!({"seconds": seconds, "rows": n, "peak_rss_kb": peak_rss_kb()})
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].as_str())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = arg(&args, "--worker") {
        let rest = &args[args.iter().position(|a| a == "--worker").unwrap() + 2..];
        let p = |i: usize| PathBuf::from(&rest[i]);
        let out = match mode {
            "pipeline" => run_pipeline(&p(0), &p(1), &p(2)),
            "build" => build_cache_file(&p(0), &p(1), &p(2), rest[3].parse().unwrap()),
            "open" => open_file(&p(0)),
            _ => panic!("unknown worker mode {mode}"),
        };
        println!("{out}");
        return;
    }
    let rows: usize = arg(&args, "--rows").map_or(1_000_000, |r| r.parse().unwrap());
    let open_gb: f64 = arg(&args, "--open-gb").map_or(2.0, |g| g.parse().unwrap());
    let skip_open = args.iter().any(|a| a == "--skip-open");
    let tokenizer_dir = embrace_assets::require("all-minilm-l6-v2", "tokenizer.json");
    let tokenizer_dir = tokenizer_dir.parent().unwrap().to_path_buf();
    let csv = ensure_csv(rows);
    let venv_python = repo_root().join("tools/oracle/.venv/bin/python");
    let script = repo_root().join("tools/oracle/bench_datasets.py");
    let exe = std::env::current_exe().unwrap();
    let python = |args: &[&Path]| {
        if !venv_python.is_file() {
            return None;
        }
        let mut py = Command::new(&venv_python);
        py.arg(&script)
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_DATASETS_OFFLINE", "1");
        run_worker(py)
    };

    let work = tempfile::tempdir().unwrap();
    let (ours_dir, theirs_dir) = (work.path().join("embrace"), work.path().join("datasets"));
    std::fs::create_dir_all(&ours_dir).unwrap();
    std::fs::create_dir_all(&theirs_dir).unwrap();
    let mut ours = Command::new(&exe);
    ours.args(["--worker", "pipeline"])
        .arg(&csv)
        .arg(&tokenizer_dir)
        .arg(&ours_dir);
    let ours = run_worker(ours).expect("embrace worker");
    let theirs = python(&[Path::new("pipeline"), &csv, &tokenizer_dir, &theirs_dir]);

    println!(
        "{rows} rows, {:.0} MB CSV; seconds per stage (ratio = datasets time / Embrace time)",
        std::fs::metadata(&csv).unwrap().len() as f64 / 1e6
    );
    println!(
        "{:>18} {:>10} {:>10} {:>8} {:>10}",
        "stage", "embrace", "datasets", "ratio", "rows"
    );
    let secs = |v: &Value, s: &str| v["stages"][s].as_f64().unwrap();
    let (mut total_ours, mut total_theirs) = (0.0, 0.0);
    for stage in STAGES {
        let o = secs(&ours, stage);
        total_ours += o;
        let (t_text, ratio) = match &theirs {
            Some(t) => {
                let t = secs(t, stage);
                total_theirs += t;
                (format!("{t:.3}"), format!("x{:.2}", t / o))
            }
            None => ("-".into(), "-".into()),
        };
        let n = &ours["rows"][stage];
        if let Some(t) = &theirs {
            assert_eq!(n, &t["rows"][stage], "row counts differ after {stage}");
        }
        println!("{stage:>18} {o:>10.3} {t_text:>10} {ratio:>8} {n:>10}");
    }
    let rss = |v: &Value| v["peak_rss_kb"].as_f64().unwrap() / 1024.0;
    match &theirs {
        Some(t) => {
            println!(
                "{:>18} {total_ours:>10.3} {total_theirs:>10.3} {:>8}",
                "end to end",
                format!("x{:.2}", total_theirs / total_ours)
            );
            println!(
                "{:>18} {:>8.0}MB {:>8.0}MB {:>8}",
                "peak RSS",
                rss(&ours),
                rss(t),
                format!("x{:.2}", rss(&ours) / rss(t))
            );
        }
        None => println!(
            "{:>18} {total_ours:>10.3}\n{:>18} {:>8.0}MB",
            "end to end",
            "peak RSS",
            rss(&ours)
        ),
    }
    if skip_open {
        return;
    }

    let cache_dir = data_dir().join(format!("cache-{open_gb}gb"));
    let mut build = Command::new(&exe);
    build
        .args(["--worker", "build"])
        .arg(&csv)
        .arg(&tokenizer_dir)
        .arg(&cache_dir)
        .arg(open_gb.to_string());
    let built = run_worker(build).expect("cache build");
    let file = PathBuf::from(built["path"].as_str().unwrap());
    let mut open = Command::new(&exe);
    open.args(["--worker", "open"]).arg(&file);
    let ours = run_worker(open).expect("embrace open");
    let theirs = python(&[Path::new("open"), &file]);
    println!(
        "\nopening a {:.2} GB Arrow cache file ({} rows): peak RSS and seconds",
        built["bytes"].as_f64().unwrap() / 1e9,
        built["rows"]
    );
    println!(
        "{:>18} {:>8.0}MB {:>8.3}s",
        "embrace",
        rss(&ours),
        ours["seconds"].as_f64().unwrap()
    );
    if let Some(t) = theirs {
        println!(
            "{:>18} {:>8.0}MB {:>8.3}s",
            "datasets",
            rss(&t),
            t["seconds"].as_f64().unwrap()
        );
    }
    std::fs::remove_dir_all(&cache_dir).unwrap();
}
