//! `sqlx::migrate!` embeds `migrations/` at compile time; cargo does not see a new migration
//! file by itself, so it is told to rebuild when the folder changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
