//! Tiny plugin components written in WAT, for tests: each is compiled to a
//! real `.wasm` component and installed in a plugin folder with its manifest.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

const PRELUDE: &str = include_str!("prelude.wat");
const CORE_ALLOC: &str = include_str!("core_alloc.wat");

/// A listener whose `on-change` runs `body` and then returns `ok`.
pub fn listener(body: &str) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "on-change") (param i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
      {body}
      (global.set $heap (i32.const 1024))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $f (param "event" $change-event) (result (result (error string)))
    (canon lift (core func $i "on-change") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "on-change" (func $f)))"#
    )
}

/// A health policy that runs `body` and answers `verdict`
/// (0 healthy, 1 unhealthy, 2 delete, 3 no opinion).
pub fn health_policy(body: &str, verdict: u32) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "judge") (param i32) (result i32)
      {body}
      (global.set $heap (i32.const 1024))
      (i32.const {verdict})))
  (core instance $i (instantiate $m))
  (func $f (param "context" $beat-context) (result $health-verdict)
    (canon lift (core func $i "judge") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "judge" (func $f)))"#
    )
}

/// A push filter whose answer is computed by `body`, which must leave the
/// address of the result (case byte at +0, list pointer at +4, length at +8)
/// on the stack; `$args` points at (subscriber, service, instances), the
/// instance list's pointer at +64 and length at +68.
pub fn push_filter(body: &str) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "filter") (param $args i32) (result i32)
      {body}))
  (core instance $i (instantiate $m))
  (func $f (param "subscriber" $subscriber) (param "service" $service-key) (param "instances" (list $instance))
    (result $filter-result)
    (canon lift (core func $i "filter") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "filter" (func $f)))"#
    )
}

/// Keeps only the first instance offered.
pub const KEEP_FIRST: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.load offset=64 (local.get $args)))
      (i32.store (i32.const 24)
        (select (i32.const 1) (i32.load offset=68 (local.get $args))
                (i32.gt_u (i32.load offset=68 (local.get $args)) (i32.const 1))))
      (i32.const 16)"#;

/// Answers "do not push".
pub const SKIP: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.const 16)"#;

/// Claims a list of 2^28 instances at address 0: far more than its memory holds.
pub const HUGE_ANSWER: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 0))
      (i32.store (i32.const 24) (i32.const 0x10000000))
      (i32.const 16)"#;

pub const INFINITE_LOOP: &str = "(loop $spin (br $spin))";
pub const TRAP: &str = "unreachable";
/// Grows memory until the host refuses.
pub const MEMORY_BOMB: &str = "(loop $more (drop (memory.grow (i32.const 256))) (br $more))";

/// Compiles `wat` and installs it with a manifest as `<dir>/<name>.{wasm,toml}`.
/// The component is written first, so a watcher never sees a manifest without it.
pub fn install(dir: &Path, name: &str, world: &str, wat: &str, extra: &str) {
    let wasm = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: bad WAT: {e}"));
    std::fs::write(dir.join(format!("{name}.wasm")), wasm).expect("component written");
    write_manifest(dir, name, world, extra);
}

pub fn write_manifest(dir: &Path, name: &str, world: &str, extra: &str) {
    let manifest =
        format!("name = \"{name}\"\nworld = \"{world}\"\nwasm = \"{name}.wasm\"\n{extra}\n");
    std::fs::write(dir.join(format!("{name}.toml")), manifest).expect("manifest written");
}
