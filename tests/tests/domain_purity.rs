//! The domain core does no I/O (DESIGN.md): no async runtime, database, cache, web, model
//! runtime, clock or ambient randomness may appear under `server/src/domain`.

#[test]
fn the_domain_imports_nothing_that_does_io() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/src/domain");
    // Paths that do I/O or read ambient state; matched at an identifier boundary.
    let forbidden = [
        "tokio",
        "sqlx",
        "redis",
        "actix_web",
        "actix_http",
        "ort",
        "reqwest",
        "rand",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "std::thread",
        "SystemTime",
        "Instant",
        "Utc",
        "thread_rng",
    ];
    let mut files = vec![std::path::PathBuf::from(root)];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(
                std::fs::read_dir(&p)
                    .expect("read dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).expect("read");
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for f in forbidden {
                    assert!(
                        !mentions(code, f),
                        "{}:{}: the domain must not use {f}: {line}",
                        p.display(),
                        i + 1
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "expected the domain's modules, found {checked}"
    );
}

/// Whether `code` names `path` as a path or identifier (not as part of a longer name).
fn mentions(code: &str, path: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(path).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + path.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn the_scanner_finds_what_it_must() {
    assert!(mentions("use tokio::sync;", "tokio"));
    assert!(mentions("let t = std::time::Instant::now();", "Instant"));
    assert!(mentions("    rand::random()", "rand"));
    assert!(!mentions("use super::test_support::x;", "ort"));
    assert!(!mentions("let random_draw = 1;", "rand"));
    assert!(!mentions("operand", "rand"));
}
