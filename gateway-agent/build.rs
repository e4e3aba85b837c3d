//! Builds the eBPF object (gateway-ebpf, on the nightly toolchain with bpf-linker) so that a
//! plain stable `cargo build` produces an agent with its kernel programs embedded.

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let workspace = std::path::Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow::anyhow!("gateway-agent has no parent directory"))?;
    let ebpf_dir = workspace.join("gateway-ebpf");
    // The programs embed gateway-common's layouts: rebuild them when it changes too.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("gateway-common").display()
    );
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 workspace path"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "gateway-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}
