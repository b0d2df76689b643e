//! The embed workers' share of the work: batches claimed with `FOR UPDATE SKIP LOCKED`, so any
//! number of `lookbook embed` processes, on any machines, fill one catalogue without overlap.

use postgres::Client;

use crate::Result;
use crate::catalog::Product;
use crate::catalog::products::{SELECT as SELECT_PRODUCT, from_row};
use crate::catalog::put_embeddings_in;
use crate::catalog::sql::{Pg, Row};

/// One batch's work: the products given, their (id, image hash, vector) back.
pub type Rows = Vec<(i64, String, Vec<f32>)>;

/// Embeds every product without a fresh vector of `model_id`, `batch` at a time, side by
/// side with any other process doing the same. Each batch is claimed with `FOR UPDATE SKIP
/// LOCKED` inside a transaction that lives until its vectors are committed: another worker
/// skips those rows, and a worker that dies (even by SIGKILL) loses only its transaction, so
/// its rows are free again at once. `work` returns the vectors it could make; products it
/// could not are not claimed again by this worker. Returns (vectors committed, batches).
pub fn embed_claims(
    c: &mut Client,
    model_id: i64,
    batch: usize,
    mut work: impl FnMut(Vec<Product>) -> Result<Rows>,
    mut committed: impl FnMut(usize),
) -> Result<usize> {
    let mut given_up: Vec<i64> = Vec::new();
    let mut total = 0;
    loop {
        let mut tx = c.transaction()?;
        let mut db = Pg(&mut tx);
        // PostgreSQL only: arrays and row locks that skip what another worker holds.
        let claimed: Vec<Product> = db
            .rows_pg(
                &format!(
                    "{SELECT_PRODUCT}
                     WHERE NOT EXISTS (SELECT 1 FROM embeddings e
                                        WHERE e.model_id = $1 AND e.product_id = p.id AND e.image_hash = p.image_hash)
                       AND p.id <> ALL($2)
                     ORDER BY p.id LIMIT $3 FOR UPDATE OF p SKIP LOCKED"
                ),
                &[&model_id, &given_up, &(batch as i64)],
            )?
            .into_iter()
            .map(from_row)
            .collect::<Result<_>>()?;
        if claimed.is_empty() {
            tx.commit()?;
            return Ok(total);
        }
        // The rows are ours now; a vector committed by another worker between that query's
        // snapshot and our lock would show here (each statement sees what is committed).
        let ids: Vec<i64> = claimed.iter().map(|p| p.id).collect();
        let done: Vec<i64> = db
            .rows_pg(
                "SELECT e.product_id FROM embeddings e JOIN products p ON p.id = e.product_id
                 WHERE e.model_id = $1 AND e.product_id = ANY($2) AND e.image_hash = p.image_hash",
                &[&model_id, &ids],
            )?
            .iter()
            .map(|r: &Row| r.get(0))
            .collect::<Result<_>>()?;
        let todo: Vec<Product> = claimed.into_iter().filter(|p| !done.contains(&p.id)).collect();
        let asked: Vec<i64> = todo.iter().map(|p| p.id).collect();
        let rows = work(todo)?;
        given_up.extend(asked.iter().filter(|id| !rows.iter().any(|r| r.0 == **id)));
        put_embeddings_in(&mut db, model_id, &rows, crate::now_ms())?;
        tx.commit()?;
        total += rows.len();
        committed(rows.len());
    }
}
