//! `cargo xtask wasm [--serve]`: build the WASM npm packages: the client into
//! client-wasm/pkg/ and the optional schema helpers into client-wasm-schema/pkg/.
//!
//! Steps: make sure the wasm32 target and wasm-bindgen-cli (the exact version of the
//! `wasm-bindgen` crate, installed without `--locked`) are there; per package, build its
//! crate alone for wasm32 with the size-optimized `wasm-release` profile; run wasm-bindgen
//! (`--target web`); shrink with `wasm-opt -Oz` when it is installed (optional); copy the
//! hand-written `index.js`, `index.d.ts` and `package.json`; check the gzipped size of what
//! a page downloads against the package's budget ([`PKG_GZIP_BYTES_MAX`],
//! [`SCHEMA_PKG_GZIP_BYTES_MAX`]) and print it. `--serve` then serves client-wasm/ (the
//! demo at /demo/) over HTTP.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::project_root;
use crate::step::{has_program, step};

/// wasm-bindgen-cli must equal the `wasm-bindgen` crate pinned in Cargo.toml.
pub(crate) const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// Release budget for the client package's download (wasm + glue JS), gzipped.
pub(crate) const PKG_GZIP_BYTES_MAX: u64 = 150 * 1024;
/// Release budget for the schema helpers' package (wasm + glue JS), gzipped: apache-avro's
/// schema parser is most of it (docs/wasm.md, "Schema-aware helpers").
pub(crate) const SCHEMA_PKG_GZIP_BYTES_MAX: u64 = 184 * 1024;

/// One npm package built from one crate.
pub(crate) struct Package {
    /// The crate (`cargo build -p`).
    pub krate: &'static str,
    /// Its directory (holding js/ and, once built, pkg/).
    pub dir: &'static str,
    /// wasm-bindgen's `--out-name` (also the wasm file's stem).
    pub out_name: &'static str,
    /// Gzipped budget of wasm + glue JS + index.js.
    pub budget: u64,
    /// Drop the wasm `name` section (function names for stack traces; panics abort).
    pub strip_names: bool,
}

/// Every package `cargo xtask wasm` builds.
pub(crate) const PACKAGES: [Package; 2] = [
    Package {
        krate: "weir-wasm",
        dir: "client-wasm",
        out_name: "weir_wasm",
        budget: PKG_GZIP_BYTES_MAX,
        strip_names: false,
    },
    Package {
        krate: "weir-wasm-schema",
        dir: "client-wasm-schema",
        out_name: "weir_wasm_schema",
        budget: SCHEMA_PKG_GZIP_BYTES_MAX,
        strip_names: true,
    },
];
/// Where `--serve` listens.
const SERVE_ADDR: &str = "127.0.0.1:8080";

/// Arguments of `cargo xtask wasm`.
#[derive(clap::Args, Debug)]
pub(crate) struct WasmArgs {
    /// After building, serve client-wasm/ (demo at http://127.0.0.1:8080/demo/).
    #[arg(long)]
    pub serve: bool,
}

pub(crate) fn run(args: &WasmArgs) -> Result<()> {
    build()?;
    if args.serve {
        serve(&project_root().join("client-wasm"))?;
    }
    Ok(())
}

/// Install the wasm tool chain pieces a fresh machine lacks.
pub(crate) fn install_tools() -> Result<()> {
    let root = project_root();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup")?;
    if !String::from_utf8_lossy(&installed.stdout).contains("wasm32-unknown-unknown") {
        step(
            "rustup target add wasm32-unknown-unknown",
            &root,
            "rustup",
            &["target", "add", "wasm32-unknown-unknown"],
        )?;
    }
    let version = Command::new("wasm-bindgen").arg("--version").output();
    let current = version
        .map(|output| String::from_utf8_lossy(&output.stdout).contains(WASM_BINDGEN_VERSION))
        .unwrap_or(false);
    if !current {
        // Without --locked: the CLI's lockfile pins a crate version the registry lacks.
        step(
            "cargo install wasm-bindgen-cli",
            &root,
            "cargo",
            &[
                "install",
                "wasm-bindgen-cli",
                "--version",
                WASM_BINDGEN_VERSION,
            ],
        )?;
    }
    Ok(())
}

/// Build every package (budgets checked, sizes printed); returns their gzipped sizes.
pub(crate) fn build() -> Result<Vec<(&'static str, u64)>> {
    install_tools()?;
    let mut sizes = Vec::new();
    for package in &PACKAGES {
        let size = build_package(package)?;
        eprintln!(
            "{}/pkg: {size} bytes gzipped (budget {})",
            package.dir, package.budget
        );
        sizes.push((package.dir, size));
    }
    Ok(sizes)
}

/// Build one package into `<dir>/pkg`; returns the gzipped size of wasm + JS.
fn build_package(package: &Package) -> Result<u64> {
    let root = project_root();
    step(
        &format!("cargo build -p {} (wasm32, wasm-release)", package.krate),
        &root,
        "cargo",
        &[
            "build",
            "-p",
            package.krate,
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out_name = package.out_name;
    let wasm = target.join(format!(
        "wasm32-unknown-unknown/wasm-release/{out_name}.wasm"
    ));
    let dir = root.join(package.dir);
    let pkg = dir.join("pkg");
    if pkg.exists() {
        fs::remove_dir_all(&pkg).with_context(|| format!("removing {pkg:?}"))?;
    }
    let wasm_arg = wasm.display().to_string();
    let pkg_arg = pkg.display().to_string();
    let mut bindgen = vec![
        "--target",
        "web",
        "--out-dir",
        &pkg_arg,
        "--out-name",
        out_name,
    ];
    if package.strip_names {
        bindgen.extend(["--remove-name-section", "--remove-producers-section"]);
    }
    bindgen.push(&wasm_arg);
    step("wasm-bindgen --target web", &root, "wasm-bindgen", &bindgen)?;
    let bg_name = format!("{out_name}_bg.wasm");
    let bg = pkg.join(&bg_name);
    if has_program("wasm-opt") {
        let bg_arg = bg.display().to_string();
        step(
            "wasm-opt -Oz",
            &root,
            "wasm-opt",
            &["-Oz", "--enable-bulk-memory", "-o", &bg_arg, &bg_arg],
        )?;
    } else {
        eprintln!("wasm-opt not installed: skipping the optional extra shrink");
    }
    for file in ["index.js", "index.d.ts", "package.json"] {
        fs::copy(dir.join("js").join(file), pkg.join(file))
            .with_context(|| format!("copying {}/js/{file}", package.dir))?;
    }
    let mut total = 0;
    for file in [bg_name, format!("{out_name}.js"), "index.js".to_owned()] {
        total += gzipped_size(&pkg.join(file))?;
    }
    fs::write(
        pkg.join("SIZE"),
        format!("{total} bytes gzipped (wasm + js)\n"),
    )?;
    if total > package.budget {
        bail!(
            "{}/pkg is {total} bytes gzipped, over the {} budget",
            package.dir,
            package.budget
        );
    }
    Ok(total)
}

fn gzipped_size(path: &Path) -> Result<u64> {
    let output = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .with_context(|| format!("gzip {path:?}"))?;
    if !output.status.success() {
        bail!("gzip {path:?} failed");
    }
    Ok(output.stdout.len() as u64)
}

/// A tiny static file server for the demo (GET only, files under `root`).
fn serve(root: &Path) -> Result<()> {
    let listener =
        TcpListener::bind(SERVE_ADDR).with_context(|| format!("binding {SERVE_ADDR}"))?;
    eprintln!("serving {root:?} at http://{SERVE_ADDR}/demo/ (start a broker: weir serve)");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(error) = serve_one(root, stream) {
            eprintln!("serve: {error:#}");
        }
    }
    Ok(())
}

fn serve_one(root: &Path, mut stream: TcpStream) -> Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let relative = path.trim_start_matches('/');
    let mut file = root.join(relative);
    if relative.split('/').any(|part| part == "..") {
        file = root.join("missing");
    }
    if file.is_dir() {
        file = file.join("index.html");
    }
    let (status, body) = match fs::read(&file) {
        Ok(body) => ("200 OK", body),
        Err(_) => ("404 Not Found", b"not found\n".to_vec()),
    };
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    Ok(())
}
