// sqlx::migrate! embeds the folder at compile time but does not notice new files by itself.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
