//! docker-compose.yml is for users (no Docker engine runs in CI), so this test checks what can
//! drift without anyone noticing: it parses, and its services, ports and credentials are the
//! ones the examples, the README and the shared replication SQL use.

use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{dir}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &doc["services"][name];
    assert!(!s.is_badvalue(), "service `{name}` is missing");
    s
}

fn ports(s: &Yaml) -> Vec<String> {
    s["ports"]
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mounts(s: &Yaml) -> Vec<String> {
    s["volumes"]
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_services_ports_and_credentials_match_the_examples_and_readme() {
    let docs =
        YamlLoader::load_from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses");
    let doc = &docs[0];
    let readme = read("README.md");
    let example = read("examples/mysql_replicas.rs");
    let init = read("scripts/sql/common/primary-init.sql");

    for (name, port) in [("mysql-primary", 3306), ("mysql-replica", 3307)] {
        let s = service(doc, name);
        assert_eq!(s["image"].as_str(), Some("mysql:8.4"), "{name}");
        assert!(
            ports(s).contains(&format!("127.0.0.1:{port}:3306")),
            "{name}: {:?}",
            ports(s)
        );
        let url = format!("mysql://rwsplit:rwsplit_pw@127.0.0.1:{port}/rwsplit_test");
        assert!(
            example.contains(&url),
            "examples/mysql_replicas.rs uses {url}"
        );
        assert!(
            readme.contains(&format!(":{port}")),
            "README names port {port}"
        );
    }
    for (name, port) in [("mariadb-primary", 3316), ("mariadb-replica", 3317)] {
        let s = service(doc, name);
        assert!(
            ports(s).contains(&format!("127.0.0.1:{port}:3306")),
            "{name}: {:?}",
            ports(s)
        );
        assert!(
            readme.contains(&format!(":{port}")),
            "README names port {port}"
        );
    }
    // The compose primaries run the same SQL files as scripts/mariadb.sh.
    for name in ["mysql-primary", "mariadb-primary"] {
        let m = mounts(service(doc, name));
        assert!(
            m.iter()
                .any(|v| v.starts_with("./scripts/sql/common/primary-init.sql:")),
            "{name} mounts the shared init SQL: {m:?}"
        );
    }
    assert!(init.contains("CREATE DATABASE IF NOT EXISTS rwsplit_test"));
    assert!(init.contains("'rwsplit'@'%' IDENTIFIED BY 'rwsplit_pw'"));
    for needle in ["`rwsplit`", "`rwsplit_pw`", "`rwsplit_test`"] {
        assert!(
            readme.contains(needle),
            "README states the credential {needle}"
        );
    }

    let jaeger = ports(service(doc, "jaeger"));
    for p in ["4317", "4318", "16686"] {
        assert!(
            jaeger.iter().any(|x| x.ends_with(&format!(":{p}"))),
            "jaeger publishes {p}"
        );
    }
    assert!(ports(service(doc, "prometheus"))
        .iter()
        .any(|x| x.ends_with(":9090")));
    assert!(ports(service(doc, "grafana"))
        .iter()
        .any(|x| x.ends_with(":3000")));
    assert!(
        read("tools/examples/otel.rs").contains("127.0.0.1:4317"),
        "otel example targets Jaeger's OTLP port"
    );
    assert!(
        read("ops/prometheus/prometheus.yml").contains(":9898"),
        "Prometheus scrapes the metrics example"
    );
    assert!(
        read("tools/examples/metrics_server.rs").contains("9898"),
        "metrics example listens on 9898"
    );
}
