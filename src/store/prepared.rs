//! Raw SQL as a cached prepared statement. diesel prepares a DSL query once per connection
//! and then executes it by name, but never caches `sql_query`, whose text could change from
//! call to call: PostgreSQL parses and plans such a statement on every execution, SQLite
//! compiles it every time. [`Prepared`] vouches that its text is fixed, one text per backend
//! and marker type, so diesel caches it like a DSL query.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A query (in practice a `sql_query` with its binds) whose SQL text is the same on every
/// call for a given backend; `M` is a marker type of its own, which diesel's statement cache
/// uses as the key. Never wrap SQL built from runtime values: the cache would keep running
/// the first text it saw.
pub struct Prepared<M, Q> {
    query: Q,
    marker: PhantomData<M>,
}

impl<M, Q> Prepared<M, Q> {
    /// Marks `query` as fixed text, to be cached under `M`.
    pub fn new(query: Q) -> Self {
        Prepared {
            query,
            marker: PhantomData,
        }
    }
}

impl<M: 'static, Q> QueryId for Prepared<M, Q> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB: Backend, M, Q: QueryFragment<DB>> QueryFragment<DB> for Prepared<M, Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    // `sql_query` declares itself unsafe to cache because diesel cannot know that its text
    // is fixed; the marker type is the promise that it is.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<M, Q: Query> Query for Prepared<M, Q> {
    type SqlType = Q::SqlType;
}

impl<M, Q, Conn> RunQueryDsl<Conn> for Prepared<M, Q> {}
