//! The committed JSON schemas must match the settings types (release-plz's
//! `schema_is_up_to_date`). Regenerate with `CUTOVER_BLESS=1 cargo nextest run schema`.

use std::path::Path;

#[test]
fn schema_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for (name, schema) in cutover::config::settings::schemas() {
        let path = dir.join(name);
        let fresh = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if std::env::var_os("CUTOVER_BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is stale: run `CUTOVER_BLESS=1 cargo nextest run schema` and commit it",
            path.display()
        );
    }
}
