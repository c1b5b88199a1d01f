//! `cargo xtask wasm [--serve]`: build the WASM client's npm package into client-wasm/pkg/.
//!
//! Steps: make sure the wasm32 target and wasm-bindgen-cli (the exact version of the
//! `wasm-bindgen` crate, installed without `--locked`) are there; build `weir-wasm` alone
//! for wasm32 with the size-optimized `wasm-release` profile; run wasm-bindgen (`--target
//! web`); shrink with `wasm-opt -Oz` when it is installed (optional); copy the
//! hand-written `index.js`, `index.d.ts` and `package.json`; check the gzipped size of what
//! a page downloads against [`PKG_GZIP_BYTES_MAX`]. `--serve` then serves client-wasm/
//! (the demo at /demo/) over HTTP.

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
/// Release budget for the package's download (wasm + glue JS), gzipped.
pub(crate) const PKG_GZIP_BYTES_MAX: u64 = 150 * 1024;
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
    let size = build()?;
    eprintln!("client-wasm/pkg: {size} bytes gzipped (budget {PKG_GZIP_BYTES_MAX})");
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

/// Build client-wasm/pkg; returns the gzipped size of wasm + JS.
pub(crate) fn build() -> Result<u64> {
    install_tools()?;
    let root = project_root();
    step(
        "cargo build -p weir-wasm (wasm32, wasm-release)",
        &root,
        "cargo",
        &[
            "build",
            "-p",
            "weir-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let wasm = target.join("wasm32-unknown-unknown/wasm-release/weir_wasm.wasm");
    let pkg = root.join("client-wasm/pkg");
    if pkg.exists() {
        fs::remove_dir_all(&pkg).with_context(|| format!("removing {pkg:?}"))?;
    }
    let wasm_arg = wasm.display().to_string();
    let pkg_arg = pkg.display().to_string();
    step(
        "wasm-bindgen --target web",
        &root,
        "wasm-bindgen",
        &[
            "--target",
            "web",
            "--out-dir",
            &pkg_arg,
            "--out-name",
            "weir_wasm",
            &wasm_arg,
        ],
    )?;
    let bg = pkg.join("weir_wasm_bg.wasm");
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
        fs::copy(root.join("client-wasm/js").join(file), pkg.join(file))
            .with_context(|| format!("copying {file}"))?;
    }
    let mut total = 0;
    for file in ["weir_wasm_bg.wasm", "weir_wasm.js", "index.js"] {
        total += gzipped_size(&pkg.join(file))?;
    }
    fs::write(
        pkg.join("SIZE"),
        format!("{total} bytes gzipped (wasm + js)\n"),
    )?;
    if total > PKG_GZIP_BYTES_MAX {
        bail!("client-wasm/pkg is {total} bytes gzipped, over the {PKG_GZIP_BYTES_MAX} budget");
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
