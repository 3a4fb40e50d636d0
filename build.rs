//! Names the source revision in `autovolt --version`: `AUTOVOLT_GIT_REVISION` if the packager set
//! it, else what `git` says about the checkout, else nothing (a build from a tarball has no git).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// Rebuilds when the checked-out commit moves. Only files that exist are named: Cargo reruns a
/// build script on every build while a named file is missing.
fn watch_head() {
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) else {
        return;
    };
    let common = git(&["rev-parse", "--git-common-dir"]).map_or(git_dir.clone(), PathBuf::from);
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(head_ref));
    }
    for path in watched.iter().filter(|p| Path::new(p).is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AUTOVOLT_GIT_REVISION");
    let revision = match std::env::var("AUTOVOLT_GIT_REVISION") {
        Ok(r) if !r.trim().is_empty() => Some(r.trim().to_string()),
        _ => {
            watch_head();
            git(&["rev-parse", "--short=10", "HEAD"])
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    let long = match &revision {
        Some(r) => format!("{version} (git {r})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=AUTOVOLT_VERSION={long}");
}
