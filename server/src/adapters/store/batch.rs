//! Multi-row statements for the worker's hot path: a batch of events (or verdicts) is written
//! with a few statements of many rows instead of one statement per row. A batch is cut into a
//! fixed set of row counts, so the prepared-statement cache holds a handful of texts rather
//! than one per length.
//!
//! Placeholders differ by backend: PostgreSQL needs `$n` (sqlx's `QueryBuilder` over `Any`
//! writes `?`, which PostgreSQL refuses); SQLite gets anonymous `?`, because sqlx resolves each
//! named parameter with `sqlite3_bind_parameter_name`, a linear scan of the statement's names:
//! quadratic in a 1,280-parameter statement, where it took a quarter of the embedded server's
//! CPU under load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::Backend;

/// Rows per statement, largest first. 256 rows × 8 columns stays far below both backends'
/// bind-parameter limits (PostgreSQL 65 535, SQLite 32 766).
pub(super) const CHUNKS: [usize; 4] = [256, 32, 4, 1];

/// Cuts `n` rows into consecutive chunks of sizes from `CHUNKS` (greedy, largest first).
pub(super) fn chunks(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for size in CHUNKS {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    out
}

/// `(…), (…), …`: `rows` groups of `cols` placeholders, row by row: `$1, $2, …` on
/// PostgreSQL, `?` on SQLite (bound in the same order).
pub(super) fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    typed_placeholders(backend, rows, &vec![""; cols])
}

/// As `placeholders`, one column per entry of `casts`, each PostgreSQL placeholder followed
/// by its column's cast (`"::uuid"`, or `""` for none). SQLite's are never cast: its columns
/// take any value as it is.
pub(super) fn typed_placeholders(backend: Backend, rows: usize, casts: &[&str]) -> String {
    let cols = casts.len();
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for (c, cast) in casts.iter().enumerate() {
            if c > 0 {
                s.push_str(", ");
            }
            match backend {
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                    s.push_str(cast);
                }
                Backend::Sqlite => s.push('?'),
            }
        }
        s.push(')');
    }
    s
}

/// Statement texts by (backend, statement, rows).
type Texts = HashMap<(Backend, &'static str, usize), Arc<str>>;

/// The text of a statement for `rows` rows, built once per (statement, rows) and shared.
pub(super) fn statement(
    backend: Backend,
    name: &'static str,
    rows: usize,
    build: impl FnOnce(usize, Backend) -> String,
) -> Arc<str> {
    static CACHE: OnceLock<Mutex<Texts>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = match cache.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry((backend, name, rows))
        .or_insert_with(|| Arc::from(build(rows, backend)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_batch_exactly_with_few_statements() {
        for n in [0, 1, 3, 4, 5, 31, 32, 33, 255, 256, 257, 1000, 2048, 2049] {
            let c = chunks(n);
            assert_eq!(c.iter().sum::<usize>(), n, "n = {n}");
            assert!(c.iter().all(|s| CHUNKS.contains(s)));
            assert!(c.windows(2).all(|w| w[0] >= w[1]), "largest first: {c:?}");
            assert!(c.len() <= n / 256 + 7 + 7 + 3, "n = {n}: {c:?}");
        }
    }

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        let pg = Backend::Postgres;
        assert_eq!(placeholders(pg, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(pg, 1, 1), "($1)");
        assert_eq!(placeholders(pg, 0, 3), "");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        let casts = ["::uuid", "", ""];
        assert_eq!(
            typed_placeholders(pg, 2, &casts),
            "($1::uuid, $2, $3), ($4::uuid, $5, $6)"
        );
        assert_eq!(
            typed_placeholders(Backend::Sqlite, 2, &casts),
            "(?, ?, ?), (?, ?, ?)"
        );
    }

    #[test]
    fn statement_texts_are_built_once_per_row_count() {
        let (pg, lite) = (Backend::Postgres, Backend::Sqlite);
        let mut built = 0;
        let a = statement(pg, "test", 4, |n, b| {
            built += 1;
            format!("rows {n} {b:?}")
        });
        let b = statement(pg, "test", 4, |_, _| unreachable!("cached"));
        assert_eq!(built, 1);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            &*statement(pg, "test", 1, |n, _| format!("rows {n}")),
            "rows 1"
        );
        let other = statement(lite, "test", 4, |n, b| format!("rows {n} {b:?}"));
        assert_eq!(&*other, "rows 4 Sqlite", "texts are per backend");
    }
}
