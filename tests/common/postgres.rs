//! A PostgreSQL database of one test's own, on the server `scripts/services` runs
//! (`OFFLOADER_PG_URL`), dropped when the test finishes.

use tokio_postgres::NoTls;

pub fn server_url() -> String {
    std::env::var("OFFLOADER_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/offloader".into())
}

pub struct TestDb {
    pub url: String,
    name: String,
    admin: String,
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a postgres URL ends in /DATABASE");
    format!("{base}/{db}")
}

impl TestDb {
    /// Creates a fresh, empty database; fails clearly when PostgreSQL is not running.
    pub async fn create() -> TestDb {
        let server = server_url();
        let admin = with_db(&server, "postgres");
        let name = format!("offloader_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap_or_else(|e| {
            panic!("PostgreSQL must be running for this test (OFFLOADER_PG_URL={server}); start it with `eval \"$(scripts/services)\"`.\nerror: {e}")
        });
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("CREATE DATABASE");
        TestDb { url: with_db(&server, &name), name, admin }
    }

    /// Drops the database (and every connection still on it).
    pub async fn drop_db(self) {
        if let Ok((client, conn)) = tokio_postgres::connect(&self.admin, NoTls).await {
            tokio::spawn(conn);
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await;
        }
    }
}
