//! The web UI: server-rendered pages for browsing the hub (home and search, repository page with
//! the rendered card, file tree with sizes and download links, commit history).
//!
//! Pages are plain HTML with one inline stylesheet; no scripts. Card Markdown is rendered with
//! raw HTML disabled (shown as text), so a card cannot inject markup.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pulldown_cmark::{Event, Options, Parser, html};

use crate::db::{FileEntry, RepoFilter};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::http::util::{encode_path, encode_segment, html_escape as esc};
use crate::ids::{RepoId, RepoType, iso8601};

/// A page of the web UI.
#[derive(Debug, Clone)]
pub enum Page {
    /// `/`: newest models and datasets, search box.
    Home,
    /// `/models`, `/datasets`, `/spaces` with `?search=`.
    List(RepoType),
    /// `/{pfx}{id}` and `/{pfx}{id}/tree/{rev}/{path}`: card, files, recent commits.
    Repo {
        /// Repository type.
        repo_type: RepoType,
        /// Repository id.
        repo_id: RepoId,
        /// Revision (default `main`).
        revision: Option<String>,
        /// Folder shown in the file list.
        path: String,
    },
    /// `/{pfx}{id}/blob/{rev}/{path}`: one file's details.
    Blob {
        /// Repository type.
        repo_type: RepoType,
        /// Repository id.
        repo_id: RepoId,
        /// Revision.
        revision: String,
        /// File path.
        path: String,
    },
    /// `/{pfx}{id}/commits/{rev}`: full history.
    Commits {
        /// Repository type.
        repo_type: RepoType,
        /// Repository id.
        repo_id: RepoId,
        /// Revision.
        revision: String,
    },
}

const STYLE: &str = r#"
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#ffffff; --soft:#f6f8fa; --accent:#6d28d9; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:var(--fg); background:var(--bg); }
header.top { border-bottom:1px solid var(--line); background:var(--soft); }
header.top .inner, main { max-width: 1080px; margin: 0 auto; padding: 12px 20px; }
header.top .inner { display:flex; align-items:center; gap:28px; }
header.top a.brand { display:flex; align-items:center; gap:8px; font-weight:700; font-size:18px; color:var(--fg); text-decoration:none; }
.logo { display:inline-flex; align-items:center; justify-content:center; width:26px; height:26px; border-radius:7px; background:var(--accent); color:#fff; font-size:15px; }
header.top nav a { margin-right:16px; color:var(--muted); text-decoration:none; }
header.top form { margin-left:auto; }
svg.icon { width:15px; height:15px; vertical-align:-2px; margin-right:6px; fill:var(--muted); }
input[type=search] { padding:6px 10px; border:1px solid var(--line); border-radius:6px; width:260px; }
a { color: var(--accent); }
h1 { font-size: 24px; margin: 18px 0 6px; word-break: break-all; }
h2 { font-size: 17px; margin: 26px 0 10px; padding-bottom:6px; border-bottom:1px solid var(--line); }
.badge { display:inline-block; font-size:12px; padding:1px 8px; margin:2px 4px 2px 0; border-radius:999px; border:1px solid var(--line); background:var(--soft); color:var(--muted); }
.badge.private { border-color:#d4a72c; color:#9a6700; background:#fff8c5; }
.meta { color: var(--muted); font-size: 13px; }
table { width:100%; border-collapse: collapse; font-size:14px; }
td, th { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); }
th { background: var(--soft); font-weight:600; }
td.num { text-align:right; white-space:nowrap; color:var(--muted); font-variant-numeric: tabular-nums; }
.card { border:1px solid var(--line); border-radius:8px; padding: 4px 22px; }
.card pre { background: var(--soft); padding: 10px; overflow-x: auto; border-radius:6px; }
.card code { background: var(--soft); padding: 1px 4px; border-radius:4px; }
.card table td, .card table th { border:1px solid var(--line); }
ul.repos { list-style:none; padding:0; margin:0; }
ul.repos li { padding:10px 0; border-bottom:1px solid var(--line); }
ul.repos li a { font-weight:600; text-decoration:none; }
.empty { color: var(--muted); font-style: italic; }
code.sha { font-size: 12px; color: var(--muted); }
"#;

const FOLDER_ICON: &str = "<svg class=\"icon\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path d=\"M1.75 2h4.1c.46 0 .9.2 1.2.55l.9 1.05h6.3c.97 0 1.75.78 1.75 1.75v7.9c0 .97-.78 1.75-1.75 1.75H1.75C.78 15 0 14.22 0 13.25V3.75C0 2.78.78 2 1.75 2Z\"/></svg>";
const FILE_ICON: &str = "<svg class=\"icon\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path d=\"M3.75 1h5.5L14 5.75v8.5c0 .97-.78 1.75-1.75 1.75h-8.5C2.78 16 2 15.22 2 14.25V2.75C2 1.78 2.78 1 3.75 1Zm5 1.5v3.25c0 .41.34.75.75.75h3.25L8.75 2.5Z\"/></svg>";

fn layout(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Embrace Hub</title><style>{STYLE}</style></head><body>\
         <header class=\"top\"><div class=\"inner\"><a class=\"brand\" href=\"/\"><span class=\"logo\">E</span>Embrace Hub</a>\
         <nav><a href=\"/models\">Models</a><a href=\"/datasets\">Datasets</a><a href=\"/spaces\">Spaces</a></nav>\
         <form action=\"/models\" method=\"get\"><input type=\"search\" name=\"search\" placeholder=\"Search models…\"></form>\
         </div></header><main>{body}</main></body></html>",
        esc(title)
    );
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// Human-readable byte size.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Renders card Markdown to HTML, showing any raw HTML as text.
pub fn render_markdown(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn repo_href(repo_type: RepoType, repo_id: &RepoId) -> String {
    format!(
        "/{}{}/{}",
        repo_type.url_prefix(),
        encode_segment(&repo_id.namespace),
        encode_segment(&repo_id.name)
    )
}

/// Renders a page.
pub async fn render(ctx: &Ctx, page: Page) -> Result<Response, ApiError> {
    match page {
        Page::Home => list_page(ctx, None).await,
        Page::List(t) => list_page(ctx, Some(t)).await,
        Page::Repo {
            repo_type,
            repo_id,
            revision,
            path,
        } => {
            repo_page(
                ctx,
                repo_type,
                &repo_id,
                revision.as_deref().unwrap_or("main"),
                &path,
            )
            .await
        }
        Page::Blob {
            repo_type,
            repo_id,
            revision,
            path,
        } => blob_page(ctx, repo_type, &repo_id, &revision, &path).await,
        Page::Commits {
            repo_type,
            repo_id,
            revision,
        } => commits_page(ctx, repo_type, &repo_id, &revision).await,
    }
}

async fn list_page(ctx: &Ctx, only: Option<RepoType>) -> Result<Response, ApiError> {
    let search = ctx.query.get("search").unwrap_or("").to_string();
    let types = match only {
        Some(t) => vec![t],
        None => vec![RepoType::Model, RepoType::Dataset],
    };
    let mut body = String::new();
    if only.is_none() {
        body.push_str("<h1>Welcome to the hub</h1><p class=\"meta\">Models and datasets served over the Hugging Face Hub API: \
                       point <code>HF_ENDPOINT</code> here and use <code>huggingface_hub</code>, <code>transformers</code>, \
                       <code>datasets</code> or <code>embrace</code> as usual.</p>");
    }
    for repo_type in types {
        let filter = RepoFilter {
            search: if search.is_empty() {
                vec![]
            } else {
                vec![search.clone()]
            },
            author: None,
            viewer: ctx.caller.name().map(str::to_string),
        };
        let mut rows = ctx.db(move |db| db.list_repos(repo_type, &filter)).await?;
        rows.sort_by_key(|(repo, head)| {
            std::cmp::Reverse(head.as_ref().map_or(repo.created_at, |h| h.1))
        });
        let title = match repo_type {
            RepoType::Model => "Models",
            RepoType::Dataset => "Datasets",
            RepoType::Space => "Spaces",
        };
        body.push_str(&format!(
            "<h2>{title} <span class=\"meta\">({})</span></h2>",
            rows.len()
        ));
        if !search.is_empty() {
            body.push_str(&format!(
                "<p class=\"meta\">matching “{}”</p>",
                esc(&search)
            ));
        }
        if rows.is_empty() {
            body.push_str("<p class=\"empty\">Nothing here yet.</p>");
            continue;
        }
        body.push_str("<ul class=\"repos\">");
        for (repo, head) in rows.iter().take(if only.is_some() { 500 } else { 20 }) {
            let updated = head.as_ref().map_or(repo.created_at, |h| h.1);
            body.push_str(&format!(
                "<li><a href=\"{}\">{}</a> {}<div class=\"meta\">updated {}</div></li>",
                repo_href(repo.repo_type, &repo.repo_id),
                esc(&repo.repo_id.to_string()),
                if repo.private {
                    "<span class=\"badge private\">private</span>"
                } else {
                    ""
                },
                &iso8601(updated)[..10],
            ));
        }
        body.push_str("</ul>");
    }
    Ok(layout("Hub", &body))
}

fn files_table(
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    folder: &str,
    files: &[FileEntry],
) -> String {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let mut folders: Vec<(String, u64)> = Vec::new();
    let mut direct: Vec<&FileEntry> = Vec::new();
    for f in files.iter().filter(|f| f.path.starts_with(&prefix)) {
        let rest = &f.path[prefix.len()..];
        match rest.split_once('/') {
            Some((dir, _)) => match folders.iter_mut().find(|(d, _)| d == dir) {
                Some(entry) => entry.1 += f.size,
                None => folders.push((dir.to_string(), f.size)),
            },
            None => direct.push(f),
        }
    }
    let base = repo_href(repo_type, repo_id);
    let rev = encode_segment(revision);
    let mut out = String::from(
        "<table class=\"files\"><thead><tr><th>Name</th><th>Size</th><th></th></tr></thead><tbody>",
    );
    if !folder.is_empty() {
        let parent = folder.rsplit_once('/').map_or("", |(p, _)| p);
        out.push_str(&format!(
            "<tr><td><a href=\"{base}/tree/{rev}/{}\">..</a></td><td></td><td></td></tr>",
            encode_path(parent)
        ));
    }
    for (dir, size) in &folders {
        out.push_str(&format!(
            "<tr><td>{FOLDER_ICON}<a href=\"{base}/tree/{rev}/{}\">{}</a></td><td class=\"num\">{}</td><td></td></tr>",
            encode_path(&format!("{prefix}{dir}")),
            esc(dir),
            human_size(*size)
        ));
    }
    for f in direct {
        let name = &f.path[prefix.len()..];
        out.push_str(&format!(
            "<tr><td>{FILE_ICON}<a href=\"{base}/blob/{rev}/{path}\">{}</a>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\"><a href=\"{base}/resolve/{rev}/{path}\" download>download</a></td></tr>",
            esc(name),
            if f.lfs { " <span class=\"badge\">LFS</span>" } else { "" },
            human_size(f.size),
            path = encode_path(&f.path),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

async fn repo_page(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    folder: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let c = commit.clone();
    let (files, (history, _)) = ctx
        .db(move |db| Ok((db.files(&c)?, db.history(&c, 0, 5)?)))
        .await?;
    let meta = crate::http::read_meta(ctx, &repo, &commit, Some(&files)).await?;
    let base = repo_href(repo_type, repo_id);
    let mut body = format!("<h1>{}</h1><div>", esc(&repo_id.to_string()));
    body.push_str(&format!(
        "<span class=\"badge\">{}</span>",
        repo_type.singular()
    ));
    if repo.private {
        body.push_str("<span class=\"badge private\">private</span>");
    }
    for tag in meta.tags.iter().filter(|t| t.as_str() != "region:us") {
        body.push_str(&format!("<span class=\"badge\">{}</span>", esc(tag)));
    }
    body.push_str(&format!(
        "</div><p class=\"meta\">revision <b>{}</b> · commit <code class=\"sha\">{}</code></p>",
        esc(revision),
        &commit[..12]
    ));
    // The card.
    body.push_str("<h2>Card</h2>");
    let readme = files.iter().find(|f| f.path == "README.md");
    match readme {
        Some(f) => {
            let bytes = ctx
                .state
                .store
                .read_small(&f.sha256, f.size, 4 << 20)
                .await?;
            let text = String::from_utf8_lossy(&bytes);
            let markdown = match crate::card::split_front_matter(&text) {
                Ok((_, body)) => body.to_string(),
                Err(_) => text.to_string(),
            };
            body.push_str(&format!(
                "<article class=\"card\">{}</article>",
                render_markdown(&markdown)
            ));
        }
        None => body.push_str("<p class=\"empty\">This repository has no card (README.md).</p>"),
    }
    // Files.
    body.push_str(&format!(
        "<h2>Files{}</h2>",
        if folder.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"meta\">in {}</span>", esc(folder))
        }
    ));
    body.push_str(&files_table(repo_type, repo_id, revision, folder, &files));
    body.push_str(&format!(
        "<p class=\"meta\">{} files, {} in total</p>",
        files.len(),
        human_size(files.iter().map(|f| f.size).sum())
    ));
    // History.
    body.push_str("<h2>Recent commits</h2><table><tbody>");
    for c in &history {
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"meta\">{}</td><td class=\"num\"><code class=\"sha\">{}</code></td><td class=\"num\">{}</td></tr>",
            esc(&c.title),
            esc(&c.author),
            &c.id[..12],
            &iso8601(c.created_at)[..16].replace('T', " ")
        ));
    }
    body.push_str(&format!(
        "</tbody></table><p><a href=\"{base}/commits/{}\">Full history</a></p>",
        encode_segment(revision)
    ));
    Ok(layout(&repo_id.to_string(), &body))
}

async fn blob_page(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    path: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let (c, p) = (commit.clone(), path.to_string());
    let file = ctx
        .db(move |db| db.file(&c, &p))
        .await?
        .ok_or_else(|| ApiError::entry_not_found(path, Some(&commit)))?;
    let base = repo_href(repo_type, repo_id);
    let mut body = format!(
        "<h1><a href=\"{base}\">{}</a> / {}</h1><table><tbody>\
         <tr><th>Size</th><td>{} ({} bytes)</td></tr><tr><th>Storage</th><td>{}</td></tr>\
         <tr><th>SHA-256</th><td><code class=\"sha\">{}</code></td></tr><tr><th>Git blob id</th><td><code class=\"sha\">{}</code></td></tr>\
         </tbody></table><p><a href=\"{base}/resolve/{}/{}\" download>Download</a></p>",
        esc(&repo_id.to_string()),
        esc(path),
        human_size(file.size),
        file.size,
        if file.lfs { "LFS" } else { "regular" },
        file.sha256,
        file.git_oid,
        encode_segment(revision),
        encode_path(path),
    );
    if !file.lfs && file.size <= 512 * 1024 {
        let bytes = ctx
            .state
            .store
            .read_small(&file.sha256, file.size, 512 * 1024)
            .await?;
        if let Ok(text) = std::str::from_utf8(&bytes) {
            body.push_str(&format!(
                "<h2>Content</h2><div class=\"card\"><pre>{}</pre></div>",
                esc(text)
            ));
        }
    }
    Ok(layout(path, &body))
}

async fn commits_page(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let (history, more) = ctx.db(move |db| db.history(&commit, 0, 500)).await?;
    let base = repo_href(repo_type, repo_id);
    let mut body = format!(
        "<h1><a href=\"{base}\">{}</a></h1><h2>History of {}</h2><table><thead><tr><th>Commit</th><th>Author</th><th>Id</th><th>Date</th></tr></thead><tbody>",
        esc(&repo_id.to_string()),
        esc(revision)
    );
    for c in &history {
        body.push_str(&format!(
            "<tr><td><a href=\"{base}/tree/{}\">{}</a></td><td class=\"meta\">{}</td><td class=\"num\"><code class=\"sha\">{}</code></td><td class=\"num\">{}</td></tr>",
            c.id,
            esc(&c.title),
            esc(&c.author),
            &c.id[..12],
            &iso8601(c.created_at)[..16].replace('T', " ")
        ));
    }
    body.push_str("</tbody></table>");
    if more {
        body.push_str("<p class=\"meta\">Only the 500 newest commits are shown.</p>");
    }
    Ok(layout(&format!("History of {repo_id}"), &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_raw_html() {
        let html = render_markdown(
            "# Title\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<table>"));
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(52_428_800), "52.4 MB");
    }
}
