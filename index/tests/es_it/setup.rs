//! `sluice es setup` against the mock (or a real cluster) and the checked-in JSON.

use std::path::PathBuf;

use index::elasticsearch::{
    COMPONENT_TEMPLATE_NAME, EsConfig, ILM_POLICY_NAME, INDEX_TEMPLATE_NAME, component_template,
    ilm_policy, index_template, setup, setup_files,
};

use crate::TestEs;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/elasticsearch")
}

/// Run with `SLUICE_UPDATE_DEPLOY=1` to rewrite the files after an intended change.
#[test]
fn checked_in_json_matches_what_setup_sends() -> anyhow::Result<()> {
    let update = std::env::var_os("SLUICE_UPDATE_DEPLOY").is_some();
    for (name, generated) in setup_files(&EsConfig::default()) {
        let path = deploy_dir().join(name);
        if update {
            std::fs::create_dir_all(deploy_dir())?;
            std::fs::write(&path, &generated)?;
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!("{}: {e} (run with SLUICE_UPDATE_DEPLOY=1)", path.display())
        })?;
        anyhow::ensure!(
            on_disk == generated,
            "{} drifted from the code; run `SLUICE_UPDATE_DEPLOY=1 cargo test -p index --test es_it` \
             and review the diff",
            path.display()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_installs_policy_templates_and_data_stream_idempotently() -> anyhow::Result<()> {
    let es = TestEs::start("setup").await?;
    let cfg = es.config();
    let first = setup(&cfg).await?;
    assert_eq!(first.data_stream, format!("logs-sluice-{}", es.namespace));
    assert!(first.created_data_stream);
    let again = setup(&cfg).await?;
    assert!(
        !again.created_data_stream,
        "a second setup must keep the data stream"
    );
    if let Some(mock) = &es.mock {
        assert_eq!(mock.policy(ILM_POLICY_NAME), Some(ilm_policy(&cfg)));
        assert_eq!(
            mock.component_template(COMPONENT_TEMPLATE_NAME),
            Some(component_template())
        );
        assert_eq!(
            mock.index_template(INDEX_TEMPLATE_NAME),
            Some(index_template())
        );
        assert!(mock.has_data_stream(&cfg.data_stream()));
    }
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_against_an_unreachable_cluster_names_the_resource() -> anyhow::Result<()> {
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let cfg = EsConfig {
        urls: vec![format!("http://127.0.0.1:{port}")],
        request_timeout_ms: 2_000,
        dead_letter_dir: dir.path().to_path_buf(),
        ..EsConfig::default()
    };
    let Err(err) = setup(&cfg).await else {
        anyhow::bail!("setup against a closed port succeeded");
    };
    assert_eq!(err.error_code(), "es_setup");
    assert!(err.to_string().contains("_ilm/policy/logs-sluice"), "{err}");
    Ok(())
}
