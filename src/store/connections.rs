//! The shared token buckets of carrier connections' `throughput` (PostgreSQL): every worker
//! leases the tokens it is about to spend from its connection's bucket, so that a connection's
//! contracted rate holds however many workers submit through it.

use sea_orm::{ConnectionTrait, DbErr, Statement};

impl super::System {
    /// Takes up to `want` whole tokens from connection `name`'s bucket, refilled at `rate` a
    /// second up to `burst` since it was last touched: the tokens granted, and the tokens that
    /// were available (for the wait when none was).
    pub async fn lease_connection_tokens(
        &self,
        name: &str,
        rate: f64,
        burst: f64,
        want: f64,
    ) -> Result<(f64, f64), DbErr> {
        let backend = self.db.get_database_backend();
        // On PostgreSQL (the only database this runs on) the door holds no gate.
        let w = super::writer(&self.db, &self.gate).await?;
        w.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO connection_buckets (name, tokens, refilled_at) \
                 VALUES ($1, $2, clock_timestamp()) ON CONFLICT DO NOTHING",
            [name.into(), burst.into()],
        ))
        .await?;
        let row = w
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "WITH b AS (\
                   SELECT name, LEAST($3, tokens + $2 * EXTRACT(EPOCH FROM (clock_timestamp() - refilled_at))) AS available \
                   FROM connection_buckets WHERE name = $1 FOR UPDATE) \
                 UPDATE connection_buckets c SET tokens = b.available - FLOOR(LEAST(b.available, $4)), refilled_at = clock_timestamp() \
                 FROM b WHERE c.name = b.name \
                 RETURNING FLOOR(LEAST(b.available, $4))::float8 AS granted, b.available::float8 AS available",
                [name.into(), rate.into(), burst.into(), want.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the connection's bucket".into()))?;
        Ok((row.try_get("", "granted")?, row.try_get("", "available")?))
    }
}
