//! The import rules of `docs/architecture.md`, checked on the source so they stay true:
//! only `store` names diesel, and only `http` and the start-up code (`app`, `cli`) name
//! actix-web. A new file that breaks a rule fails here with its path and line.

use std::path::{Path, PathBuf};

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("reading src/").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file relative to src/, line number, line)` of every code line naming `crate_name`
/// as a path, outside the allowed modules.
fn offending_lines(crate_name: &str, allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let module = relative.trim_end_matches(".rs").trim_end_matches("/mod");
        if allowed
            .iter()
            .any(|a| module == *a || module.starts_with(&format!("{a}/")))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let named = code.match_indices(crate_name).any(|(at, _)| {
                let before = code[..at].chars().last();
                let after = &code[at + crate_name.len()..];
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && (after.starts_with("::") || after.starts_with(';'))
            });
            if named {
                found.push(format!("src/{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_store_names_diesel() {
    let found = offending_lines("diesel", &["store"]);
    assert!(
        found.is_empty(),
        "diesel outside src/store:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_http_and_start_up_code_name_actix_web() {
    let found = offending_lines("actix_web", &["http", "app", "cli"]);
    assert!(
        found.is_empty(),
        "actix_web outside src/http, app, cli:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_rule_checker_sees_a_violation() {
    // The checker itself must be able to fail: `store` names diesel, so with no module
    // allowed it reports lines.
    assert!(!offending_lines("diesel", &[]).is_empty());
    assert!(!offending_lines("actix_web", &["app", "cli"]).is_empty());
}
