//! Writes a synthetic catalogue (products, an active model, random clustered vectors; no
//! photos) for timing commands at sizes no photo set here reaches:
//!
//! ```sh
//! cargo run --example synthetic_catalog -- big.db 50000 2048
//! time lookbook --db big.db similar 25000 -k 10 --json
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, n, dim] = args.as_slice() else {
        return Err("usage: synthetic_catalog OUT.db PRODUCTS DIM".into());
    };
    let path = std::path::Path::new(path);
    if path.exists() {
        return Err(format!("{} exists; give a new file", path.display()).into());
    }
    lookbook::synthetic::write_synthetic_catalog(path, n.parse()?, dim.parse()?, 5)?;
    Ok(())
}
