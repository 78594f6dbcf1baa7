//! A PostgreSQL database of the bench's own, so a measurement starts from an empty ledger and
//! leaves nothing behind on the server it was given.

use anyhow::Context as _;
use tokio_postgres::NoTls;

pub struct TempDatabase {
    /// The URL of the bench's database.
    pub url: String,
    admin: String,
    name: String,
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, _) =
        url.rsplit_once('/').with_context(|| format!("{url:?} is not a PostgreSQL URL ending in /DATABASE"))?;
    Ok(format!("{base}/{db}"))
}

impl TempDatabase {
    /// Creates an empty database next to the one `url` names.
    pub async fn create(url: &str) -> anyhow::Result<TempDatabase> {
        let admin = with_db(url, "postgres")?;
        let name = format!("offloader_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.context("cannot reach PostgreSQL")?;
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.context("CREATE DATABASE")?;
        Ok(TempDatabase { url: with_db(url, &name)?, admin, name })
    }

    /// Drops it.
    pub async fn drop(self) {
        if let Ok((client, conn)) = tokio_postgres::connect(&self.admin, NoTls).await {
            tokio::spawn(conn);
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await;
        }
    }
}
