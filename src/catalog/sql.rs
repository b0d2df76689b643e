//! One way to run SQL on either store. The catalogue's statements are written once, in the
//! dialect the two share, with `?1`, `?2`... parameters; [`Db`] runs them on SQLite as they are
//! and on PostgreSQL with `$1`, `$2`... Values cross in one type, [`Value`], so a vector is a
//! BLOB in SQLite and a pgvector `vector` in PostgreSQL without the statement knowing.
//!
//! What the dialects really do differently stays with the store that needs it: SQLite's
//! pragmas and PostgreSQL's vector search, HNSW indexes and embed-worker claims.

use postgres::types::{IsNull, ToSql, Type};
use std::cell::RefMut;

use super::tables::{Dialect, Table};
use crate::{Error, Result};

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// An integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int(i64),
    /// A float (SQLite REAL, PostgreSQL DOUBLE PRECISION).
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob(Vec<u8>),
    /// An embedding (a little-endian f32 BLOB in SQLite, pgvector `vector` in PostgreSQL).
    Vector(Vec<f32>),
}

macro_rules! value_from {
    ($($t:ty => $v:expr),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self {
                #[allow(clippy::redundant_closure_call)]
                ($v)(x)
            }
        }
    )*};
}

value_from! {
    i64 => Value::Int,
    i32 => |x: i32| Value::Int(i64::from(x)),
    u32 => |x: u32| Value::Int(i64::from(x)),
    usize => |x: usize| Value::Int(x as i64),
    f64 => Value::Real,
    f32 => |x: f32| Value::Real(f64::from(x)),
    String => Value::Text,
    &str => |x: &str| Value::Text(x.to_string()),
    &String => |x: &String| Value::Text(x.clone()),
    Vec<u8> => Value::Blob,
    Vec<f32> => Value::Vector,
    &[f32] => |x: &[f32]| Value::Vector(x.to_vec()),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(x: Option<T>) -> Self {
        x.map_or(Value::Null, Into::into)
    }
}

/// The values of a statement's parameters, in order.
macro_rules! params {
    ($($x:expr),* $(,)?) => { &[$($crate::catalog::sql::Value::from($x)),*] as &[$crate::catalog::sql::Value] };
}
pub(crate) use params;

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

/// A column value read as a Rust type.
pub trait FromValue: Sized {
    /// The value, or `None` when it is not of this type.
    fn from_value(v: &Value) -> Option<Self>;
    /// The same from a value the caller gives up (text is moved, not copied).
    fn from_owned(v: Value) -> Option<Self> {
        Self::from_value(&v)
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(x) => Some(*x),
            _ => None,
        }
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|x| i32::try_from(x).ok())
    }
}

impl FromValue for usize {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|x| usize::try_from(x).ok())
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(x) => Some(*x),
            Value::Int(x) => Some(*x as f64),
            _ => None,
        }
    }
}

impl FromValue for f32 {
    fn from_value(v: &Value) -> Option<Self> {
        f64::from_value(v).map(|x| x as f32)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn from_owned(v: Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<f32> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Vector(x) => Some(x.clone()),
            Value::Blob(b) => {
                let mut out = Vec::with_capacity(b.len() / 4);
                super::from_blob(b, &mut out).ok().map(|_| out)
            }
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    fn from_owned(v: Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_owned(v).map(Some),
        }
    }
}

impl Row {
    /// Column `i` as `T`, moved out of the row (left `NULL`): for building a struct from a
    /// row without copying its text (50,000 products are a million strings).
    pub fn take<T: FromValue>(&mut self, i: usize) -> Result<T> {
        let v = self
            .0
            .get_mut(i)
            .map(std::mem::take)
            .ok_or_else(|| Error::Invalid(format!("query returned no column {i}")))?;
        let kind = match &v {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a float",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
            Value::Vector(_) => "a vector",
        };
        T::from_owned(v)
            .ok_or_else(|| Error::Invalid(format!("column {i} holds {kind}, not {}", std::any::type_name::<T>())))
    }

    /// Column `i` as `T`; a missing column or another type is an error naming both.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("query returned no column {i}")))?;
        T::from_value(v)
            .ok_or_else(|| Error::Invalid(format!("column {i} holds {v:.40?}, not {}", std::any::type_name::<T>())))
    }

    /// Column `i` decoded into `out` as vector floats, without a copy of the BLOB.
    pub fn vector_into(&self, i: usize, out: &mut Vec<f32>) -> Result<usize> {
        match self.0.get(i) {
            Some(Value::Vector(v)) => {
                out.extend_from_slice(v);
                Ok(v.len())
            }
            Some(Value::Blob(b)) => {
                super::from_blob(b, out)?;
                Ok(b.len() / 4)
            }
            other => Err(Error::Invalid(format!("column {i} holds {other:.40?}, not a vector"))),
        }
    }
}

/// Where [`Db::bulk_insert`] takes its rows from: called once with the sink to push them into.
pub type Fill<'a> = dyn FnMut(&mut RowSink<'_>) -> Result<()> + 'a;
/// Takes one row for [`Db::bulk_insert`].
pub type RowSink<'a> = dyn FnMut(&[Value]) -> Result<()> + 'a;

/// A connection or a transaction on either store.
pub trait Db {
    /// The store's dialect, for the few statements that differ.
    fn dialect(&self) -> Dialect;
    /// Runs a statement and calls `each` with every row as it arrives.
    fn each(&mut self, sql: &str, params: &[Value], each: &mut dyn FnMut(Row) -> Result<()>) -> Result<()>;
    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize>;
    /// Runs several statements without parameters.
    fn batch(&mut self, sql: &str) -> Result<()>;

    /// Writes the rows `fill` pushes into `table` (every column, in its [`Table::column_list`]
    /// order) as fast as the store takes them: one prepared `INSERT` each here; PostgreSQL
    /// streams them through `COPY ... FROM STDIN (FORMAT binary)`. Returns the rows written.
    fn bulk_insert(&mut self, table: &Table, fill: &mut Fill<'_>) -> Result<u64> {
        let insert = table.insert_all();
        let mut n = 0u64;
        fill(&mut |row| {
            self.execute(&insert, row)?;
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    /// Every row of a statement.
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.each(sql, params, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a statement, if any.
    fn row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// The first column of the first row, which must exist.
    fn scalar<T: FromValue>(&mut self, sql: &str, params: &[Value]) -> Result<T>
    where
        Self: Sized,
    {
        self.row(sql, params)?
            .ok_or_else(|| Error::Invalid(format!("query returned no row: {}", first_line(sql))))?
            .get(0)
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// `?1`, `?2`... as PostgreSQL's `$1`, `$2`... (outside quoted text).
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(x) => ToSqlOutput::Borrowed(ValueRef::Integer(*x)),
            Value::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Vector(v) => ToSqlOutput::Owned(rusqlite::types::Value::Blob(super::to_blob(v))),
        })
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let vector = ty.name() == "vector";
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(x) => match *ty {
                Type::INT2 => i16::try_from(*x)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*x)?.to_sql(ty, out),
                Type::FLOAT8 => (*x as f64).to_sql(ty, out),
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => x.to_string().to_sql(ty, out),
                _ => x.to_sql(ty, out),
            },
            Value::Real(x) => match *ty {
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => x.to_sql(ty, out),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            // A vector read from a SQLite BLOB and written into PostgreSQL (`migrate`).
            Value::Blob(b) if vector => {
                let mut v = Vec::with_capacity(b.len() / 4);
                super::from_blob(b, &mut v)?;
                pgvector::Vector::from(v).to_sql(ty, out)
            }
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
            Value::Vector(v) if vector => pgvector::Vector::from(v.clone()).to_sql(ty, out),
            Value::Vector(v) => super::to_blob(v).to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A SQLite connection (or transaction, which derefs to one).
pub(crate) struct Lite<'a>(pub &'a rusqlite::Connection);

impl Db for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn each(&mut self, sql: &str, params: &[Value], each: &mut dyn FnMut(Row) -> Result<()>) -> Result<()> {
        let mut st = self.0.prepare_cached(sql)?;
        let width = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                use rusqlite::types::ValueRef;
                values.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(x) => Value::Int(x),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            each(Row(values))?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        Ok(self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }
}

/// A PostgreSQL client or transaction.
pub(crate) struct Pg<'a, C: postgres::GenericClient>(pub &'a mut C);

fn pg_row(r: &postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let v = match *ty {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|x| Value::Int(i64::from(x))),
            Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(|x| Value::Int(i64::from(x))),
            Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(|x| Value::Int(i64::from(x))),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|x| Value::Real(f64::from(x))),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            _ if ty.name() == "vector" => r
                .try_get::<_, Option<pgvector::Vector>>(i)?
                .map(|v| Value::Vector(v.to_vec())),
            _ => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl<C: postgres::GenericClient> Pg<'_, C> {
    /// A statement only PostgreSQL runs (`$1` parameters, arrays), its rows as [`Row`]s.
    pub fn rows_pg(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.0.query(sql, params)?.iter().map(pg_row).collect()
    }
}

impl<C: postgres::GenericClient> Db for Pg<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn each(&mut self, sql: &str, params: &[Value], each: &mut dyn FnMut(Row) -> Result<()>) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = self.0.query_raw(to_postgres(sql).as_str(), params.iter())?;
        while let Some(r) = rows.next()? {
            each(pg_row(&r)?)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.0.execute(to_postgres(sql).as_str(), &refs)? as usize)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.batch_execute(sql)?)
    }

    fn bulk_insert(&mut self, table: &Table, fill: &mut Fill<'_>) -> Result<u64> {
        let cols = table.column_list();
        // The binary format needs each column's exact type, vectors' included.
        let types: Vec<Type> = self
            .0
            .prepare(&format!("SELECT {cols} FROM {} LIMIT 0", table.name))?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let sink = self
            .0
            .copy_in(&format!("COPY {} ({cols}) FROM STDIN (FORMAT binary)", table.name))?;
        let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        let mut n = 0u64;
        fill(&mut |row| {
            let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            writer.write(&refs)?;
            n += 1;
            Ok(())
        })?;
        writer.finish()?;
        Ok(n)
    }
}

/// The catalogue's connection, for one statement or a few.
pub(crate) enum Handle<'a> {
    /// SQLite.
    Sqlite(&'a rusqlite::Connection),
    /// PostgreSQL (borrowed from the catalogue's cell).
    Postgres(RefMut<'a, postgres::Client>),
}

impl Db for Handle<'_> {
    fn dialect(&self) -> Dialect {
        match self {
            Handle::Sqlite(_) => Dialect::Sqlite,
            Handle::Postgres(_) => Dialect::Postgres,
        }
    }

    fn each(&mut self, sql: &str, params: &[Value], each: &mut dyn FnMut(Row) -> Result<()>) -> Result<()> {
        match self {
            Handle::Sqlite(c) => Lite(c).each(sql, params, each),
            Handle::Postgres(c) => Pg(&mut **c).each(sql, params, each),
        }
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        match self {
            Handle::Sqlite(c) => Lite(c).execute(sql, params),
            Handle::Postgres(c) => Pg(&mut **c).execute(sql, params),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Handle::Sqlite(c) => Lite(c).batch(sql),
            Handle::Postgres(c) => Pg(&mut **c).batch(sql),
        }
    }
}

/// A transaction on either store: everything in it lands at [`Tx::commit`], or nothing.
pub enum Tx<'a> {
    /// SQLite (immediate: it holds the write lock from its start).
    Sqlite(rusqlite::Transaction<'a>),
    /// PostgreSQL.
    Postgres(postgres::Transaction<'a>),
}

impl Tx<'_> {
    /// Makes the transaction's writes visible to everyone.
    pub fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit()?,
            Tx::Postgres(t) => t.commit()?,
        }
        Ok(())
    }
}

impl Db for Tx<'_> {
    fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    fn each(&mut self, sql: &str, params: &[Value], each: &mut dyn FnMut(Row) -> Result<()>) -> Result<()> {
        match self {
            Tx::Sqlite(t) => Lite(t).each(sql, params, each),
            Tx::Postgres(t) => Pg(t).each(sql, params, each),
        }
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        match self {
            Tx::Sqlite(t) => Lite(t).execute(sql, params),
            Tx::Postgres(t) => Pg(t).execute(sql, params),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Tx::Sqlite(t) => Lite(t).batch(sql),
            Tx::Postgres(t) => Pg(t).batch(sql),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_postgres_ones_outside_quotes() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE a = ?1 AND b = '?2' AND c = ?12"),
            "SELECT a FROM t WHERE a = $1 AND b = '?2' AND c = $12"
        );
    }

    #[test]
    fn values_round_trip_through_sqlite_and_vectors_are_blobs_there() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Lite(&conn);
        db.batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, v BLOB)")
            .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            params![7i64, 0.5f64, "x", vec![1u8, 2], vec![1.5f32, -2.0]],
        )
        .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, NULL, NULL, NULL, NULL)",
            params![None::<i64>],
        )
        .unwrap();
        let rows = db.rows("SELECT i, r, s, b, v FROM t ORDER BY i", &[]).unwrap();
        assert_eq!(rows[0].get::<Option<i64>>(0).unwrap(), None);
        let r = &rows[1];
        assert_eq!(r.get::<i64>(0).unwrap(), 7);
        assert_eq!(r.get::<f64>(1).unwrap(), 0.5);
        assert_eq!(r.get::<String>(2).unwrap(), "x");
        assert_eq!(r.get::<Vec<u8>>(3).unwrap(), vec![1, 2]);
        assert_eq!(r.get::<Vec<f32>>(4).unwrap(), vec![1.5, -2.0]);
        assert!(r.get::<String>(0).is_err(), "an integer is not text");
        assert_eq!(db.scalar::<i64>("SELECT COUNT(*) FROM t", &[]).unwrap(), 2);
    }
}
